"""Smoke run of benchmarks/lsp.py (the language server's latency benchmark): it runs and measures.

Nothing is timed here; the numbers are in docs/performance.md.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygls")

ROOT = Path(__file__).resolve().parent.parent


def test_latency_benchmark_smoke() -> None:
    """benchmarks/lsp.py runs end to end (3 rounds); nothing is timed here, only that it measures."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from benchmarks import lsp as bench

    floor = bench.baseline(1)
    results = asyncio.run(bench.measure(1))
    results["server_work"] = bench.server_work(1)
    text = bench.report(results, floor)
    assert results["samples"] == {"policy": 2, "vocabulary": 2, "completion": 2}
    assert "diagnostics_policy_edit" in text and "x baseline" in text
    assert set(results["server_work"]) == {"policy edit", "vocabulary edit"}
