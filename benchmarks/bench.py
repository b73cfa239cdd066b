"""Run the reference workload on every engine, check every answer against the floor, and time them.

    python -m benchmarks.bench [--cases N] [--rounds R] [--seed S] [--only NAME] [--json PATH] [--smoke]

Every engine decides the same generated cases (from the same case dicts) and must give the floor's
answer on every one of them; a disagreement is an error, printed loudly, that exits with status 1 and
keeps the engine out of the table. Timing: a full pass over the cases per engine per round, the engines
in a different (seeded) order each round, ``gc.collect()`` before each pass; the table shows the median
over the rounds of microseconds per decision and its ratio to the floor's median in the same run.
Peers whose package is not installed are listed as skipped, with the reason; engine entries whose API
has not landed yet are listed as pending.
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from benchmarks import engines
from benchmarks.workload import (
    DEFAULT_CASES,
    DEFAULT_SEED,
    Answer,
    Case,
    answer_mix,
    decide_floor,
    generate_cases,
)

Decide = Callable[[Case], Answer]

PEER_MODULES: tuple[str, ...] = (
    "benchmarks.peers.zen_expression",
    "benchmarks.peers.zen_table",
    "benchmarks.peers.cedar",
    "benchmarks.peers.rego",
    "benchmarks.peers.rule_engine_peer",
    "benchmarks.peers.json_logic_peer",
)

SMOKE_CASES = 60
SMOKE_ROUNDS = 1
DEFAULT_ROUNDS = 5
FLOOR_NAME = "floor: hand-written Python"


@dataclass
class Entry:
    """One row of the table: a way to decide a case."""

    name: str
    kind: str  # "floor" | "engine" | "peer"
    setup: Callable[[], Decide]
    package: str | None = None  # distribution name (version shown, skipped when missing)
    module: str | None = None  # import name checked for availability


@dataclass
class Result:
    entry: Entry
    status: str = "ok"  # "ok" | "skipped" | "pending" | "mismatch" | "error"
    reason: str = ""
    version: str = ""
    setup_ms: float | None = None
    samples_us: list[float] = field(default_factory=list)
    mismatches: list[tuple[int, Answer | str, Answer]] = field(default_factory=list)
    decide: Decide | None = None

    @property
    def median_us(self) -> float | None:
        return statistics.median(self.samples_us) if self.samples_us else None


def peer_entries() -> list[Entry]:
    entries = []
    for module_name in PEER_MODULES:
        module = importlib.import_module(module_name)
        entries.append(Entry(module.NAME, "peer", module.setup, module.PACKAGE, module.MODULE))
    return entries


def all_entries() -> list[Entry]:
    floor = Entry(FLOOR_NAME, "floor", lambda: decide_floor)
    engine = [Entry(name, "engine", setup) for name, setup in engines.ENGINE_ENTRIES]
    return [floor, *engine, *peer_entries()]


def package_version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return ""


def missing_reason(entry: Entry) -> str | None:
    """Why a peer cannot run here, or None when its package is importable."""
    if entry.module is None or importlib.util.find_spec(entry.module) is not None:
        return None
    return f"package {entry.package!r} is not installed (it comes with the bench extra: benchmarks/run.sh)"


def prepare(entry: Entry, cases: Sequence[Case], expected: Sequence[Answer]) -> Result:
    """Set the entry up and check it on every case; the check pass doubles as the warm-up."""
    result = Result(entry, version=package_version(entry.package) if entry.package else "")
    reason = missing_reason(entry)
    if reason is not None:
        result.status, result.reason = "skipped", reason
        return result
    started = time.perf_counter()
    try:
        decide = entry.setup()
    except engines.Pending as exc:
        result.status, result.reason = "pending", str(exc)
        return result
    except Exception as exc:
        result.status, result.reason = "error", f"setup failed: {type(exc).__name__}: {exc}"
        return result
    result.setup_ms = (time.perf_counter() - started) * 1e3
    for i, (case, want) in enumerate(zip(cases, expected, strict=True)):
        try:
            got: Answer | str = decide(case)
        except Exception as exc:
            got = f"raised {type(exc).__name__}: {exc}"
        if got != want:
            result.mismatches.append((i, got, want))
    if result.mismatches:
        result.status = "mismatch"
        result.reason = f"{len(result.mismatches)} of {len(cases)} answers differ from the floor"
    else:
        result.decide = decide
    return result


def time_pass(decide: Decide, cases: Sequence[Case]) -> float:
    """Microseconds per decision for one pass over the cases."""
    gc.collect()
    started = time.perf_counter_ns()
    for case in cases:
        decide(case)
    elapsed = time.perf_counter_ns() - started
    return elapsed / 1e3 / len(cases)


def measure(results: Sequence[Result], cases: Sequence[Case], rounds: int, seed: int) -> None:
    runnable = [r for r in results if r.decide is not None]
    for round_no in range(rounds):
        order = list(runnable)
        random.Random(seed + round_no).shuffle(order)
        for result in order:
            assert result.decide is not None
            result.samples_us.append(time_pass(result.decide, cases))


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {platform.machine()}, "
        f"Python {platform.python_version()} ({platform.python_implementation()}), {platform.system()}"
    )


@functools.cache
def engine_revision() -> str:
    """The git commit the engine was measured at, with ``+ local changes`` when engine/ differs from it."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(
            ["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--", "engine"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + (" + local changes in engine/" if dirty else "")


def format_table(results: Sequence[Result]) -> str:
    floor = next((r.median_us for r in results if r.entry.kind == "floor"), None)
    lines = [
        "| engine | version | µs / decision (median) | min – max over rounds | × floor | setup ms |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        median = r.median_us
        if median is None:
            note = {"skipped": "skipped", "pending": "pending", "mismatch": "WRONG ANSWERS", "error": "ERROR"}
            status = note.get(r.status, r.status)
            lines.append(f"| {r.entry.name} | {r.version or '–'} | {status}: {r.reason} | | | |")
            continue
        spread = f"{min(r.samples_us):.2f} – {max(r.samples_us):.2f}"
        ratio = f"{median / floor:.1f}" if floor else "–"
        setup = f"{r.setup_ms:.1f}" if r.setup_ms is not None else "–"
        lines.append(f"| {r.entry.name} | {r.version or '–'} | {median:.2f} | {spread} | {ratio} | {setup} |")
    return "\n".join(lines)


def report_mismatches(results: Sequence[Result], cases: Sequence[Case], out: TextIO) -> None:
    for r in results:
        if r.status not in ("mismatch", "error"):
            continue
        print("!" * 78, file=out)
        print(f"!!! {r.entry.name}: {r.status.upper()}: {r.reason}", file=out)
        for i, got, want in r.mismatches[:5]:
            print(f"!!!   case {i}: {json.dumps(cases[i])}", file=out)
            print(f"!!!     floor: {want}", file=out)
            print(f"!!!     {r.entry.kind}: {got}", file=out)
        print("!" * 78, file=out)


def run(
    n_cases: int,
    rounds: int,
    seed: int = DEFAULT_SEED,
    only: Sequence[str] = (),
    out: TextIO = sys.stdout,
) -> list[Result]:
    """Generate the cases, check every entry against the floor, time the ones that agree."""
    cases = generate_cases(n_cases, seed)
    expected = [decide_floor(c) for c in cases]
    entries = [e for e in all_entries() if e.kind == "floor" or not only or any(s in e.name for s in only)]
    print(f"machine: {machine_description()}", file=out)
    print(f"engine: git {engine_revision()}", file=out)
    print(f"workload: {n_cases} cases, seed {seed}, {rounds} round(s)", file=out)
    mix = ", ".join(f"{review} {list(obl)}: {n}" for (review, obl), n in answer_mix(expected).items())
    print(f"answers: {mix}", file=out)
    results = []
    for entry in entries:
        result = prepare(entry, cases, expected)
        state = "agrees with the floor" if result.status == "ok" else f"{result.status}: {result.reason}"
        print(f"  {entry.name}: {state}", file=out, flush=True)
        results.append(result)
    measure(results, cases, rounds, seed)
    return results


def result_json(results: Sequence[Result], n_cases: int, rounds: int, seed: int) -> dict[str, object]:
    return {
        "machine": machine_description(),
        "engine_revision": engine_revision(),
        "cases": n_cases,
        "rounds": rounds,
        "seed": seed,
        "results": [
            {
                "name": r.entry.name,
                "kind": r.entry.kind,
                "version": r.version,
                "status": r.status,
                "reason": r.reason,
                "median_us": r.median_us,
                "samples_us": r.samples_us,
                "setup_ms": r.setup_ms,
            }
            for r in results
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=None, help=f"cases to decide (default {DEFAULT_CASES})")
    parser.add_argument("--rounds", type=int, default=None, help=f"timed rounds (default {DEFAULT_ROUNDS})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="case generator seed")
    parser.add_argument("--only", action="append", default=[], help="only entries whose name contains this")
    parser.add_argument("--json", dest="json_path", help="also write the results as JSON to this file")
    parser.add_argument("--smoke", action="store_true", help=f"tiny sizes ({SMOKE_CASES} cases, 1 round)")
    args = parser.parse_args(argv)
    n_cases = args.cases or (SMOKE_CASES if args.smoke else DEFAULT_CASES)
    rounds = args.rounds or (SMOKE_ROUNDS if args.smoke else DEFAULT_ROUNDS)

    results = run(n_cases, rounds, args.seed, args.only)
    print()
    print(format_table(results))
    report_mismatches(results, generate_cases(n_cases, args.seed), sys.stderr)
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as f:
            json.dump(result_json(results, n_cases, rounds, args.seed), f, indent=2)
            f.write("\n")
    failed = [r for r in results if r.status in ("mismatch", "error")]
    if failed:
        print(f"\nFAILED: {len(failed)} engine(s) disagree with the floor or crashed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
