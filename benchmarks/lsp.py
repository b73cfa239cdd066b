"""Latency of `policy lsp` on the bundled pack, through a real client over stdio.

What is timed, each round on a temporary copy of `policies/` (plus the intent files, cases
and lint settings, as a project has them):

- **diagnostics after a policy edit**: from sending `didChange` on
  `ear-742.7/2020-10-06.policy` (alternately breaking and repairing a name) to receiving the
  `publishDiagnostics` that reflects it. This includes the server's debounce (the time it
  waits for the typing to stop), so it is the "last keystroke to squiggle" time.
- **diagnostics after a vocabulary edit**: the same for an edit of the shared vocabulary,
  timed until the *policy* that uses it shows the change (it is re-checked through the
  vocabulary in the editor's buffer).
- **completion**: `textDocument/completion` after `end_user.type = ` (enumeration values).
- **hover**: `textDocument/hover` on a rule id (description, citations, quoted text).

The baseline, measured in the same run: what `policy check` + `policy lint` do for the
edited file from scratch, in process (a fresh `Environment`, so nothing cached), i.e. what an
editor integration that re-ran the CLI's work on every edit would pay; the ratio says how the
server (caches, debounce, protocol, publishing) compares.

    python -m benchmarks.lsp               # 40 rounds
    python -m benchmarks.lsp --rounds 5    # quick
    python -m benchmarks.lsp --smoke       # 3 rounds, for the test suite
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
POLICY = "policies/ear-742.7/2020-10-06.policy"
VOCAB = "policies/shared/export-controls.vocab"
TARGET_MS = 200.0


def copy_project(target: Path) -> Path:
    shutil.copytree(ROOT / "policies", target / "policies")
    for sub in ("intent", "cases"):
        shutil.copytree(ROOT / "fixtures" / sub, target / "fixtures" / sub)
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")
    return target


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "p95": percentile(values, 0.95), "max": max(values)}


class Session:
    """A pygls client connected to `python -m engine lsp` in the project folder."""

    def __init__(self, project: Path):
        from pygls.lsp.client import LanguageClient

        self.project = project
        self.client = LanguageClient("policy-bench", "1")
        self.published: dict[str, list[Any]] = {}
        self.events: dict[str, asyncio.Event] = {}

        @self.client.feature("textDocument/publishDiagnostics")
        def on_diagnostics(params: Any) -> None:
            self.published[params.uri] = list(params.diagnostics)
            self.events.setdefault(params.uri, asyncio.Event()).set()

        @self.client.feature("window/showDocument")
        def on_show(params: Any) -> Any:
            from lsprotocol import types as t

            return t.ShowDocumentResult(success=True)

    async def start(self) -> None:
        from lsprotocol import types as t

        env = dict(os.environ, PYTHONPATH=str(ROOT))
        await self.client.start_io(sys.executable, "-m", "engine", "lsp", env=env, cwd=str(self.project))
        await self.client.initialize_async(
            t.InitializeParams(
                capabilities=t.ClientCapabilities(),
                root_uri=self.project.as_uri(),
                workspace_folders=[t.WorkspaceFolder(uri=self.project.as_uri(), name="bench")],
            )
        )
        self.client.initialized(t.InitializedParams())

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()

    def uri(self, rel: str) -> str:
        return (self.project / rel).resolve().as_uri()

    def open(self, rel: str) -> str:
        from lsprotocol import types as t

        uri = self.uri(rel)
        text = (self.project / rel).read_text(encoding="utf-8")
        self.client.text_document_did_open(
            t.DidOpenTextDocumentParams(
                t.TextDocumentItem(uri=uri, language_id="policy", version=1, text=text)
            )
        )
        return uri

    async def until(self, uri: str, check: Callable[[list[Any]], bool], timeout: float = 20.0) -> None:
        deadline = time.perf_counter() + timeout
        while not (uri in self.published and check(self.published[uri])):
            event = self.events.setdefault(uri, asyncio.Event())
            event.clear()
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError(f"no diagnostics for {uri}")
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                continue

    def replace(self, uri: str, version: int, line: int, col: int, old: str, new: str) -> None:
        from lsprotocol import types as t

        self.client.text_document_did_change(
            t.DidChangeTextDocumentParams(
                text_document=t.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[
                    t.TextDocumentContentChangePartial(
                        range=t.Range(t.Position(line, col), t.Position(line, col + len(old))), text=new
                    )
                ],
            )
        )


def _locate(text: str, needle: str, offset: int) -> tuple[int, int]:
    index = text.index(needle) + offset
    return text.count("\n", 0, index), index - (text.rfind("\n", 0, index) + 1)


def _has(code: str) -> Callable[[list[Any]], bool]:
    return lambda ds: any(d.code == code for d in ds)


def _lacks(code: str) -> Callable[[list[Any]], bool]:
    return lambda ds: not any(d.code == code for d in ds)


async def measure(rounds: int) -> dict[str, Any]:
    from lsprotocol import types as t

    with tempfile.TemporaryDirectory() as tmp:
        project = copy_project(Path(tmp))
        session = Session(project)
        await session.start()
        try:
            policy = session.open(POLICY)
            vocab = session.open(VOCAB)
            await session.until(policy, lambda ds: True)
            await session.until(vocab, lambda ds: True)
            policy_text = (project / POLICY).read_text(encoding="utf-8")
            vocab_text = (project / VOCAB).read_text(encoding="utf-8")
            p_line, p_col = _locate(policy_text, "if cc_application", 3)
            v_line, v_col = _locate(vocab_text, "define cc_application", len("define "))
            c_line = policy_text.count("\n")
            h_line, h_col = _locate(policy_text, "rule cc-favorable", 6)

            policy_ms: list[float] = []
            vocab_ms: list[float] = []
            completion_ms: list[float] = []
            hover_ms: list[float] = []
            version = 1
            for _ in range(rounds):
                for broken in (True, False):
                    version += 1
                    old, new = (
                        ("cc_application", "cc_applicaton") if broken else ("cc_applicaton", "cc_application")
                    )
                    start = time.perf_counter()
                    session.replace(policy, version, p_line, p_col, old, new)
                    await session.until(policy, _has("unknown-fact") if broken else _lacks("unknown-fact"))
                    policy_ms.append((time.perf_counter() - start) * 1000)
                for broken in (True, False):
                    version += 1
                    old, new = (
                        ("cc_application", "cc_applicatio") if broken else ("cc_applicatio", "cc_application")
                    )
                    start = time.perf_counter()
                    session.replace(vocab, version, v_line, v_col, old, new)
                    await session.until(policy, _has("unknown-fact") if broken else _lacks("unknown-fact"))
                    vocab_ms.append((time.perf_counter() - start) * 1000)
            # completion and hover, on a line added at the end of the policy
            version += 1
            session.client.text_document_did_change(
                t.DidChangeTextDocumentParams(
                    text_document=t.VersionedTextDocumentIdentifier(uri=policy, version=version),
                    content_changes=[
                        t.TextDocumentContentChangePartial(
                            range=t.Range(t.Position(c_line, 0), t.Position(c_line, 0)),
                            text="\nrule bench\n  if end_user.type = \n",
                        )
                    ],
                )
            )
            labels: list[str] = []
            for _ in range(rounds * 2):
                start = time.perf_counter()
                result = await session.client.text_document_completion_async(
                    t.CompletionParams(
                        t.TextDocumentIdentifier(policy), t.Position(c_line + 2, len("  if end_user.type = "))
                    )
                )
                completion_ms.append((time.perf_counter() - start) * 1000)
                items = result.items if isinstance(result, t.CompletionList) else (result or [])
                labels = [i.label for i in items]
                start = time.perf_counter()
                hover = await session.client.text_document_hover_async(
                    t.HoverParams(t.TextDocumentIdentifier(policy), t.Position(h_line, h_col))
                )
                hover_ms.append((time.perf_counter() - start) * 1000)
            assert "government" in labels, labels
            assert hover is not None
        finally:
            await session.stop()
    return {
        "diagnostics_policy_edit": summary(policy_ms),
        "diagnostics_vocabulary_edit": summary(vocab_ms),
        "completion": summary(completion_ms),
        "hover": summary(hover_ms),
        "samples": {"policy": len(policy_ms), "vocabulary": len(vocab_ms), "completion": len(completion_ms)},
    }


def baseline(rounds: int) -> dict[str, float]:
    """In-process `check_file` + `lint` of the edited policy, on the same copy: the engine's floor."""
    from engine.api import Environment
    from engine.linter import LintConfig, lint

    with tempfile.TemporaryDirectory() as tmp:
        project = copy_project(Path(tmp))
        previous = Path.cwd()
        os.chdir(project)
        try:
            config = LintConfig.load(start=project)
            Environment().check_file(POLICY)  # grammar built once, as in a running server
            times = []
            for _ in range(max(rounds, 3)):
                start = time.perf_counter()
                fresh = Environment()  # no cache: what one `policy check` + `policy lint` costs
                fresh.check_file(POLICY)
                lint([POLICY], config, environment=fresh)
                times.append((time.perf_counter() - start) * 1000)
        finally:
            os.chdir(previous)
    return summary(times)


