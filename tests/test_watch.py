"""`--watch`: runs once, runs again when an input changes, ignores editor droppings, stops on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import engine.watch
from engine.cli import main
from engine.watch import _relevant, watch_loop
from tests.conftest import HEADER, ROOT

VOCAB = 'vocabulary "v"\n  title "v"\n\nfact a: boolean "a"\n\nobligation o "o"\n'
RULE = '\nuse "v.vocab"\n\nrule r "r"\n  cite "s. 1"\n  if a\n  then require o\n'


def _wait(predicate: Any, timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_only_the_files_commands_read_trigger_a_run() -> None:
    assert _relevant(None, "/x/policies/a/2020-01-01.policy")
    assert _relevant(None, "/x/fixtures/intent/a.toml")
    assert _relevant(None, "/x/cases/c.json")
    assert not _relevant(None, "/x/policies/a/.2020-01-01.policy.swp")
    assert not _relevant(None, "/x/policies/a/.2020-01-01.policy.git-abc.tmp")
    assert not _relevant(None, "/x/notes.txt")


def test_a_change_runs_the_command_again(tmp_path: Path) -> None:
    runs: list[int] = []
    stop = threading.Event()

    def once() -> None:
        runs.append(1)
        raise SystemExit(len(runs) % 2)

    thread = threading.Thread(target=watch_loop, args=([tmp_path], once), kwargs={"stop": stop})
    thread.start()
    try:
        assert _wait(lambda: len(runs) == 1)
        time.sleep(0.3)  # let the watcher start
        (tmp_path / "notes.txt").write_text("not read by any command")
        (tmp_path / "p.policy").write_text("x")
        assert _wait(lambda: len(runs) == 2), "the change did not trigger a second run"
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(runs) == 2


def test_policy_test_watch_reruns_with_the_same_options(
    in_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command hands the watch loop its inputs and a run that re-reads everything each time."""
    seen: dict[str, Any] = {}

    def fake_loop(paths: list[Any], once: Any, **_: Any) -> None:
        seen["paths"] = [str(p) for p in paths]
        for _ in range(2):
            with pytest.raises(SystemExit) as exit_info:
                once()
            assert exit_info.value.code == 0

    monkeypatch.setattr(engine.watch, "watch_loop", fake_loop)
    result = CliRunner().invoke(main, ["test", "--watch"], catch_exceptions=False)
    assert result.exit_code == 0
    assert seen["paths"] == ["policies", "fixtures/cases", "fixtures/intent"]
    assert result.output.count("expectation(s) over") == 2


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_policy_check_watch_end_to_end(tmp_path: Path) -> None:
    """A real `policy check --watch`: clean, then an error typed in the editor, then Ctrl-C (exit 0)."""
    (tmp_path / "v.vocab").write_text(VOCAB, encoding="utf-8")
    policy = tmp_path / "p.policy"
    policy.write_text(HEADER + RULE, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from engine.entry import run; run()", "check", "--watch", "."],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []

    def read(stream: Any) -> None:
        for line in stream:
            lines.append(line)

    readers = [threading.Thread(target=read, args=(s,), daemon=True) for s in (proc.stdout, proc.stderr)]
    for reader in readers:
        reader.start()
    try:
        assert _wait(lambda: any("[watch] exit 0" in x for x in lines)), "".join(lines)
        time.sleep(0.5)
        policy.write_text(HEADER + RULE.replace("if a", "if b"), encoding="utf-8")
        assert _wait(lambda: any("[watch] exit 1" in x for x in lines)), "".join(lines)
        assert any("error[unknown-fact]" in x for x in lines)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert any("[watch] stopped" in x for x in lines)
