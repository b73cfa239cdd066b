"""`policy lsp`: the language server (pygls, over stdio) for `.policy` and `.vocab` files.

Routing only: state lives in `Workspace`, answers in `features` and `lenses`. Diagnostics
are debounced (a burst of keystrokes is checked once, `debounce_ms` after the last) and
computed off the event loop, in two passes: checker and linter first (the fast part,
within 200 ms of the last keystroke on the bundled pack, see docs/performance.md), then
the conflict proofs of `policy check`, on a thread of their own, published as soon as
they are known.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lsprotocol import types as t
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from engine.errors import Diagnostic, UsageError
from engine.lsp import features as f
from engine.lsp.index import Range
from engine.lsp.lenses import DIFF_PREVIOUS, EVALUATE, Lenses
from engine.lsp.workspace import POLICY_SUFFIXES, Workspace, universe_root

__all__ = ["PolicyLanguageServer", "serve"]

VERSION = "0.1.0"
DEFAULT_DEBOUNCE_MS = 60


class PolicyLanguageServer(LanguageServer):
    """The server, with the policy workspace it holds and the pending diagnostics runs."""

    def __init__(self) -> None:
        super().__init__("policy-lsp", VERSION, text_document_sync_kind=t.TextDocumentSyncKind.Incremental)
        self.policy = Workspace()
        self.lens = Lenses(self.policy)
        self.debounce_ms = DEFAULT_DEBOUNCE_MS
        self.roots: list[Path] = []
        self._pending: dict[Path, asyncio.TimerHandle] = {}
        self._published: dict[Path, set[Path]] = {}  # universe root -> files given diagnostics
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy-check")
        self._prover = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy-conflicts")
        self._run = 0

    # -- diagnostics ------------------------------------------------------------------
    def schedule(self, path: Path, delay_ms: int | None = None) -> None:
        """Check `path` (and the open files that read it) once the typing stops."""
        root = universe_root(path)
        pending = self._pending.pop(root, None)
        if pending is not None:
            pending.cancel()
        loop = asyncio.get_event_loop()
        delay = (self.debounce_ms if delay_ms is None else delay_ms) / 1000
        self._pending[root] = loop.call_later(delay, lambda: asyncio.ensure_future(self._diagnose(root)))

    async def _diagnose(self, root: Path) -> None:
        self._pending.pop(root, None)
        self._run += 1
        run = self._run
        files = [p for p in self.policy.open_texts if universe_root(p) == root]
        loop = asyncio.get_event_loop()
        policies = [p for p in files if p.suffix == ".policy"]
        if policies and len(policies) < len(files):
            # A vocabulary is open too: its own lint findings need every policy that uses it
            # re-checked, so the open policies' findings (what an edit there breaks) go first.
            first = await loop.run_in_executor(
                self._executor, lambda: self.policy.diagnostics(policies, conflicts=False)
            )
            if run != self._run:
                return
            self._publish_files(root, policies, first)
        fast = await loop.run_in_executor(
            self._executor, lambda: self.policy.diagnostics(files, conflicts=False)
        )
        if run != self._run:
            return  # the text changed while this pass ran: the newer run publishes
        self._publish(root, fast)
        # The conflict proofs run on their own thread, so the next keystroke's check never
        # queues behind a witness search that is still going.
        proofs = await loop.run_in_executor(self._prover, lambda: self._conflicts(files))
        if run != self._run or not any(proofs.values()):
            return
        full = {path: list(found) for path, found in fast.items()}
        for path, found in proofs.items():
            full.setdefault(path, []).extend(found)
        self._publish(root, full)

    def _conflicts(self, files: list[Path]) -> dict[Path, list[Diagnostic]]:
        out: dict[Path, list[Diagnostic]] = {}
        for path in files:
            if path.suffix == ".policy":
                for finding in self.policy.conflicts(path):
                    out.setdefault(self.policy.absolute(finding.file), []).append(finding)
        return out

    def _publish_files(self, root: Path, files: list[Path], found: dict[Path, list[Diagnostic]]) -> None:
        """Publish the given files only (a first, partial pass); the others keep what they show."""
        published = self._published.setdefault(root, set())
        for path in files:
            diagnostics = [f.to_lsp_diagnostic(d) for d in found.get(path, [])]
            self.text_document_publish_diagnostics(
                t.PublishDiagnosticsParams(uri=path.as_uri(), diagnostics=diagnostics)
            )
            if diagnostics:
                published.add(path)
            else:
                published.discard(path)

    def _publish(self, root: Path, found: dict[Path, list[Diagnostic]]) -> None:
        before = self._published.get(root, set())
        now = {p for p, ds in found.items() if ds} | {p for p in found if p in self.policy.open_texts}
        for path in before | now:
            diagnostics = [f.to_lsp_diagnostic(d) for d in found.get(path, [])]
            self.text_document_publish_diagnostics(
                t.PublishDiagnosticsParams(uri=path.as_uri(), diagnostics=diagnostics)
            )
        self._published[root] = {p for p, ds in found.items() if ds}


server = PolicyLanguageServer()


def _path(uri: str) -> Path:
    fs = to_fs_path(uri)
    if fs is None:
        raise JsonRpcInvalidParams(f"not a file URI: {uri}")
    return Path(fs).resolve()


def _options(ls: PolicyLanguageServer, options: Any) -> None:
    """initializationOptions: debounceMs, intentDir, casesDir (all optional)."""
    if not isinstance(options, dict):
        return
    if isinstance(options.get("debounceMs"), int | float):
        ls.debounce_ms = int(options["debounceMs"])
    for key, attr in (("intentDir", "intent_dir"), ("casesDir", "cases_dir")):
        if isinstance(options.get(key), str) and options[key]:
            setattr(ls.lens, attr, Path(options[key]).expanduser().resolve())


@server.feature(t.INITIALIZE)
def initialize(ls: PolicyLanguageServer, params: t.InitializeParams) -> None:
    _options(ls, params.initialization_options)
    folders = params.workspace_folders or []
    ls.roots = [Path(p) for p in (to_fs_path(w.uri) for w in folders) if p]
    if not ls.roots and params.root_uri:
        root = to_fs_path(params.root_uri)
        ls.roots = [Path(root)] if root else []
    if ls.roots and ls.roots[0].is_dir():
        # The engine names files relative to the working directory, as the CLI run from the
        # project root does; the server runs there too, so messages read the same.
        os.chdir(ls.roots[0])
        ls.policy = Workspace()
        ls.lens = Lenses(ls.policy, ls.lens.intent_dir, ls.lens.cases_dir)


@server.feature(t.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: PolicyLanguageServer, params: t.DidOpenTextDocumentParams) -> None:
    path = _path(params.text_document.uri)
    if path.suffix not in POLICY_SUFFIXES:
        return
    ls.policy.set_text(path, params.text_document.text)
    ls.schedule(path, delay_ms=0)


@server.feature(t.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: PolicyLanguageServer, params: t.DidChangeTextDocumentParams) -> None:
    path = _path(params.text_document.uri)
    if path.suffix not in POLICY_SUFFIXES:
        return
    document = ls.workspace.get_text_document(params.text_document.uri)
    ls.policy.set_text(path, document.source)
    ls.schedule(path)


@server.feature(t.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: PolicyLanguageServer, params: t.DidSaveTextDocumentParams) -> None:
    path = _path(params.text_document.uri)
    ls.policy.touch(path)  # version and lock findings read the saved files
    ls.schedule(path, delay_ms=0)


@server.feature(t.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: PolicyLanguageServer, params: t.DidCloseTextDocumentParams) -> None:
    path = _path(params.text_document.uri)
    if path.suffix not in POLICY_SUFFIXES:
        return
    ls.policy.set_text(path, None)
    ls.text_document_publish_diagnostics(t.PublishDiagnosticsParams(uri=path.as_uri(), diagnostics=[]))
    ls.schedule(path, delay_ms=0)


@server.feature(t.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def did_change_watched(ls: PolicyLanguageServer, params: t.DidChangeWatchedFilesParams) -> None:
    for change in params.changes:
        path = _path(change.uri)
        if path.name == "pyproject.toml":
            ls.policy.reload_config()
        ls.policy.touch(path)
        if path.suffix in (*POLICY_SUFFIXES, ".json", ".toml", ".lock"):
            ls.schedule(path)


# -- requests ---------------------------------------------------------------------------


@server.feature(t.TEXT_DOCUMENT_HOVER)
def hover(ls: PolicyLanguageServer, params: t.HoverParams) -> t.Hover | None:
    p = params.position
    return f.hover(ls.policy, _path(params.text_document.uri), p.line, p.character)


@server.feature(t.TEXT_DOCUMENT_DEFINITION)
def definition(ls: PolicyLanguageServer, params: t.DefinitionParams) -> t.Location | None:
    p = params.position
    return f.definition(ls.policy, _path(params.text_document.uri), p.line, p.character)


@server.feature(t.TEXT_DOCUMENT_REFERENCES)
def references(ls: PolicyLanguageServer, params: t.ReferenceParams) -> list[t.Location]:
    p = params.position
    return f.references(
        ls.policy, _path(params.text_document.uri), p.line, p.character, params.context.include_declaration
    )


@server.feature(t.TEXT_DOCUMENT_PREPARE_RENAME)
def prepare_rename(
    ls: PolicyLanguageServer, params: t.PrepareRenameParams
) -> t.PrepareRenamePlaceholder | None:
    p = params.position
    return f.prepare_rename(ls.policy, _path(params.text_document.uri), p.line, p.character)


@server.feature(t.TEXT_DOCUMENT_RENAME)
def rename(ls: PolicyLanguageServer, params: t.RenameParams) -> t.WorkspaceEdit | None:
    p = params.position
    try:
        return f.rename(ls.policy, _path(params.text_document.uri), p.line, p.character, params.new_name)
    except f.RenameError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None


@server.feature(t.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def document_symbols(ls: PolicyLanguageServer, params: t.DocumentSymbolParams) -> list[t.DocumentSymbol]:
    return f.document_symbols(ls.policy, _path(params.text_document.uri))


@server.feature(t.WORKSPACE_SYMBOL)
def workspace_symbols(ls: PolicyLanguageServer, params: t.WorkspaceSymbolParams) -> list[t.WorkspaceSymbol]:
    roots = sorted({universe_root(p) for p in ls.policy.open_texts}) or [
        r / "policies" for r in ls.roots if (r / "policies").is_dir()
    ]
    return f.workspace_symbols(ls.policy, roots, params.query)


@server.feature(t.TEXT_DOCUMENT_FOLDING_RANGE)
def folding(ls: PolicyLanguageServer, params: t.FoldingRangeParams) -> list[t.FoldingRange]:
    return f.folding_ranges(ls.policy, _path(params.text_document.uri))


@server.feature(
    t.TEXT_DOCUMENT_COMPLETION,
    t.CompletionOptions(trigger_characters=[" ", "<", ",", "=", '"', "["]),
)
def completion(ls: PolicyLanguageServer, params: t.CompletionParams) -> t.CompletionList:
    p = params.position
    return f.completion(ls.policy, _path(params.text_document.uri), p.line, p.character)


def _format(ls: PolicyLanguageServer, uri: str, selection: Range | None) -> list[t.TextEdit] | None:
    try:
        return f.format_document(ls.policy, _path(uri), selection)
    except f.FormatRefused as exc:
        ls.window_show_message(t.ShowMessageParams(t.MessageType.Warning, str(exc)))
        return None


@server.feature(t.TEXT_DOCUMENT_FORMATTING)
def formatting(ls: PolicyLanguageServer, params: t.DocumentFormattingParams) -> list[t.TextEdit] | None:
    return _format(ls, params.text_document.uri, None)


@server.feature(t.TEXT_DOCUMENT_RANGE_FORMATTING)
def range_formatting(
    ls: PolicyLanguageServer, params: t.DocumentRangeFormattingParams
) -> list[t.TextEdit] | None:
    r = params.range
    return _format(
        ls, params.text_document.uri, Range(r.start.line, r.start.character, r.end.line, r.end.character)
    )


@server.feature(
    t.TEXT_DOCUMENT_CODE_ACTION,
    t.CodeActionOptions(code_action_kinds=[t.CodeActionKind.QuickFix]),
)
def code_action(ls: PolicyLanguageServer, params: t.CodeActionParams) -> list[t.CodeAction]:
    return f.code_actions(ls.policy, _path(params.text_document.uri), list(params.context.diagnostics))


@server.feature(t.TEXT_DOCUMENT_CODE_LENS)
def code_lens(ls: PolicyLanguageServer, params: t.CodeLensParams) -> list[t.CodeLens]:
    return ls.lens.lenses(_path(params.text_document.uri))


# -- commands behind the lenses -----------------------------------------------------------


def _show(ls: PolicyLanguageServer, name: str, text: str) -> str:
    """Open a read-only report beside the editor (a file in the temp folder), return its path."""
    folder = Path(tempfile.gettempdir()) / "policy-lsp"
    folder.mkdir(exist_ok=True)
    target = folder / name
    target.write_text(text, encoding="utf-8")
    ls.window_show_document(t.ShowDocumentParams(uri=target.as_uri(), external=False, take_focus=False))
    return str(target)


@server.command(EVALUATE)
async def evaluate_case(
    ls: PolicyLanguageServer, uri: str, rule: str | None = None, case: str | None = None
) -> dict[str, Any]:
    """Decide one fixture case with the version in the editor and show the explanation.

    Without a case, the client is asked to pick one (the cases the rule fires on first).
    """
    path = _path(uri)
    if case is None:
        choices = ls.lens.cases(path, rule)[:8]
        if not choices:
            ls.window_show_message(
                t.ShowMessageParams(t.MessageType.Warning, "no fixture cases found (fixtures/cases)")
            )
            return {"error": "no cases"}
        answer = await ls.window_show_message_request_async(
            t.ShowMessageRequestParams(
                t.MessageType.Info,
                f"Evaluate which case{' (rule ' + rule + ' fires on the first ones)' if rule else ''}?",
                [t.MessageActionItem(c) for c in choices],
            )
        )
        if answer is None:
            return {"error": "cancelled"}
        case = answer.title
    try:
        decision, text = ls.lens.evaluate(path, case)
    except UsageError as exc:
        ls.window_show_message(t.ShowMessageParams(t.MessageType.Error, str(exc)))
        return {"error": str(exc)}
    summary = ", ".join(f"{k} = {v.value}" for k, v in decision.decisions.items())
    ls.window_show_message(t.ShowMessageParams(t.MessageType.Info, f"{case}: {summary}"))
    shown = _show(ls, f"{path.stem}-{Path(case).stem}.txt", text)
    _refresh_lenses(ls)
    return {
        "case": case,
        "decisions": {k: v.value for k, v in decision.decisions.items()},
        "text": text,
        "shown": shown,
    }


def _refresh_lenses(ls: PolicyLanguageServer) -> None:
    """Ask the client to re-read the lenses (the evaluated case now shows on each rule)."""
    workspace = ls.client_capabilities.workspace
    lens = workspace.code_lens if workspace else None
    if lens is not None and lens.refresh_support:
        ls.workspace_code_lens_refresh(None)


@server.command(DIFF_PREVIOUS)
def diff_previous(ls: PolicyLanguageServer, uri: str) -> dict[str, Any]:
    path = _path(uri)
    try:
        text = ls.lens.diff_previous(path)
    except UsageError as exc:
        ls.window_show_message(t.ShowMessageParams(t.MessageType.Error, str(exc)))
        return {"error": str(exc)}
    return {"text": text, "shown": _show(ls, f"{path.stem}-diff.txt", text)}


def serve() -> None:
    """Speak the protocol on stdin/stdout until the client says exit."""
    server.start_io()
