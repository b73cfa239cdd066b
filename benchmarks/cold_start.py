"""Cold start: `import engine` + `load` + one `evaluate` in a fresh process, against a bare interpreter.

Each sample is a new `python` process (the cost a shell script or a CI step pays per
`policy eval`). The baseline, measured in the same run, is `python -c pass`; the report
prints the median and the best wall time of each step, and each as a ratio to the baseline.
Run from the repository root:

    python -m benchmarks.cold_start [--runs 15]

The interpreter's bytecode cache matters: an installed package has its `.pyc` files (pip
compiles them), a checkout gets them on first import unless PYTHONDONTWRITEBYTECODE is
set. The benchmark runs with a private cache folder (`PYTHONPYCACHEPREFIX`, warmed by one
unmeasured run) so results do not depend on the environment; `--no-bytecode` measures the
compile-every-time worst case instead.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STEPS = {
    "python -c pass (baseline)": "pass",
    "import engine": "import engine",
    "import + load + evaluate": (
        "import engine, json\n"
        "p = engine.load('policies/ear-742.7', version='2020-10-06')\n"
        "case = json.load(open('fixtures/cases/water-cannon-hong-kong-police.json'))\n"
        "assert p.evaluate(case).value('license_review') == 'not_favorable'\n"
    ),
}


def sample(code: str, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) time of one fresh interpreter running `code`, in seconds.

    CPU time is what a busy machine does not inflate much: on a shared machine read it,
    on a quiet one the two agree within a few milliseconds.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run(runs: int, bytecode: bool) -> dict[str, list[tuple[float, float]]]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT)
    with tempfile.TemporaryDirectory() as cache:
        if bytecode:
            env["PYTHONPYCACHEPREFIX"] = cache
        else:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        for code in STEPS.values():  # warm the bytecode cache and the grammar cache, unmeasured
            sample(code, env)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in STEPS}
        for _ in range(runs):  # interleaved, so a busy moment hits every step alike
            for name, code in STEPS.items():
                times[name].append(sample(code, env))
    return times


def report(times: dict[str, list[tuple[float, float]]]) -> str:
    """Median and best of wall and CPU time per step, and the median wall time over the baseline's."""
    base = statistics.median(w for w, _ in times["python -c pass (baseline)"])
    lines = [
        f"{'step':<28} {'wall med':>9} {'wall best':>9} {'cpu med':>8} {'cpu best':>8} {'x baseline':>11}"
    ]
    for name, values in times.items():
        wall = [w for w, _ in values]
        cpu = [c for _, c in values]
        lines.append(
            f"{name:<28} {statistics.median(wall):9.3f} {min(wall):9.3f} {statistics.median(cpu):8.3f} "
            f"{min(cpu):8.3f} {statistics.median(wall) / base:10.1f}x"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-bytecode", action="store_true", help="Compile every module on every run.")
    args = parser.parse_args()
    print(report(run(args.runs, bytecode=not args.no_bytecode)))


if __name__ == "__main__":
    main()
