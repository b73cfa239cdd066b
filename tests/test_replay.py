"""`policy replay`: logged decisions re-decided, identical under the recorded version, and the
reviewer's diff report (the same transitions as `policy diff`) under another one."""

from __future__ import annotations

import datetime
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_service import DECIDE, bearer, make_config

from engine import diff as d
from engine.cases import read_case_file
from engine.decisionlog.backends import open_store
from engine.decisionlog.replay import replay
from engine.service.app import create_app

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "policies" / "ear-742.7"
CASES = sorted((ROOT / "fixtures" / "cases").glob("*.json"))
DAYS = {"2021-01-01": "2020-10-06", "2020-05-01": "2020-03-09"}


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every bundled case decided by the service on two dates (so by two versions)."""
    folder = tmp_path_factory.mktemp("replay")
    app = create_app(make_config(folder))
    with TestClient(app) as client:
        for day in DAYS:
            for path in CASES:
                response = client.post(
                    f"/v1/policies/ear-742.7/decide?at={day}",
                    content=path.read_bytes(),
                    headers=bearer(DECIDE),
                )
                assert response.status_code == 200, response.text
    return folder


def run(log: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "engine", "replay", str(log / "log.db"), *args]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def test_under_the_recorded_version_every_decision_is_identical(log: Path) -> None:
    side = d.resolve_spec(d.Spec.parse(f"{FOLDER}@2020-10-06"), None)
    with open_store(str(log / "log.db")) as store:
        outcome = replay(store, side, FOLDER)
    assert outcome.same.replayed == len(CASES) and outcome.same.identical == len(CASES)
    assert outcome.same.mismatches == [] and outcome.ok


def test_under_another_version_the_transitions_are_those_of_policy_diff(log: Path) -> None:
    side = d.resolve_spec(d.Spec.parse(f"{FOLDER}@2020-10-06"), None)
    with open_store(str(log / "log.db")) as store:
        outcome = replay(store, side, FOLDER)
    (report,) = outcome.reports  # the decisions of 2020-05-01, made by 2020-03-09
    assert report.before.version == "2020-03-09" and report.after.version == "2020-10-06"
    on_day = datetime.date(2020, 5, 1)
    before = d.resolve_spec(d.Spec.parse(f"{FOLDER}@2020-03-09"), on_day)
    after = d.resolve_spec(d.Spec.parse(f"{FOLDER}@2020-10-06"), on_day)
    direct = d.compare(before, after, [read_case_file(p) for p in CASES], cases_from="fixtures/cases")
    assert report.summary.changed > 0
    key = ("compared", "changed", "reasons_changed", "unchanged", "failed")
    assert [getattr(report.summary, k) for k in key] == [getattr(direct.summary, k) for k in key]
    assert [(t.key, t.count) for t in report.summary.transitions] == [
        (t.key, t.count) for t in direct.summary.transitions
    ]
    assert report.rule_changes == direct.rule_changes


@pytest.mark.parametrize("fmt", ["text", "md", "json", "html"])
def test_the_cli_writes_every_format(log: Path, fmt: str, tmp_path: Path) -> None:
    out = tmp_path / f"replay.{fmt}"
    since = ["--since", "2000-01-01"] if fmt != "html" else ["--recorded", "2020-10-06"]
    result = run(log, "--against", f"{FOLDER}@2024-07-29", "--format", fmt, "-o", str(out), *since)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "2024-07-29" in text
    if fmt == "json":
        data = json.loads(text)
        assert data["replay_version"] == 1 and len(data["reports"]) == 2
        assert sum(r["summary"]["compared"] for r in data["reports"]) == 2 * len(CASES)
    if fmt == "html":
        assert text.startswith("<!DOCTYPE html>") or text.lower().startswith("<!doctype html>")
    assert "0/0 identical under the recorded version" in result.stderr


def test_the_window_selects_records(log: Path) -> None:
    result = run(log, "--against", f"{FOLDER}@2020-10-06", "--until", "2000-01-01", "--format", "json")
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["recorded_version"]["replayed"] == 0 and data["reports"] == []


def test_an_edited_output_shows_as_not_identical(log: Path, tmp_path: Path) -> None:
    copy = tmp_path / "log.db"
    source = sqlite3.connect(str(log / "log.db"))
    target = sqlite3.connect(str(copy))
    source.backup(target)
    source.close()
    for (name,) in target.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        target.execute(f"DROP TRIGGER {name}")
    seq, body = next(
        (seq, bytes(body))
        for seq, body in target.execute("SELECT seq, body FROM bodies ORDER BY seq")
        if b'"evaluated_at":"2021-01-01"' in bytes(body)
    )
    edited = bytes(body).replace(b'"value":"', b'"value":"x', 1)
    target.execute("UPDATE bodies SET body = ? WHERE seq = ?", (edited, seq))
    target.commit()
    target.close()
    result = run(tmp_path, "--against", f"{FOLDER}@2020-10-06")
    assert result.returncode == 1
    assert f"NOT IDENTICAL #{seq}" in result.stdout and "the decision differs" in result.stdout
