"""docs/authoring.md, replayed end to end from an empty folder: every command, every output, the checklist.

The tutorial is the script. Its file blocks are written, its console blocks (```` ``` ```` blocks
whose lines start with `$ `) are run in order and must print exactly what the page shows,
and the prose steps ("fix the spelling", "add the citation") are done by the commands in
`<!-- replay: ... -->` comments beside them, which Markdown does not render:

- `<!-- replay: write PATH -->` / `<!-- replay: append PATH -->`: the next fenced block is the
  file's content (append adds it after a blank line);
- `<!-- replay: shell` + lines + `-->`: shell commands for an edit the prose describes;
- `<!-- replay: shell-block -->`: the next fenced block is run as a shell script (the layout
  step; the folder it ends in is where the rest runs);
- `<!-- replay: checklist -->`: every line of the next fenced block must exit 0.

`policy` runs in-process (click's runner, stdout and stderr interleaved as a terminal shows
them); `cat`, `sed` and the like run in bash. After editing the page, refresh its outputs with
`python tests/test_authoring_guide.py --write` and read the diff before committing it.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: `python tests/test_authoring_guide.py --write`
    sys.path.insert(0, str(ROOT))

from engine.cli import main  # noqa: E402

GUIDE = ROOT / "docs" / "authoring.md"

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)
_MARKER = re.compile(r"<!-- replay: (\S+)(.*?)-->", re.S)


@dataclass(frozen=True)
class Step:
    """One thing the replay does, with where the page says it (for failure messages)."""

    kind: str  # write, append, shell, shell-block, checklist, console
    argument: str  # a path, shell text, or the console block
    line: int
    block: tuple[int, int] | None = None  # the fenced block's content span in the page (console)


def steps(text: str) -> list[Step]:
    """The page as a list of steps, in order."""
    found: list[Step] = []
    pending: tuple[str, str, int] | None = None
    events = sorted(
        [(m.start(), "marker", m) for m in _MARKER.finditer(text)]
        + [(m.start(), "fence", m) for m in _FENCE.finditer(text)],
        key=lambda e: e[0],
    )
    for start, what, match in events:
        line = text.count("\n", 0, start) + 1
        if what == "marker":
            kind, rest = match.group(1), match.group(2).strip()
            if kind == "shell":
                found.append(Step("shell", rest, line))
            else:
                pending = (kind, rest, line)
            continue
        language, body = match.group(1), match.group(2)
        if pending is not None:
            kind, path, _ = pending
            found.append(Step(kind, f"{path}\n{body}" if kind in ("write", "append") else body, line))
            pending = None
        elif language == "" and body.startswith("$ "):
            found.append(Step("console", body, line, match.span(2)))
    return found


def console_commands(block: str) -> Iterator[tuple[str, list[str]]]:
    """`$ command` lines of a console block with the output lines shown under each."""
    command: str | None = None
    shown: list[str] = []
    for row in block.splitlines():
        if row.startswith("$ "):
            if command is not None:
                yield command, _trim(shown)
            command, shown = row[2:], []
        else:
            shown.append(row)
    if command is not None:
        yield command, _trim(shown)


def _trim(lines: list[str]) -> list[str]:
    while lines and lines[-1] == "":
        lines.pop()
    return lines


class Replay:
    """Runs the steps in a folder; records what each console command printed."""

    def __init__(self, folder: Path):
        self.cwd = folder
        self.printed: list[tuple[Step, str, list[str], list[str]]] = []  # step, command, shown, actual
        self.commands: list[str] = []

    def run(self, command: str) -> tuple[int, str]:
        """One command line as the page types it: `policy ...` in-process, anything else in bash."""
        self.commands.append(command)
        words = shlex.split(command)
        if words and words[0] == "policy":
            previous = Path.cwd()
            os.chdir(self.cwd)
            try:
                result = CliRunner().invoke(main, words[1:], catch_exceptions=False, color=False)
            finally:
                os.chdir(previous)
            return result.exit_code, result.output
        proc = subprocess.run(
            ["bash", "-c", command], cwd=self.cwd, capture_output=True, text=True, check=False
        )
        return proc.returncode, proc.stdout + proc.stderr

    def step(self, step: Step) -> None:
        if step.kind in ("write", "append"):
            path, _, body = step.argument.partition("\n")
            target = self.cwd / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if step.kind == "append":
                body = target.read_text(encoding="utf-8") + "\n" + body
            target.write_text(body, encoding="utf-8")
        elif step.kind == "shell":
            code, output = self.run(step.argument)
            assert code == 0, f"docs/authoring.md:{step.line}: `{step.argument}` failed:\n{output}"
        elif step.kind == "shell-block":
            proc = subprocess.run(
                ["bash", "-ec", step.argument + "\npwd"], cwd=self.cwd, capture_output=True, text=True
            )
            assert proc.returncode == 0, proc.stderr
            self.cwd = Path(proc.stdout.splitlines()[-1])
        elif step.kind == "checklist":
            for command in step.argument.splitlines():
                if command.strip():
                    code, output = self.run(command)
                    assert code == 0, f"checklist `{command}` exits {code}:\n{output}"
        else:
            for command, shown in console_commands(step.argument):
                _, output = self.run(command)
                self.printed.append((step, command, shown, output.splitlines()))


def replay(folder: Path) -> Replay:
    text = GUIDE.read_text(encoding="utf-8")
    runner = Replay(folder)
    for step in steps(text):
        runner.step(step)
    return runner


def test_the_authoring_tutorial_replays_from_an_empty_folder(tmp_path: Path) -> None:
    """Every command of the page prints what the page shows, and the finished policy passes the checklist."""
    assert not any(tmp_path.iterdir())
    runner = replay(tmp_path)
    assert len(runner.printed) >= 25
    for step, command, shown, actual in runner.printed:
        assert actual == shown, f"docs/authoring.md:{step.line}: `{command}` now prints:\n" + "\n".join(
            actual
        )


def summary_script(text: str) -> str:
    """The page's steps as one shell script (what "Replaying this tutorial" shows)."""
    lines: list[str] = []
    for step in steps(text):
        if step.kind in ("write", "append"):
            path = step.argument.partition("\n")[0]
            lines.append(f"# {'write' if step.kind == 'write' else 'append to'} {path} (its text is above)")
        elif step.kind in ("shell", "shell-block"):
            lines.append(step.argument.rstrip("\n"))
        elif step.kind == "checklist":
            lines += ["# the checklist", step.argument.rstrip("\n")]
        else:
            lines += [command for command, _ in console_commands(step.argument)]
    return "\n".join(lines) + "\n"


