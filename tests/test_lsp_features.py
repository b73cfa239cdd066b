"""The language server's answers, in process (no protocol): the index, completion contexts, hover,
rename checks, range formatting, diagnostics of unsaved buffers. The protocol round trips are in
tests/test_lsp.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lsprotocol")

from lsprotocol import types as t

from engine.lsp import features as f
from engine.lsp.index import Range, SymbolKey
from engine.lsp.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
POLICY = "policies/ear-742.7/2020-10-06.policy"
VOCAB = "policies/shared/export-controls.vocab"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    for sub in ("intent", "cases"):
        shutil.copytree(ROOT / "fixtures" / sub, tmp_path / "fixtures" / sub)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_draft(project: Path, body: str) -> Path:
    """A new draft version beside the bundled ones, using the shared vocabulary."""
    path = project / "policies" / "ear-742.7" / "2030-01-01.policy"
    path.write_text(
        'policy "ear-742.7"\n  title "Draft"\n  version "2030-01-01"\n  effective 2030-01-01\n'
        '  status draft\n  source "tests"\n\nuse "../shared/export-controls.vocab"\n\n' + body,
        encoding="utf-8",
    )
    return path.resolve()


def labels(ws: Workspace, path: Path, text: str, marker: str = "|") -> list[str]:
    """Completion labels at the `|` in `text` (the marker is removed from the buffer)."""
    index = text.index(marker)
    ws.set_text(path, text.replace(marker, "", 1))
    line = text.count("\n", 0, index)
    col = index - (text.rfind("\n", 0, index) + 1)
    return [i.label for i in f.completion(ws, path, line, col).items]


def test_every_use_in_the_bundled_pack_resolves_to_a_declaration(project: Path) -> None:
    ws = Workspace()
    folder = ws.index(project / POLICY)
    for index in folder.files.values():
        assert index.syntax_errors == []
        for occurrence in index.occurrences:
            assert folder.declaration(occurrence.key) is not None, occurrence
    # the index finds a use of every fact but the one the pack keeps with `# lint: allow unused-fact`
    facts = [d for d in folder.all_declarations() if d.key.kind == "fact"]
    unused = [d.name for d in facts if not [o for o in folder.references(d.key) if not o.declaration]]
    assert len(facts) > 10 and unused == ["end_user.name"]


def test_values_of_two_enumerations_with_the_same_name_are_told_apart(project: Path) -> None:
    path = write_draft(
        project,
        'rule r "r"\n  cite "x"\n  if destination = AT and control_reason includes AT\n  then decide license_review = denial\n',
    )
    ws = Workspace()
    folder = ws.index(path)
    vocab = (project / VOCAB).resolve()
    countries = vocab.parent / "countries.vocab"  # Country moved there (issue 12: shared by ear-734.4)
    country = [
        o.range.col for o in folder.references(SymbolKey("value", "Country.AT", countries)) if o.file == path
    ]
    reason = [
        o.range.col
        for o in folder.references(SymbolKey("value", "ControlReason.AT", vocab))
        if o.file == path
    ]
    line = path.read_text().splitlines()[11]
    assert country == [line.index("AT")] and reason == [line.rindex("AT")]


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        (
            "  if cc_application\n  then decide license_review = |\n",
            ["favorable", "not_favorable", "denial", "not_applicable"],
        ),
        ("  if control_reason in <CC, |\n", ["NS", "MT", "NP"]),
        ("  if capability includes any <|\n", ["surveillance", "biometric_identification"]),
        ("  if destination = |\n", ["AD", "AE"]),
        ("  if cc_application\n  then require |\n", ["human-rights review"]),
        ("  if end_user.name is |\n", ["missing", "present"]),
        ("  if hr_abuse_risk |\n", ["and", "or", "in", "includes", "is missing", "unless", "then"]),
    ],
)
def test_completion_fits_the_cursor(project: Path, snippet: str, expected: list[str]) -> None:
    path = write_draft(project, "")
    ws = Workspace()
    text = path.read_text() + 'rule r "r"\n  cite "x"\n' + snippet
    got = labels(ws, path, text)
    assert got[: len(expected)] == expected or set(expected) <= set(got), got


def test_completion_of_types_status_and_header_snippet(project: Path) -> None:
    path = write_draft(project, "")
    ws = Workspace()
    base = path.read_text()
    types = labels(ws, path, base + "fact new_fact: |")
    assert {"boolean", "string", "Country", "EndUserType", "set of"} <= set(types)
    assert labels(ws, path, base.replace("  status draft", "  status |")) == ["draft", "proposed", "in-force"]
    empty = (project / "policies" / "ear-742.7" / "2031-01-01.policy").resolve()
    ws.set_text(empty, "")
    snippet = next(i for i in f.completion(ws, empty, 0, 0).items if i.label == "policy header …")
    assert snippet.insert_text is not None
    assert '"${1:ear-742.7}"' in snippet.insert_text and "2031-01-01" in snippet.insert_text
    assert 'use "../shared/export-controls.vocab"' in snippet.insert_text


def test_hover_on_a_value_a_table_and_a_decision(project: Path) -> None:
    ws = Workspace()
    vocab = (project / VOCAB).resolve()
    lines = vocab.read_text().splitlines()

    def hover(needle: str, offset: int = 0) -> str:
        line = next(i for i, text in enumerate(lines) if needle in text)
        result = f.hover(ws, vocab, line, lines[line].index(needle) + offset)
        assert result is not None and isinstance(result.contents, t.MarkupContent), needle
        return result.contents.value

    value = hover("<government, government_linked>", 1)
    assert "a value of the enumeration `EndUserType`" in value
    table = hover("table cc_columns", len("table "))
    assert "cc-columns.json" in table and "| key | value | in force |" in table
    decision = hover("decision license_review", len("decision "))
    assert "**Default:** `not_applicable`" in decision


def test_rename_refuses_bad_and_taken_names(project: Path) -> None:
    ws = Workspace()
    vocab = (project / VOCAB).resolve()
    lines = vocab.read_text().splitlines()
    line = next(i for i, text in enumerate(lines) if text.startswith("fact civil_disorder"))
    with pytest.raises(f.RenameError, match="not a name"):
        f.rename(ws, vocab, line, 6, "two words")
    with pytest.raises(f.RenameError, match="not a name"):
        f.rename(ws, vocab, line, 6, "and")
    with pytest.raises(f.RenameError, match="already declared"):
        f.rename(ws, vocab, line, 6, "hr_abuse_risk")
    edit = f.rename(ws, vocab, line, 6, "unrest")
    assert edit is not None and edit.changes is not None and len(edit.changes) >= 3


def test_range_formatting_touches_only_the_selection(project: Path) -> None:
    ws = Workspace()
    path = (project / POLICY).resolve()
    text = path.read_text()
    messy = text.replace(
        '  cite "15 CFR 742.7(b)(1)"\n  if cc_application\n',
        '      cite "15 CFR 742.7(b)(1)"\n  if   cc_application\n',
        1,
    )
    messy = messy.replace("  overrides cc-favorable\n", "     overrides    cc-favorable\n", 1)
    ws.set_text(path, messy)
    whole = f.format_document(ws, path)
    assert len(whole) >= 2
    first = messy.splitlines().index('      cite "15 CFR 742.7(b)(1)"')
    part = f.format_document(ws, path, Range(first, 0, first + 1, 0))
    assert len(part) == 1 and part[0].range.start.line == first
    assert part[0].new_text == '  cite "15 CFR 742.7(b)(1)"\n  if cc_application\n'


def test_formatting_is_refused_on_a_file_that_does_not_parse(project: Path) -> None:
    ws = Workspace()
    path = (project / POLICY).resolve()
    ws.set_text(path, path.read_text() + "\nrule broken if\n")
    with pytest.raises(f.FormatRefused, match="does not parse"):
        f.format_document(ws, path)


def test_a_syntax_error_leaves_the_other_declarations_checked(project: Path) -> None:
    ws = Workspace()
    path = (project / POLICY).resolve()
    text = (
        path.read_text().replace("if cc_application\n", "if cc_aplication\n", 1) + "\nrule broken\n  if and\n"
    )
    ws.set_text(path, text)
    found = ws.diagnostics([path])[path]
    codes = {d.code for d in found}
    assert {"syntax", "unknown-fact"} <= codes


def test_unsaved_vocabulary_is_what_the_policies_see(project: Path) -> None:
    ws = Workspace()
    policy = (project / POLICY).resolve()
    vocab = (project / VOCAB).resolve()
    ws.set_text(policy, policy.read_text())
    assert ws.diagnostics([policy])[policy] == []
    ws.set_text(vocab, vocab.read_text().replace("define cc_application", "define cc_app"))
    assert ws.affected(vocab) == sorted([policy, vocab])
    assert "unknown-fact" in {d.code for d in ws.diagnostics([policy])[policy]}
    ws.set_text(vocab, None)  # closed without saving: the disk counts again
    assert ws.diagnostics([policy])[policy] == []


def test_quick_fix_adds_overrides_to_the_exception(project: Path) -> None:
    ws = Workspace()
    path = write_draft(
        project,
        'rule a "a"\n  cite "x"\n  if cc_application\n  then decide license_review = favorable\n\n'
        'rule b "b"\n  cite "y"\n  if hr_abuse_risk\n  then decide license_review = denial\n',
    )
    ws.set_text(path, path.read_text())
    conflict = next(d for d in ws.diagnostics([path])[path] if d.code == "conflict")
    actions = f.code_actions(ws, path, [f.to_lsp_diagnostic(conflict)])
    edits = {a.title: a.edit.changes[path.as_uri()][0] for a in actions if a.edit and a.edit.changes}
    fix = edits["Make `b` an exception to `a` (add `overrides a`)"]
    assert fix.new_text == "  overrides a\n"
    assert fix.range.start.line == path.read_text().splitlines().index('  cite "y"') + 1


def test_import_engine_does_not_import_the_protocol_libraries() -> None:
    code = "import sys, engine, engine.cli; print('pygls' in sys.modules or 'lsprotocol' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "False"


def test_policy_lsp_without_pygls_says_how_to_install_it() -> None:
    code = "import sys; sys.modules['pygls'] = None; sys.argv = ['policy', 'lsp']; from engine.entry import run; run()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 2
    assert "pip install 'policy-engine[lsp]'" in done.stderr and "Traceback" not in done.stderr


def test_a_file_outside_the_project_is_checked_but_not_linted(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The linter would walk the folder above a stray vocabulary for its users; outside the
    project the server runs the checker only."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    stray = (elsewhere / "loose.vocab").resolve()
    stray.write_text('vocabulary "loose"\n\nfact unread: boolean "nobody reads it"\nfact bad: Nope "x"\n')
    ws = Workspace()
    ws.set_text(stray, stray.read_text())
    codes = {d.code for d in ws.diagnostics([stray])[stray]}
    assert codes == {"unknown-type"}  # no unused-vocabulary / unused-fact from a walk of the tmp folder
    hover = f.hover(ws, stray, 2, 6)
    assert hover is not None and "nobody reads it" in hover.contents.value  # type: ignore[union-attr]


def test_a_vocabulary_used_from_outside_the_folder_is_indexed(project: Path) -> None:
    outside = project / "vocab"
    outside.mkdir()
    (outside / "extra.vocab").write_text(
        'vocabulary "extra"\n\nfact far_away: boolean "declared outside policies/"\n'
    )
    path = write_draft(
        project,
        'use "../../vocab/extra.vocab"\n\nrule r "r"\n  cite "x"\n  if far_away\n  then decide license_review = denial\n',
    )
    ws = Workspace()
    lines = path.read_text().splitlines()
    line = lines.index("  if far_away")
    target = f.definition(ws, path, line, 6)
    assert target is not None and target.uri.endswith("/vocab/extra.vocab") and target.range.start.line == 2


def test_fact_defaults_in_hover_completion_and_references(project: Path) -> None:
    vocab = (project / VOCAB).resolve()
    text = vocab.read_text().replace(
        'fact end_user.type: EndUserType "kind of end user"',
        'fact end_user.type: EndUserType default private "kind of end user"',
    )
    assert "default private" in text
    ws = Workspace()
    ws.set_text(vocab, text)
    lines = text.splitlines()
    line = next(i for i, row in enumerate(lines) if "default private" in row)
    hover = f.hover(ws, vocab, line, lines[line].index("end_user.type") + 2)
    assert hover is not None and "**Default:** `private`" in hover.contents.value  # type: ignore[union-attr]
    value = f.definition(ws, vocab, line, lines[line].index("private") + 1)
    assert value is not None and value.range.start.line == next(
        i for i, row in enumerate(lines) if "<government, government_linked, private" in row
    )
    got = labels(ws, vocab, text.replace("default private", "default |", 1))
    assert got == ["government", "government_linked", "private", "reseller", "individual"]
    assert labels(
        ws,
        vocab,
        text.replace('fact civil_disorder: boolean "', 'fact civil_disorder: boolean default |"', 1),
    ) == ["true", "false"]