def server_work(rounds: int) -> dict[str, dict[str, float]]:
    """CPU time (not wall time) of the server's diagnostics pass for one edit, in process.

    On a loaded machine the wall-clock latencies above include waiting for a core; this is
    the work itself: `Workspace.diagnostics` after a policy edit and after a vocabulary edit,
    with both files open, as the server's first (checker + linter) pass runs it.
    """
    from engine.lsp.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        project = copy_project(Path(tmp))
        previous = Path.cwd()
        os.chdir(project)
        try:
            ws = Workspace()
            policy, vocab = (project / POLICY).resolve(), (project / VOCAB).resolve()
            texts = {p: p.read_text(encoding="utf-8") for p in (policy, vocab)}
            for path, text in texts.items():
                ws.set_text(path, text)
            ws.diagnostics([policy, vocab], conflicts=False)
            out: dict[str, dict[str, float]] = {}
            for name, path in (("policy edit", policy), ("vocabulary edit", vocab)):
                times = []
                for i in range(max(rounds, 3) * 2):
                    broken = texts[path].replace("cc_application", "cc_applicatio", 1)
                    ws.set_text(path, broken if i % 2 == 0 else texts[path])
                    start = time.process_time()
                    ws.diagnostics(ws.affected(path), conflicts=False)
                    times.append((time.process_time() - start) * 1000)
                out[name] = summary(times)
        finally:
            os.chdir(previous)
    return out


