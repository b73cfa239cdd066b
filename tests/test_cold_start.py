"""A cold `import engine` + load + evaluate stays light: no report, CLI or optional stack is imported,
the pydantic case model is not built for a good case, and the grammar cache is private.

Nothing here is timed (benchmarks/cold_start.py measures); these pin what makes it fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import cold_start
from engine import grammar
from tests.conftest import ROOT

HEAVY = (
    "jinja2",
    "click",
    "pygments",
    "importlib.metadata",
    "watchfiles",
    "z3",
    "fastapi",
    "rich",
    "engine.diff",
)


def test_a_cold_evaluate_imports_nothing_it_does_not_need(tmp_path: Path) -> None:
    code = cold_start.STEPS["import + load + evaluate"] + (
        "import sys, json\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
        "print(p.compiled._case_model is None)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    imported, case_model_unbuilt = proc.stdout.splitlines()
    assert json.loads(imported) == []
    assert case_model_unbuilt == "True"
    assert (tmp_path / "policy-engine" / "grammar.lark-cache").is_file()  # the next process reuses it


def test_the_grammar_cache_lives_in_a_private_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("POLICY_ENGINE_NO_CACHE", raising=False)
    assert grammar.cache_file() == str(tmp_path / "policy-engine" / "grammar.lark-cache")
    assert (tmp_path / "policy-engine").stat().st_mode & 0o777 == 0o700


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_a_folder_others_can_write_is_never_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache is a pickle: a folder anyone else can write could hand us code to run."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "policy-engine").mkdir(mode=0o700)
    (tmp_path / "policy-engine").chmod(0o777)
    assert grammar.cache_file() is False
    monkeypatch.setenv("POLICY_ENGINE_NO_CACHE", "1")
    (tmp_path / "policy-engine").chmod(0o700)
    assert grammar.cache_file() is False


def test_a_corrupt_cache_is_rebuilt(tmp_path: Path) -> None:
    folder = tmp_path / "policy-engine"
    folder.mkdir(mode=0o700)
    (folder / "grammar.lark-cache").write_bytes(b"not a cache\n\x00\x01")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", cold_start.STEPS["import + load + evaluate"]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_the_benchmark_report_shape() -> None:
    times = {name: [(0.02, 0.01), (0.03, 0.02)] for name in cold_start.STEPS}
    text = cold_start.report(times)
    assert text.splitlines()[0].split() == [
        "step",
        "wall",
        "med",
        "wall",
        "best",
        "cpu",
        "med",
        "cpu",
        "best",
        "x",
        "baseline",
    ]
    assert len(text.splitlines()) == 1 + len(cold_start.STEPS)
