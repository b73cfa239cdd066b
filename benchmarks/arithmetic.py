"""Arithmetic benchmark: the de minimis policy (policies/ear-734.4) beside the reference workload.

Every ear-734.4 case divides (the controlled share of the item's value, compared exactly as a
rational) and computes a decision value per case (`us_content_percent`, rounded half up), so
it exercises the paths issue 12 added: exact arithmetic, computed decisions settled after
precedence, the `computed` trace. The baseline is the reference workload (benchmarks/workload)
on the same engine path, measured in the same run; the table prints ratios against it, and a
plain-Python de minimis function as the floor. Every answer is checked against the policy's
hand-written intent (fixtures/intent/ear-734.4.toml), so a fast wrong answer cannot pass.

    python -m benchmarks.arithmetic                 # 20,000 cases, 5 rounds
    python -m benchmarks.arithmetic --smoke         # tiny, for the test suite
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import engine
from benchmarks.workload import generate_cases

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "policies" / "ear-734.4"
CASES = ROOT / "fixtures" / "cases" / "ear-734.4"
INTENT = ROOT / "fixtures" / "intent" / "ear-734.4.toml"
REFERENCE = ROOT / "benchmarks" / "workload" / "policy.policy"

Case = dict[str, Any]
Answer = tuple[bool, str]


def intent_cases() -> list[tuple[Case, Answer]]:
    """The 38 hand-checked cases with the answers the law gives (not the engine's)."""
    expected = {
        e["case"].split("/", 1)[1]: (e["subject_to_ear"], e["us_content_percent"])
        for e in tomllib.loads(INTENT.read_text(encoding="utf-8"))["expect"]
    }
    out = []
    for path in sorted(CASES.glob("*.json")):
        case = {
            k: v for k, v in json.loads(path.read_text(encoding="utf-8")).items() if not k.startswith("$")
        }
        out.append((case, expected[path.stem]))
    return out


def floor(case: Case) -> Answer:
    """A hand-written de minimis function (the levels of policies/ear-734.4): the speed floor."""
    value, content = (
        Decimal(str(case["foreign_item_value"])),
        Decimal(str(case["controlled_us_content_value"])),
    )
    if value <= 0:
        return False, "0.00"
    share = Fraction(content) / Fraction(value) * 100
    percent = Decimal(share.numerator) / Decimal(share.denominator)
    shown = str(percent.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    kind, dest = case["us_content_kind"], case["destination"]
    e1, e2, d5 = dest in {"IR", "KP", "SY"}, dest == "CU", dest in _D5
    listed = case["eccn"] in _NO_DE_MINIMIS and content > 0
    level: int | None = {
        "standard": 10 if e1 else 25,
        "at_only": 10 if e1 else 25 if e2 else None,
        "ear99": 10 if dest in {"KP", "SY"} else 25 if dest == "CU" else None,
        "series_600_9x515_a_x": 0 if d5 else 25,
        "series_600_9x515_y": 0 if (dest == "CN" or e1 or e2) else None,
    }[kind]
    subject = listed or (level is not None and (share > level if level else content > 0))
    return subject, shown


_D5 = {"AF", "CN", "IR", "KP", "SY", "CU", "VE", "BY", "MM", "RU", "IQ", "LB", "LY", "SO", "SS", "SD"}
_NO_DE_MINIMIS = {f"9E003.a.{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 10)} | {"9E003.h", "9E003.i", "5E002"}


def workload_cases(n: int, seed: int) -> list[tuple[Case, Answer]]:
    """`n` cases drawn from the intent cases, values scaled at random (the answers are re-derived
    by the floor, which agrees with the intent on every intent case: checked before timing)."""
    rng = random.Random(seed)
    base = intent_cases()
    out = []
    for _ in range(n):
        case, _answer = rng.choice(base)
        scale = rng.choice((1, 3, 7, 10, 1000))
        scaled = {**case, "foreign_item_value": str(Decimal(str(case["foreign_item_value"])) * scale)}
        scaled["controlled_us_content_value"] = str(Decimal(str(case["controlled_us_content_value"])) * scale)
        out.append((scaled, floor(scaled)))
    return out


def _answer(decision: Any) -> Answer:
    return decision.value("subject_to_ear"), str(decision.value("us_content_percent"))


def _time(decide: Callable[[Case], Any], cases: Sequence[Case]) -> float:
    gc.collect()
    start = time.perf_counter()
    for case in cases:
        decide(case)
    return (time.perf_counter() - start) / len(cases) * 1e6


def run(n: int, rounds: int, seed: int = 7, out: Any = sys.stdout) -> dict[str, float]:
    """Median µs per case for each entry; raises AssertionError on any wrong answer."""
    for case, expected in intent_cases():
        assert floor(case) == expected, (case, floor(case), expected)
    de_minimis = engine.load(POLICY)
    reference = engine.load(REFERENCE)
    cases = workload_cases(n, seed)
    for case, expected in cases:
        assert _answer(de_minimis.evaluate(case)) == expected, case
        assert _answer(de_minimis.evaluate(case, trace=True)) == expected, case
    ear_cases = [c for c, _ in cases]
    ref_cases = generate_cases(n, seed)
    entries: dict[str, tuple[Callable[[Case], Any], Sequence[Case]]] = {
        "reference workload, public API (baseline)": (reference.evaluate, ref_cases),
        "reference workload, public API, full trace": (
            lambda c: reference.evaluate(c, trace=True),
            ref_cases,
        ),
        "de minimis (arithmetic), public API": (de_minimis.evaluate, ear_cases),
        "de minimis (arithmetic), public API, full trace": (
            lambda c: de_minimis.evaluate(c, trace=True),
            ear_cases,
        ),
        "de minimis, hand-written Python (floor)": (floor, ear_cases),
    }
    times: dict[str, list[float]] = {name: [] for name in entries}
    for _ in range(rounds):
        for name, (decide, inputs) in entries.items():
            times[name].append(_time(decide, inputs))
    medians = {name: statistics.median(values) for name, values in times.items()}
    baseline = medians["reference workload, public API (baseline)"]
    print(f"{n} cases, {rounds} rounds, median µs per case (ratio to the baseline, same run)", file=out)
    print("| entry | µs/case | × baseline |", file=out)
    print("| --- | ---: | ---: |", file=out)
    for name, value in medians.items():
        print(f"| {name} | {value:.1f} | {value / baseline:.2f} |", file=out)
    return medians


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    args = parser.parse_args(argv)
    if args.smoke:
        args.cases, args.rounds = 200, 1
    run(args.cases, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
