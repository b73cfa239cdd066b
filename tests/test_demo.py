"""`make demo` (python -m engine.demo): it runs, and the command it tells the reader to type exists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_demo_runs_and_its_last_command_can_be_typed_as_printed() -> None:
    """The demo's venv is not activated by `make demo`: the command is printed with its path."""
    proc = subprocess.run(
        [sys.executable, "-m", "engine.demo"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if " diff policies/ear-742.7@" in line)
    command = lines[at].split()
    executable = Path(command[0])
    assert executable.name == "policy"
    runnable = executable if executable.is_absolute() else ROOT / executable
    assert runnable.exists()
    typed = subprocess.run(
        [str(runnable), *command[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert typed.returncode == 0, typed.stderr
    assert typed.stdout.startswith("policy diff: ear-742.7 2020-03-09 -> 2020-10-06")
    hint = lines[at + 1]
    assert hint.startswith("(or `source ") and hint.endswith(
        "/activate` once, to type `policy ...` in this shell)"
    )
