"""Proof benchmark: semantic diff, equivalence, deep check and why-not on generated policies.

    python -m benchmarks.proofs [--rules 1000] [--smoke]

Uses the generator of `benchmarks/scale.py` (groups of five rules about one item code) and
derives a second version with five changes (`changed_pair`): a narrowed exception, a moved
quantity threshold, a removed rule, an added exception and a changed decision value. Each
measurement is the wall time of a `policy` process (start-up included, as a reviewer runs
it), next to the baseline of the same run: `policy schema` of the same file (start, parse,
check, compile: what any command pays before it starts). Peak memory is the largest resident set of the measured processes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from benchmarks.scale import GenRule, generate_rules, policy_text

ROOT = Path(__file__).resolve().parent.parent


def changed_pair(n_rules: int, seed: int = 742) -> tuple[list[GenRule], list[GenRule], list[str]]:
    """Version A (generated) and B (A with five changes), and the ids of the changed rules."""
    a = generate_rules(n_rules, seed)
    b = list(a)
    groups = max(1, n_rules // 5)
    rng = random.Random(seed)
    g1, g2, g3, g4, g5 = (rng.randrange(groups) for _ in range(5))
    changed: list[str] = []

    def at(g: int, j: int) -> int:
        return min(5 * g + j, len(b) - 1)

    k = at(g1, 1)  # 1. an exception now covers one more destination
    extra = sorted(set(a[at(g1, 0)].dest or ()) - set(b[k].dest or ()))[:1]
    b[k] = replace(b[k], dest=frozenset(b[k].dest or ()) | frozenset(extra))
    k = at(g2, 2)  # 2. a quantity threshold moves
    b[k] = replace(b[k], qty_gt=(b[k].qty_gt or 0) + 5)
    removed = b[at(g3, 3)]  # 3. a rule is repealed
    b = [r for r in b if r.id != removed.id]
    base = a[at(g4, 0)]  # 4. a new exception: large quantities are not favourable
    added = GenRule(
        f"x{g4:05d}", base.items, qty_gt=80, overrides=(base.id,), decide="not_favorable", require=None
    )
    b.append(added)
    k = next(i for i, r in enumerate(b) if r.id == a[at(g5, 0)].id)  # 5. a decision value changes
    b[k] = replace(b[k], decide="case_by_case")
    changed = [a[at(g1, 1)].id, a[at(g2, 2)].id, removed.id, added.id, a[at(g5, 0)].id]
    return a, b, changed


def reordered(rules: Sequence[GenRule], seed: int = 1) -> list[GenRule]:
    out = list(rules)
    random.Random(seed).shuffle(out)
    return out


def write_pair(folder: Path, n_rules: int) -> tuple[Path, Path, Path, list[str]]:
    a, b, changed = changed_pair(n_rules)
    paths = (folder / "a.policy", folder / "b.policy", folder / "a-reordered.policy")
    paths[0].write_text(policy_text(a), encoding="utf-8")
    paths[1].write_text(policy_text(b).replace('version "1"', 'version "2"'), encoding="utf-8")
    paths[2].write_text(policy_text(reordered(a)), encoding="utf-8")
    return paths[0], paths[1], paths[2], changed


CPU: dict[str, float] = {}


def _run(args: list[str]) -> tuple[float, int, str]:
    """Wall seconds of one `policy` process, its exit status and output (its CPU seconds go to CPU)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "engine", *args], capture_output=True, text=True, env=env, check=False
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU["last"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, proc.returncode, proc.stdout + proc.stderr


def measure(n_rules: int) -> dict[str, object]:
    """Every figure of docs/performance.md's proofs section for one size."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        a, b, again, _ = write_pair(folder, n_rules)
        case = folder / "case.json"
        first, second = generate_rules(n_rules)[:2]  # a favourable case: the exception does not apply
        destination = sorted(set(first.dest or ()) - set(second.dest or ()))[0]
        case.write_text(
            json.dumps({"item": first.items[0], "destination": destination, "quantity": 5}), encoding="utf-8"
        )
        baseline, _, _ = _run(["schema", str(b)])  # start, parse, check, compile: the floor
        diff_s, diff_rc, diff_out = _run(["diff", "--semantic", str(a), str(b), "--format", "json"])
        diff_cpu = CPU["last"]
        report = json.loads(diff_out[diff_out.index("{") :]) if diff_rc in (0, 3) else {}
        eq_s, _, eq_out = _run(["diff", "--semantic", str(a), str(again)])
        eq_cpu = CPU["last"]
        deep_s, deep_rc, _ = _run(["check", "--deep", str(b)])
        deep_cpu = CPU["last"]
        why_s, why_rc, why_out = _run(
            ["why-not", str(b), str(case), "--want", "license_review=not_favorable"]
        )
        why_cpu = CPU["last"]
        regions = report.get("regions", [])
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        return {
            "rules": n_rules,
            "baseline_load_s": baseline,
            "semantic_diff_s": diff_s,
            "semantic_diff_cpu_s": diff_cpu,
            "semantic_diff_status": report.get("status", f"exit {diff_rc}"),
            "regions": len(regions),
            "max_literals": max((r["literals"] for r in regions), default=0),
            "equivalence_s": eq_s,
            "equivalence_cpu_s": eq_cpu,
            "equivalent": "equivalent (proved)" in eq_out,
            "deep_check_s": deep_s,
            "deep_check_cpu_s": deep_cpu,
            "deep_check_exit": deep_rc,
            "why_not_s": why_s,
            "why_not_cpu_s": why_cpu,
            "why_not_exit": why_rc,
            "why_not_first_line": why_out.splitlines()[0] if why_out else "",
            "peak_mb": peak_mb,
        }


def bundled_pair() -> dict[str, object]:
    """The 742.7 pair of the repository (2020-03-09 vs 2020-10-06)."""
    baseline, _, _ = _run(["schema", str(ROOT / "policies" / "ear-742.7" / "2020-10-06.policy")])
    seconds, rc, out = _run(
        [
            "diff",
            "--semantic",
            str(ROOT / "policies" / "ear-742.7") + "@2020-03-09",
            "@2020-10-06",
            "--format",
            "json",
        ]
    )
    cpu = CPU["last"]
    case = ROOT / "fixtures" / "cases" / "fingerprint-computers-kenya-police.json"
    why_s, why_rc, _ = _run(
        [
            "why-not",
            str(ROOT / "policies" / "ear-742.7"),
            str(case),
            "--at",
            "2020-10-06",
            "--want",
            "+human-rights review",
        ]
    )
    why_cpu = CPU["last"]
    deep_s, deep_rc, _ = _run(["check", "--deep", str(ROOT / "policies")])
    deep_cpu = CPU["last"]
    report = json.loads(out[out.index("{") :]) if rc in (0, 3) else {}
    regions = report.get("regions", [])
    return {
        "pair": "ear-742.7 2020-03-09 -> 2020-10-06",
        "baseline_load_s": baseline,
        "semantic_diff_s": seconds,
        "semantic_diff_cpu_s": cpu,
        "status": report.get("status", f"exit {rc}"),
        "regions": len(regions),
        "max_literals": max((r["literals"] for r in regions), default=0),
        "why_not_s": why_s,
        "why_not_cpu_s": why_cpu,
        "why_not_exit": why_rc,
        "deep_check_pack_s": deep_s,
        "deep_check_pack_cpu_s": deep_cpu,
        "deep_check_pack_exit": deep_rc,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--smoke", action="store_true", help="a 50-rule run, for the test suite")
    args = parser.parse_args(argv)
    n_rules = 50 if args.smoke else args.rules
    bundled = bundled_pair()
    generated = measure(n_rules)
    for name, row in (("bundled", bundled), ("generated", generated)):
        print(name)
        for key, value in row.items():
            shown = f"{value:.2f}" if isinstance(value, float) else value
            print(f"  {key:24} {shown}")
        base = row["baseline_load_s"]
        assert isinstance(base, float)
        for key in ("semantic_diff_s", "equivalence_s", "deep_check_s", "why_not_s", "deep_check_pack_s"):
            value = row.get(key)
            if isinstance(value, float):
                print(f"  {key + ' / baseline':24} {value / base:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
