"""Smoke run of benchmarks/arithmetic.py: tiny sizes, answers checked against the intent; no timing asserted."""

from __future__ import annotations

import io

from benchmarks import arithmetic


def test_the_floor_agrees_with_the_hand_written_intent() -> None:
    for case, expected in arithmetic.intent_cases():
        assert arithmetic.floor(case) == expected, case


def test_the_arithmetic_benchmark_runs_and_prints_ratios() -> None:
    out = io.StringIO()
    medians = arithmetic.run(40, 1, out=out)
    assert set(medians) >= {
        "reference workload, public API (baseline)",
        "de minimis (arithmetic), public API",
    }
    assert "× baseline" in out.getvalue()
