"""A real `policy serve` process under load on loopback, killed with SIGKILL: nothing it
acknowledged may be missing, the chain verifies after every restart, and the deliberately
broken build that acknowledges before committing is caught losing decisions.

Small sizes here; the full-size runs are `python -m benchmarks.service_load`.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import service_harness as harness
from engine.decisionlog.backends import open_store
from engine.decisionlog.verify import verify_log
from engine.decisionlog.writer import TEST_ACK_BEFORE_COMMIT_ENV


def test_load_every_acknowledged_decision_is_logged(tmp_path: Path) -> None:
    log = str(tmp_path / "log.db")
    server = harness.start_server(tmp_path, log)
    try:
        result = harness.run_load(server.port, seconds=2.0, clients=6)
        metrics = harness.metrics(server.port)
    finally:
        server.stop()
    assert result.ok > 50 and set(result.statuses) == {200}, result.statuses
    assert metrics["decisions_unlogged_total"] == 0
    assert set(result.acked) == harness.logged_ids(log)
    with open_store(log) as store:
        assert verify_log(store, Path(log + ".checkpoints")).intact


def test_overload_gets_200_or_503_with_retry_after(tmp_path: Path) -> None:
    log = str(tmp_path / "log.db")
    server = harness.start_server(tmp_path, log, extra=["--max-in-flight", "2"])
    try:
        result = harness.run_load(server.port, seconds=2.0, clients=24)
        metrics = harness.metrics(server.port)
    finally:
        server.stop()
    assert set(result.statuses) <= {200, 503} and result.statuses.get(503, 0) > 0, result.statuses
    assert result.missing_retry_after == 0 and result.errors == 0
    assert metrics["decisions_unlogged_total"] == 0
    assert set(result.acked) <= harness.logged_ids(log)


def test_kill_9_under_load_loses_no_acknowledged_decision(tmp_path: Path) -> None:
    log = str(tmp_path / "log.db")
    report = harness.crash_trials(tmp_path, log, kills=3, clients=6, checkpoints=Path(log + ".checkpoints"))
    assert report.kills == 3 and report.acked > 100
    assert report.missing == [] and report.verify_failures == []


def test_the_harness_catches_a_build_that_acknowledges_before_committing(tmp_path: Path) -> None:
    """The same harness against the test-only broken build must report lost decisions."""
    log = str(tmp_path / "log.db")
    missing = 0
    for attempt in range(5):
        report = harness.crash_trials(
            tmp_path, log, kills=1, clients=6, env={TEST_ACK_BEFORE_COMMIT_ENV: "1"}, seed=attempt
        )
        missing += len(report.missing)
        if missing:
            break
    assert missing > 0


def test_non_durable_settings_are_refused_unless_told_and_then_recorded(tmp_path: Path) -> None:
    import subprocess
    import sys

    harness.write_tokens(tmp_path)
    log = str(tmp_path / "log.db")
    command = [
        sys.executable,
        "-m",
        "engine",
        "serve",
        "policies/ear-742.7",
        "--log",
        log,
        "--tokens",
        str(tmp_path / "tokens.json"),
        "--sqlite-synchronous",
        "NORMAL",
    ]
    refused = subprocess.run(
        command,
        cwd=harness.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PYTHONPATH": str(harness.ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert (
        refused.returncode == 1
        and "error[non-durable-log]" in refused.stderr
        and "synchronous is NORMAL" in refused.stderr
    )
    server = harness.start_server(
        tmp_path, log, extra=["--sqlite-synchronous", "NORMAL", "--unsafe-durability"]
    )
    try:
        assert harness.metrics(server.port)["policy_log_unsafe_durability"] == 1
    finally:
        server.stop()
    with open_store(log) as store:
        starts = [json.loads(r.body or b"{}") for r in store.records() if r.kind == "config"]
    assert starts[-1]["unsafe_durability"] is True and starts[-1]["durability"]["synchronous"] == "NORMAL"
