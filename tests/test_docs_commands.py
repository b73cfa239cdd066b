"""Every `policy` command a doc page shows (outside the tutorial's own folder) works as typed here.

The pages under docs/ and the README show commands to copy. A command naming a file or
folder that is not in the repository fails for the reader who types it, so every path
argument must exist; read-only commands are run and must not end in a usage error.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import main
from tests.conftest import ROOT

#: The tutorial builds its own folder (tests/test_authoring_guide.py replays it); rendered
#: policy pages hold no commands.
SKIP = {"authoring.md"}
_FENCE = re.compile(r"^```(?:sh|console|)\n(.*?)^```", re.S | re.M)


def shown_commands() -> list[tuple[str, str]]:
    found = []
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        if page.name in SKIP:
            continue
        for block in _FENCE.findall(page.read_text(encoding="utf-8")):
            rows = block.splitlines()
            if any(r.startswith("$ ") for r in rows):  # a console block: only its `$` lines are typed
                rows = [r for r in rows if r.startswith("$ ")]
            for row in rows:
                command = row.removeprefix("$ ").split("  #")[0].strip()
                if command.startswith("policy ") and "<" not in command and "|" not in command:
                    found.append((page.name, command))
    return found


COMMANDS = shown_commands()


def _paths(command: str) -> list[str]:
    """Arguments that name repository files: they contain a slash and are not options or git revisions."""
    words = shlex.split(command.rstrip("\\ "))[1:]  # a shell line continuation ends some shown lines
    return [
        w.split("@")[0]
        for w in words
        if "/" in w and not w.startswith(("-", "git:", "http", "/", "~", "$")) and not w.startswith("@")
    ]


def test_the_docs_show_commands() -> None:
    assert len(COMMANDS) > 10


@pytest.mark.parametrize(("page", "command"), COMMANDS, ids=[f"{p}:{c}" for p, c in COMMANDS])
def test_every_path_a_shown_command_names_exists(page: str, command: str) -> None:
    missing = [p for p in _paths(command) if not (ROOT / p).exists() and not p.startswith(("out", "/tmp"))]
    assert not missing, f"{page}: `{command}` names {missing}, which is not in the repository"


READ_ONLY = ("policy fmt --diff", "policy fmt --check", "policy lint policies", "policy lint --list-codes")


@pytest.mark.parametrize(
    ("page", "command"),
    [(p, c) for p, c in COMMANDS if c.startswith(READ_ONLY)],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_read_only_commands_run_as_typed(page: str, command: str, in_root: Path) -> None:
    result = CliRunner().invoke(main, shlex.split(command)[1:])
    assert result.exit_code in (0, 1), f"{page}: `{command}` exits {result.exit_code}:\n{result.output}"
