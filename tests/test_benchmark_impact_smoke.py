"""Smoke run of benchmarks/impact.py (2,000 generated cases; Parquet workers 1 and 2, JSON lines,
--explain changed, each as a `policy impact` process): it runs, and the reports agree. Nothing is timed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import impact as bench  # noqa: E402


def test_impact_benchmark_smoke(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    assert bench.main(["smoke"]) == 0
    out = capsys.readouterr().out
    assert "reports identical (Parquet runs): True" in out
    assert "2,000 cases" in out and "jsonl --workers 2" in out and "--explain changed" in out


def test_generated_history_is_deterministic() -> None:
    first = list(bench.generate(500, seed=1))
    assert first == list(bench.generate(500, seed=1)) and first != list(bench.generate(500, seed=2))
    assert len({case["id"] for case in first}) == 500
