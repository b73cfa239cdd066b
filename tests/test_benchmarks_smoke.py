"""Smoke test of the benchmarks (benchmarks/): tiny sizes, in-process, answers must agree with the floor.

Nothing here is timed. Peers whose package is not installed (the ``bench`` extra is not part of the dev
install) are skipped with the reason; engine entries whose API has not landed are skipped as pending.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import bench, engines, scale, workload  # noqa: E402

SMOKE_CASES = workload.generate_cases(bench.SMOKE_CASES)
SMOKE_EXPECTED = [workload.decide_floor(c) for c in SMOKE_CASES]


def test_generator_is_deterministic_and_exercises_every_answer() -> None:
    cases = workload.generate_cases(2_000, seed=1)
    assert cases == workload.generate_cases(2_000, seed=1)
    assert cases != workload.generate_cases(2_000, seed=2)
    mix = workload.answer_mix([workload.decide_floor(c) for c in cases])
    assert set(mix) == {
        workload.NOT_APPLICABLE,
        workload.FAVORABLE,
        workload.HR_ONLY,
        workload.EDD_ONLY,
        workload.BOTH,
    }
    for case in cases:
        assert set(case) == {"control_reason", "capability", "destination", "end_user"}
        assert set(case["control_reason"]) <= set(workload.REASONS)
        assert set(case["capability"]) <= set(workload.CAPABILITIES)
        assert case["destination"] in workload.COUNTRIES
        assert case["end_user"]["type"] in workload.END_USER_TYPES


def test_floor_follows_the_written_rules() -> None:
    base = {"capability": ["surveillance"], "destination": "CN", "end_user": {"type": "government"}}
    assert workload.decide_floor({**base, "control_reason": ["SS", "CC"]}) == workload.NOT_APPLICABLE
    assert workload.decide_floor({**base, "control_reason": ["CC"]}) == workload.BOTH
    assert workload.decide_floor({**base, "control_reason": ["AT"]}) == workload.EDD_ONLY
    private = {**base, "end_user": {"type": "private"}}
    assert workload.decide_floor({**private, "control_reason": ["RS"]}) == workload.HR_ONLY
    assert workload.decide_floor({**private, "control_reason": []}) == workload.FAVORABLE


def _group(text: str, name: str) -> set[str]:
    match = re.search(rf"group {name} [^=]*=\s*<([^>]*)>", text)
    assert match, name
    return {v.strip() for v in match.group(1).split(",")}


def test_policy_file_uses_the_floor_sets() -> None:
    text = workload.POLICY_PATH.read_text(encoding="utf-8")
    assert _group(text, "hr_reasons") == set(workload.HR_REASONS)
    assert _group(text, "hr_capabilities") == set(workload.HR_CAPABILITIES)
    assert _group(text, "edd_destinations") == set(workload.EDD_COUNTRIES)
    vocab = workload.VOCAB_PATH.read_text(encoding="utf-8")
    for value in (*workload.REASONS, *workload.CAPABILITIES, *workload.COUNTRIES, *workload.END_USER_TYPES):
        assert re.search(rf"\b{value}\b", vocab), value


@pytest.mark.parametrize("entry", bench.peer_entries(), ids=lambda e: e.name)
def test_peer_agrees_with_floor(entry: bench.Entry) -> None:
    assert entry.module is not None
    pytest.importorskip(entry.module, reason=f"peer package {entry.package!r} not installed (bench extra)")
    result = bench.prepare(entry, SMOKE_CASES, SMOKE_EXPECTED)
    assert result.status == "ok", (result.reason, result.mismatches[:3])


@pytest.mark.parametrize("name,setup", engines.ENGINE_ENTRIES, ids=[n for n, _ in engines.ENGINE_ENTRIES])
def test_engine_entry_agrees_with_floor(name: str, setup: Callable[[], bench.Decide]) -> None:
    result = bench.prepare(bench.Entry(name, "engine", setup), SMOKE_CASES, SMOKE_EXPECTED)
    if result.status == "pending":
        pytest.skip(f"engine API pending: {result.reason}")
    assert result.status == "ok", (result.reason, result.mismatches[:3])


def test_raw_path_decides_like_the_validated_path() -> None:
    """The raw entries skip validation; on valid cases they must decide exactly as `evaluate` does."""
    try:
        policy = engines.load_policy()
    except engines.Pending as exc:
        pytest.skip(f"engine API pending: {exc}")
    for case in SMOKE_CASES:
        resolution = policy.decide_trusted(case)
        decision = policy.evaluate(case)
        assert resolution.decisions == decision.decisions
        assert list(resolution.fired_ids) == decision.fired


def test_a_wrong_engine_is_reported_loudly(capsys: pytest.CaptureFixture[str]) -> None:
    def wrong_setup() -> bench.Decide:
        return lambda case: workload.FAVORABLE

    result = bench.prepare(bench.Entry("always favorable", "peer", wrong_setup), SMOKE_CASES, SMOKE_EXPECTED)
    assert result.status == "mismatch" and result.decide is None
    bench.report_mismatches([result], SMOKE_CASES, sys.stdout)
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "always favorable" in out


def test_bench_main_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--smoke"]) == 0
    out = capsys.readouterr().out
    assert "| floor: hand-written Python |" in out
    for name, _ in engines.ENGINE_ENTRIES:
        assert f"| {name} |" in out


def test_scale_generator_and_reference() -> None:
    rules = scale.generate_rules(25)
    assert len(rules) == 25 and len({r.id for r in rules}) == 25
    text = scale.policy_text(rules)
    assert text.count("\nrule ") == 25 and "overrides s00000" in text
    reference = scale.Reference(rules)
    cases = scale.generate_cases(200, 25)
    answers = [reference.decide(c) for c in cases]
    assert {a[0] for a in answers} == {"favorable", "not_favorable", "case_by_case"}
    assert reference.decide({"item": "Z1", "destination": "CN", "quantity": 5}) == ("case_by_case", ())


def test_scale_main_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    assert scale.main(["--smoke"]) == 0
    assert "| 100 |" in capsys.readouterr().out