def report(results: dict[str, Any], floor: dict[str, float], load: tuple[float, float] | None = None) -> str:
    lines = [
        f"machine: {os.cpu_count()} cores"
        + (f", load average {load[0]:.1f} before and {load[1]:.1f} after the run" if load else ""),
        f"baseline (in-process check + lint of {POLICY}): median {floor['median']:.1f} ms, p95 {floor['p95']:.1f} ms",
        "",
        f"{'measure':<34} {'median ms':>10} {'p95 ms':>8} {'max ms':>8} {'x baseline':>11}",
    ]
    for key in ("diagnostics_policy_edit", "diagnostics_vocabulary_edit", "completion", "hover"):
        row = results[key]
        lines.append(
            f"{key:<34} {row['median']:>10.1f} {row['p95']:>8.1f} {row['max']:>8.1f} {row['median'] / floor['median']:>11.2f}"
        )
    worst = max(results["diagnostics_policy_edit"]["p95"], results["diagnostics_vocabulary_edit"]["p95"])
    verdict = "met" if worst <= TARGET_MS else "MISSED"
    if "server_work" in results:
        lines += ["", "server work per edit (CPU ms, in process, first pass: checker + linter):"]
        for name, row in results["server_work"].items():
            lines.append(f"  {name:<18} median {row['median']:.1f}  p95 {row['p95']:.1f}")
    lines += ["", f"target: diagnostics within {TARGET_MS:.0f} ms of the last keystroke (p95): {verdict}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--smoke", action="store_true", help="3 rounds, to check the benchmark runs")
    args = parser.parse_args(argv)
    rounds = 3 if args.smoke else args.rounds
    before = os.getloadavg()[0]
    floor = baseline(rounds)
    results = asyncio.run(measure(rounds))
    results["server_work"] = server_work(rounds)
    print(report(results, floor, (before, os.getloadavg()[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