def _summary_span(text: str) -> tuple[int, int]:
    heading = text.index("## Replaying this tutorial")
    fence = _FENCE.search(text, heading)
    assert fence is not None
    return fence.span(2)


def test_the_replay_script_at_the_end_is_the_steps() -> None:
    """The shell script under "Replaying this tutorial" is exactly the page's steps, in order."""
    text = GUIDE.read_text(encoding="utf-8")
    start, end = _summary_span(text)
    assert text[start:end] == summary_script(text[:start])


def _write() -> None:
    """Refresh the page's console outputs from a replay (`python tests/test_authoring_guide.py --write`)."""
    text = GUIDE.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as scratch:
        runner = replay(Path(scratch))
    by_block: dict[tuple[int, int], list[str]] = {}
    for step, command, _, actual in runner.printed:
        assert step.block is not None
        by_block.setdefault(step.block, []).append("\n".join([f"$ {command}", *actual]))
    for (start, end), parts in sorted(by_block.items(), reverse=True):
        text = text[:start] + "\n\n".join(parts) + "\n" + text[end:]
    start, end = _summary_span(text)
    text = text[:start] + summary_script(text[:start]) + text[end:]
    GUIDE.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_authoring_guide.py --write")
    _write()
    pytest.main([__file__, "-q"])
