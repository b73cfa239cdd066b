"""`policy lsp` end to end: a real client (pytest-lsp) talks to the server over stdio.

The server runs as `python -m engine lsp` on a temporary copy of the bundled policies,
intent files and cases; every request is a real protocol round trip.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

pytest_lsp = pytest.importorskip("pytest_lsp")
from lsprotocol import types as t  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.asyncio(loop_scope="module")


def copy_project(target: Path) -> Path:
    """The bundled pack as a project: policies, intent, cases and the lint settings."""
    shutil.copytree(ROOT / "policies", target / "policies")
    for sub in ("intent", "cases"):
        shutil.copytree(ROOT / "fixtures" / sub, target / "fixtures" / sub)
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")
    return target


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("project"))


def _config() -> ClientServerConfig:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return ClientServerConfig(server_command=[sys.executable, "-m", "engine", "lsp"], server_env=env)


@pytest_lsp.fixture(config=_config(), scope="module")
async def client(lsp_client: LanguageClient, project: Path) -> AsyncIterator[None]:
    capabilities = pytest_lsp.client_capabilities("visual-studio-code")
    lsp_client.lens_refreshes = 0  # type: ignore[attr-defined]

    @lsp_client.feature(t.WORKSPACE_CODE_LENS_REFRESH)
    def lens_refresh(params: None) -> None:
        lsp_client.lens_refreshes += 1  # type: ignore[attr-defined]

    await lsp_client.initialize_session(
        t.InitializeParams(
            capabilities=capabilities,
            root_uri=project.as_uri(),
            workspace_folders=[t.WorkspaceFolder(project.as_uri(), "project")],
            initialization_options={"debounceMs": 20},
        )
    )
    yield
    await lsp_client.shutdown_session()


POLICY = "policies/ear-742.7/2020-10-06.policy"
OLDER = "policies/ear-742.7/2020-03-09.policy"
VOCAB = "policies/shared/export-controls.vocab"


def uri(project: Path, rel: str) -> str:
    return (project / rel).resolve().as_uri()


def open_file(client: LanguageClient, project: Path, rel: str) -> str:
    path = project / rel
    document = uri(project, rel)
    client.text_document_did_open(
        t.DidOpenTextDocumentParams(
            t.TextDocumentItem(document, "policy", 1, path.read_text(encoding="utf-8"))
        )
    )
    return document


def position_of(project: Path, rel: str, needle: str, offset: int = 0, occurrence: int = 0) -> t.Position:
    """The position of the `occurrence`th `needle` in a file, `offset` characters into it."""
    text = (project / rel).read_text(encoding="utf-8")
    index = -1
    for _ in range(occurrence + 1):
        index = text.index(needle, index + 1)
    index += offset
    line = text.count("\n", 0, index)
    return t.Position(line, index - (text.rfind("\n", 0, index) + 1))


async def wait_for(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = asyncio.get_event_loop().time() + timeout
    while not check():
        if asyncio.get_event_loop().time() > deadline:
            raise AssertionError("timed out waiting for the server")
        await asyncio.sleep(0.02)


def change(
    client: LanguageClient, document: str, version: int, start: t.Position, end: t.Position, text: str
) -> None:
    client.text_document_did_change(
        t.DidChangeTextDocumentParams(
            t.VersionedTextDocumentIdentifier(uri=document, version=version),
            [t.TextDocumentContentChangePartial(range=t.Range(start, end), text=text)],
        )
    )


def codes(client: LanguageClient, document: str) -> list[str]:
    return [str(d.code) for d in client.diagnostics.get(document, [])]


async def test_capabilities_and_clean_open(client: LanguageClient, project: Path) -> None:
    document = open_file(client, project, POLICY)
    await wait_for(lambda: document in client.diagnostics)
    assert list(client.diagnostics[document]) == []


async def test_edit_with_errors_reports_located_diagnostics(client: LanguageClient, project: Path) -> None:
    document = open_file(client, project, OLDER)
    await wait_for(lambda: document in client.diagnostics)
    # a misspelt derived fact, and a broken declaration further down (a syntax error)
    start = position_of(project, OLDER, "if cc_application", 3)
    end = t.Position(start.line, start.character + len("cc_application"))
    change(client, document, 2, start, end, "cc_aplication")
    text = (project / OLDER).read_text(encoding="utf-8")
    last_line = text.count("\n")
    change(
        client,
        document,
        3,
        t.Position(last_line, 0),
        t.Position(last_line, 0),
        "\nrule broken-rule\n  if and\n",
    )
    await wait_for(lambda: {"unknown-fact", "syntax"} <= set(codes(client, document)))
    found = {str(d.code): d for d in client.diagnostics[document]}
    unknown = found["unknown-fact"]
    assert unknown.severity == t.DiagnosticSeverity.Error
    assert unknown.range.start == start and unknown.range.end.character == start.character + len(
        "cc_aplication"
    )
    assert "did you mean `cc_application`?" in unknown.message
    assert unknown.source == "policy"

    # the quick fix replaces the name
    actions = await client.text_document_code_action_async(
        t.CodeActionParams(t.TextDocumentIdentifier(document), unknown.range, t.CodeActionContext([unknown]))
    )
    assert actions and actions[0].title == "Replace with `cc_application`"
    edit = actions[0].edit.changes[document][0]
    assert edit.new_text == "cc_application" and edit.range == unknown.range

    # undo: the file checks again
    change(
        client,
        document,
        4,
        start,
        t.Position(start.line, start.character + len("cc_aplication")),
        "cc_application",
    )
    change(client, document, 5, t.Position(last_line, 0), t.Position(last_line + 3, 0), "")
    await wait_for(lambda: codes(client, document) == [])


async def test_vocabulary_edit_rechecks_the_policies_using_it(client: LanguageClient, project: Path) -> None:
    policy = open_file(client, project, POLICY)
    vocab = open_file(client, project, VOCAB)
    await wait_for(lambda: vocab in client.diagnostics and policy in client.diagnostics)
    start = position_of(project, VOCAB, "define cc_application", len("define "))
    end = t.Position(start.line, start.character + len("cc_application"))
    change(client, vocab, 2, start, end, "cc_app")
    await wait_for(lambda: "unknown-fact" in codes(client, policy))
    change(client, vocab, 3, start, t.Position(start.line, start.character + len("cc_app")), "cc_application")
    await wait_for(lambda: "unknown-fact" not in codes(client, policy))


async def test_hover_on_fact_rule_and_derived(client: LanguageClient, project: Path) -> None:
    document = open_file(client, project, POLICY)
    hover = await client.text_document_hover_async(
        t.HoverParams(
            t.TextDocumentIdentifier(document), position_of(project, POLICY, "and hr_abuse_risk", 6)
        )
    )
    assert hover is not None
    text = hover.contents.value
    assert "fact hr_abuse_risk: boolean" in text and "export-controls.vocab:45" in text

    rule = await client.text_document_hover_async(
        t.HoverParams(
            t.TextDocumentIdentifier(document), position_of(project, POLICY, "rule cc-favorable", 6)
        )
    )
    value = rule.contents.value
    assert "15 CFR 742.7(b)(1)" in value
    assert "Applications for items controlled under this section" in value  # the quoted regulation
    assert "**Overridden by** `cc-civil-disorder`" in value

    vocab_text = (project / VOCAB).read_text(encoding="utf-8")
    assert "define destination_cc_columns" in vocab_text
    derived = await client.text_document_hover_async(
        t.HoverParams(
            t.TextDocumentIdentifier(uri(project, VOCAB)),
            position_of(project, VOCAB, "define destination_cc_columns", len("define ")),
        )
    )
    assert (
        "Reads `cc_columns`" in derived.contents.value
        and "| key | value | in force |" in derived.contents.value
    )


async def test_completion_of_values_rules_and_facts(client: LanguageClient, project: Path) -> None:
    document = open_file(client, project, POLICY)
    text = (project / POLICY).read_text(encoding="utf-8")
    line = text.count("\n")
    change(
        client,
        document,
        10,
        t.Position(line, 0),
        t.Position(line, 0),
        "\nrule x\n  overrides \n  if end_user.type = \n",
    )
    await asyncio.sleep(0.05)

    async def labels(at: t.Position) -> list[str]:
        result = await client.text_document_completion_async(
            t.CompletionParams(t.TextDocumentIdentifier(document), at)
        )
        return [i.label for i in (result.items if isinstance(result, t.CompletionList) else result or [])]

    values = await labels(t.Position(line + 3, len("  if end_user.type = ")))
    assert values == ["government", "government_linked", "private", "reseller", "individual"]
    rules = await labels(t.Position(line + 2, len("  overrides ")))
    assert "cc-favorable" in rules and "x" not in rules
    facts = await labels(t.Position(line + 3, len("  if ")))
    assert "hr_abuse_risk" in facts and "cc_application" in facts
    starts = await labels(t.Position(line + 4, 0))
    assert "rule …" in starts and "cite" in starts
    change(client, document, 11, t.Position(line, 0), t.Position(line + 4, 0), "")


async def test_definition_and_rename_across_files(client: LanguageClient, project: Path) -> None:
    document = open_file(client, project, POLICY)
    where = position_of(project, POLICY, "and hr_abuse_risk", 5)
    definition = await client.text_document_definition_async(
        t.DefinitionParams(t.TextDocumentIdentifier(document), where)
    )
    assert isinstance(definition, t.Location) and definition.uri == uri(project, VOCAB)
    assert definition.range.start.line == 44  # `fact hr_abuse_risk` is on line 45

    refs = await client.text_document_references_async(
        t.ReferenceParams(
            text_document=t.TextDocumentIdentifier(document),
            position=where,
            context=t.ReferenceContext(include_declaration=True),
        )
    )
    files = {r.uri.rsplit("/", 1)[-1] for r in refs}
    assert {"export-controls.vocab", "2020-10-06.policy", "2024-07-29.policy"} <= files

    edit = await client.text_document_rename_async(
        t.RenameParams(t.TextDocumentIdentifier(document), where, "human_rights_risk")
    )
    assert edit is not None and edit.changes is not None
    assert set(edit.changes) >= {
        uri(project, VOCAB),
        uri(project, POLICY),
        uri(project, "policies/ear-742.7/2024-07-29.policy"),
    }
    assert all(e.new_text == "human_rights_risk" for edits in edit.changes.values() for e in edits)
    assert sum(len(v) for v in edit.changes.values()) == len(refs)

    with pytest.raises(Exception, match="already declared"):
        await client.text_document_rename_async(
            t.RenameParams(t.TextDocumentIdentifier(document), where, "civil_disorder")
        )


async def test_symbols_and_folding(client: LanguageClient, project: Path) -> None:
    document = open_file(client, project, POLICY)
    symbols = await client.text_document_document_symbol_async(
        t.DocumentSymbolParams(t.TextDocumentIdentifier(document))
    )
    names = [s.name for s in symbols]
    assert names[0] == 'policy "ear-742.7"' and "cc-favorable" in names
    found = await client.workspace_symbol_async(t.WorkspaceSymbolParams(query="country_gr"))
    assert any(s.name == "country_groups" for s in found)
    folds = await client.text_document_folding_range_async(
        t.FoldingRangeParams(t.TextDocumentIdentifier(document))
    )
    assert any(f.kind == t.FoldingRangeKind.Comment and f.start_line == 0 for f in folds)


async def test_format_document(client: LanguageClient, project: Path, tmp_path: Path) -> None:
    rel = "policies/ear-742.7/2020-10-06.policy"
    document = open_file(client, project, rel)
    text = (project / rel).read_text(encoding="utf-8")
    start = position_of(project, rel, '  cite "15 CFR 742.7(b)(1)"\n  if cc_application\n')
    change(client, document, 20, start, t.Position(start.line, 2), "        ")
    edits = await client.text_document_formatting_async(
        t.DocumentFormattingParams(t.TextDocumentIdentifier(document), t.FormattingOptions(2, True))
    )
    assert edits and len(edits) == 1 and edits[0].new_text.startswith('  cite "15 CFR 742.7(b)(1)"')
    change(client, document, 21, start, t.Position(start.line, 8), "  ")
    assert (project / rel).read_text(encoding="utf-8") == text


async def test_format_refused_when_the_file_does_not_parse(client: LanguageClient, project: Path) -> None:
    document = open_file(client, project, OLDER)
    text = (project / OLDER).read_text(encoding="utf-8")
    line = text.count("\n")
    change(client, document, 30, t.Position(line, 0), t.Position(line, 0), "\nrule broken if\n")
    edits = await client.text_document_formatting_async(
        t.DocumentFormattingParams(t.TextDocumentIdentifier(document), t.FormattingOptions(2, True))
    )
    assert edits is None
    await wait_for(lambda: any("does not parse" in m.message for m in client.messages))
    change(client, document, 31, t.Position(line, 0), t.Position(line + 2, 0), "")


async def test_conflict_quick_fix_and_missing_citation(client: LanguageClient, project: Path) -> None:
    rel = "policies/ear-742.7/2024-07-29.policy"
    document = open_file(client, project, rel)
    text = (project / rel).read_text(encoding="utf-8")
    line = text.count("\n")
    added = '\nrule always-denied "Deny every crime control application"\n  if cc_application\n  then decide license_review = denial\n'
    change(client, document, 2, t.Position(line, 0), t.Position(line, 0), added)
    await wait_for(
        lambda: "conflict" in codes(client, document) and "missing-citation" in codes(client, document)
    )
    conflict = next(d for d in client.diagnostics[document] if d.code == "conflict")
    actions = await client.text_document_code_action_async(
        t.CodeActionParams(
            t.TextDocumentIdentifier(document), conflict.range, t.CodeActionContext([conflict])
        )
    )
    titles = [a.title for a in actions]
    assert any("add `overrides" in title for title in titles)
    citation = next(d for d in client.diagnostics[document] if d.code == "missing-citation")
    assert citation.severity == t.DiagnosticSeverity.Error  # pyproject.toml raises it to an error
    fixes = await client.text_document_code_action_async(
        t.CodeActionParams(
            t.TextDocumentIdentifier(document), citation.range, t.CodeActionContext([citation])
        )
    )
    stub = next(a for a in fixes if "citation stub" in a.title)
    assert stub.edit.changes[document][0].new_text.startswith('  cite "')
    change(client, document, 3, t.Position(line, 0), t.Position(line + 4, 0), "")
    await wait_for(lambda: "conflict" not in codes(client, document))


async def test_code_lenses_and_their_commands(client: LanguageClient, project: Path) -> None:
    document = open_file(client, project, POLICY)
    lenses = await client.text_document_code_lens_async(t.CodeLensParams(t.TextDocumentIdentifier(document)))
    titles = [lens.command.title for lens in lenses if lens.command]
    assert "diff against previous version (2020-03-09)" in titles
    assert any(title.endswith("all pass") and "intent expectation" in title for title in titles)
    assert "evaluate a case" in titles

    result = await client.workspace_execute_command_async(
        t.ExecuteCommandParams(
            command="policy.evaluateCase",
            arguments=[document, "cc-hr-abuse-risk", "cctv-cameras-syria-interior-ministry"],
        )
    )
    assert result["decisions"] == {"license_review": "not_favorable"}
    assert "cc-hr-abuse-risk" in result["text"]
    lenses = await client.text_document_code_lens_async(t.CodeLensParams(t.TextDocumentIdentifier(document)))
    titles = [lens.command.title for lens in lenses if lens.command]
    assert "case cctv-cameras-syria-interior-ministry: license_review = not_favorable" in titles

    diff = await client.workspace_execute_command_async(
        t.ExecuteCommandParams(command="policy.diffPrevious", arguments=[document])
    )
    assert "2020-03-09" in diff["text"] and "2020-10-06" in diff["text"]
