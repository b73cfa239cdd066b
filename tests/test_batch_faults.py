"""`policy batch` on faults (issue 11): nothing of the previous output is lost, no traceback,
and the message says how far the run got (docs/batch.md, "Output files").
"""

from __future__ import annotations

import errno
import io
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from engine import batch
from engine.cli import main
from engine.commands import batch as command
from tests.test_batch import (
    INTERRUPTED,
    POLICY,
    ROOT,
    assert_interrupted_cleanly,
    start_batch,
    wait_for_output,
)

PREVIOUS = b'{"line":1,"previous":"run"}\n'


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["batch", *[str(a) for a in args]])


@pytest.fixture
def cases(tmp_path: Path) -> Path:
    path = tmp_path / "cases.jsonl"
    path.write_text(
        "".join(line + "\n" for line in batch.sample_lines(ROOT / "fixtures/cases", 300)), "utf-8"
    )
    return path


def previous_outputs(folder: Path) -> tuple[Path, Path]:
    out, rejects = folder / "out.jsonl", folder / "out.rejects.jsonl"
    out.write_bytes(PREVIOUS)
    rejects.write_bytes(PREVIOUS)
    return out, rejects


def assert_unchanged(*paths: Path) -> None:
    for path in paths:
        assert path.read_bytes() == PREVIOUS
        assert not list(path.parent.glob(f".{path.name}.*.partial")), "a temporary file was left behind"


def test_an_unopenable_rejects_file_leaves_the_previous_decisions(tmp_path: Path, cases: Path) -> None:
    out, _ = previous_outputs(tmp_path)
    result = run(POLICY, cases, "-o", out, "--rejects", tmp_path / "missing" / "r.jsonl")
    assert (result.exit_code == 1 and result.exception is None) or isinstance(result.exception, SystemExit)
    assert "does not exist" in result.output and "Traceback" not in result.output
    assert_unchanged(out)


@pytest.mark.parametrize("where", ["folder", "missing"])
def test_bad_output_locations_are_clear_errors(tmp_path: Path, cases: Path, where: str) -> None:
    target = tmp_path / "dir" if where == "folder" else tmp_path / "nope" / "out.jsonl"
    if where == "folder":
        target.mkdir()
    result = run(POLICY, cases, "-o", target, "--rejects", tmp_path / "r.jsonl")
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: cannot write") and "Traceback" not in result.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_output_is_a_clear_error(tmp_path: Path, cases: Path) -> None:
    out, rejects = previous_outputs(tmp_path)
    out.chmod(0o444)
    result = run(POLICY, cases, "-o", out)
    assert result.exit_code == 1 and "read-only" in result.output
    assert_unchanged(out, rejects)


class FullDisk(io.BufferedWriter):
    """A file on a disk that fills up after `room` bytes."""

    room = 20_000

    def write(self, data: Any) -> int:
        FullDisk.room -= len(data)
        if FullDisk.room < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


def test_a_full_disk_keeps_the_previous_output_and_says_how_far(
    tmp_path: Path, cases: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, rejects = previous_outputs(tmp_path)
    FullDisk.room = 20_000
    monkeypatch.setattr(command.os, "fdopen", lambda fd, mode: FullDisk(io.FileIO(fd, "w")))
    result = run(POLICY, cases, "-o", out, "--workers", "1")
    assert result.exit_code == 1, result.output
    assert "No space left on device" in result.output and "stopped after" in result.output
    assert "keep their previous content" in result.output
    assert_unchanged(out, rejects)


def test_a_completed_run_replaces_the_outputs_whole(tmp_path: Path, cases: Path) -> None:
    out, rejects = previous_outputs(tmp_path)
    result = run(POLICY, cases, "-o", out, "--workers", "1")
    assert result.exit_code == 0, result.output
    assert len(out.read_bytes().splitlines()) == 300 and rejects.read_bytes() == b""
    assert not list(tmp_path.glob(".*.partial"))


def test_sigterm_stops_like_ctrl_c(tmp_path: Path) -> None:
    source = tmp_path / "cases.jsonl"
    with source.open("w", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in batch.sample_lines(ROOT / "fixtures/cases", 100_000))
    out, rejects = tmp_path / "out.jsonl", tmp_path / "out.rejects.jsonl"
    child = start_batch([str(POLICY), str(source), "-o", str(out), "--workers", "1"])
    wait_for_output(out, child)
    child.send_signal(signal.SIGTERM)
    lines = assert_interrupted_cleanly(child, out, rejects)
    assert 0 < lines < 100_000
    assert INTERRUPTED.pattern


def test_an_overlong_line_is_rejected_without_being_held(tmp_path: Path) -> None:
    data = b'{"a": 1}\n' + b"x" * 5000 + b"\n" + b'{"b": 2}\n' + b"y" * 3000
    blocks = list(batch.read_chunks(io.BytesIO(data), size=512, max_line=1000))
    lines = b"".join(block for _, block in blocks).split(b"\n")
    assert lines[0] == b'{"a": 1}'
    assert lines[1] == batch.TOO_LONG + b"5000"
    assert lines[2] == b'{"b": 2}'
    assert lines[3] == batch.TOO_LONG + b"3000"
    assert max(len(block) for _, block in blocks) < 2000


def test_duplicate_keys_and_strict_json_in_batch(tmp_path: Path) -> None:
    source = tmp_path / "cases.jsonl"
    case = json.loads((ROOT / "fixtures/cases/aircraft-parts-burma-air-force.json").read_text("utf-8"))
    text = json.dumps(case)
    source.write_bytes(
        (text[:-1] + ', "hr_abuse_risk": false}\n').encode()
        + b'{"eccn": "\xed\xa0\x80"}\n'
        + b"[" * 5000
        + b"\n"
    )
    out = tmp_path / "out.jsonl"
    result = run(POLICY, source, "-o", out, "--workers", "1")
    assert result.exit_code == 0, result.output
    rejects = [json.loads(line) for line in (tmp_path / "out.rejects.jsonl").read_text("utf-8").splitlines()]
    reasons = [r["reason"] for r in rejects]
    assert len(rejects) == 3 and out.read_bytes() == b""
    assert "appears twice" in reasons[0] and "UTF-8" in reasons[1] and "nested" in reasons[2]
