"""Impact runs at scale: generated licensing history, `policy impact` over it, timed against a baseline.

    python -m benchmarks.impact generate --cases 1000000 -o /tmp/history.parquet [--jsonl /tmp/history.jsonl]
    python -m benchmarks.impact run --cases 1000000 [--dir /tmp/impact-bench] [--skip-jsonl] [--dask]
    python -m benchmarks.impact run --cases 10000000 --skip-jsonl --skip-explain
    python -m benchmarks.impact smoke

The history is a deterministic mix of applications in the shape of the bundled vocabulary
(`policies/shared/export-controls.vocab`): 15% are variations of the 52 fixture cases
(another end-user name, another destination with the same findings), the rest random
applications over the crime-control, surveillance and other ECCNs. Between ear-742.7
2020-03-09 and 2020-10-06 about 15% of them change outcome, as the issue's target assumes.

`run` times, each as a separate `policy impact` process (wall time and the peak resident
memory of the whole process tree, sampled with psutil): Parquet with --workers 1 and 2, the
same cases as JSON lines, `--explain changed`, and optionally Dask on a LocalCluster(2)
including the cluster's start. The baseline measured in the same run is `--workers 1` on
Parquet; every other line prints its ratio to it. Reports of the runs are compared byte for
byte (they must be identical). Nothing here is a timed test: the suite runs `smoke` only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures" / "cases"
POLICY = ROOT / "policies" / "ear-742.7"
OLD, NEW = "2020-03-09", "2020-10-06"
ROW_GROUP = 65_536

REASONS = ["NS", "MT", "NP", "CB", "RS", "CC", "AT", "SS", "SL", "EI", "FC", "UN", "SI", "CW"]
CAPABILITIES = [
    "surveillance",
    "biometric_identification",
    "facial_recognition",
    "data_analytics",
    "internet_surveillance",
    "location_tracking",
    "recording",
    "sensors",
    "interception",
    "censorship",
    "crowd_control",
    "restraint",
]
CC_ECCNS = ["0A978", "0A979", "0A982", "1A984", "1A985", "3A980", "3A981", "4A003", "0A977", "0A503", "0A504"]
OTHER_ECCNS = ["EAR99", "5A002", "5A001.j", "4A994", "6A003", "9A991", "5D002", "3A001", "0A983", "1C350"]
DESTINATIONS = [
    "CN",
    "RU",
    "AE",
    "SA",
    "EG",
    "NG",
    "KE",
    "MX",
    "CO",
    "BR",
    "IN",
    "PK",
    "VE",
    "BY",
    "MM",
    "GB",
    "DE",
    "FR",
    "JP",
    "CA",
    "AU",
    "HK",
    "MO",
    "SG",
    "TR",
    "UZ",
    "ET",
    "PH",
    "TH",
    "VN",
]
END_USERS = ["government", "government_linked", "private", "reseller", "individual"]


def _fixtures() -> list[dict[str, Any]]:
    cases = []
    for path in sorted(FIXTURES.glob("*.json")):
        case = json.loads(path.read_text(encoding="utf-8"))
        case.pop("$comment", None)
        cases.append(case)
    return cases


def generate(count: int, seed: int = 742) -> Iterator[dict[str, Any]]:
    """`count` applications, deterministic for a seed, each with an `id` (APP-<year>-<number>)."""
    rng = random.Random(seed)
    fixtures = _fixtures()
    for number in range(count):
        year = 2015 + number * 10 // max(count, 1)
        if rng.random() < 0.15:
            case = json.loads(json.dumps(rng.choice(fixtures)))
            case["end_user"]["name"] = f"End user {rng.randrange(100_000)}"
        else:
            cc = rng.random() < 0.35
            reasons = sorted(set(rng.sample(REASONS, rng.randrange(0, 3))) | ({"CC"} if cc else set()))
            case = {
                "eccn": rng.choice(CC_ECCNS if cc else OTHER_ECCNS),
                "control_reason": reasons,
                "capability": sorted(rng.sample(CAPABILITIES, rng.choice([0] * 12 + [1, 2]))),
                "destination": rng.choice(DESTINATIONS),
                "end_user": {"type": rng.choice(END_USERS), "name": f"End user {rng.randrange(100_000)}"},
                "license_required": rng.random() < 0.8,
                "civil_disorder": rng.random() < 0.1,
                "hr_violation_evidence": rng.random() < 0.08,
                "hr_abuse_risk": rng.random() < 0.03,
            }
        yield {"id": f"APP-{year}-{number + 1:08d}", **case}


def _schema() -> Any:
    import pyarrow as pa

    strings = pa.list_(pa.string())
    return pa.schema(
        [
            ("id", pa.string()),
            ("eccn", pa.string()),
            ("control_reason", strings),
            ("capability", strings),
            ("destination", pa.string()),
            ("end_user", pa.struct([("type", pa.string()), ("name", pa.string())])),
            ("license_required", pa.bool_()),
            ("civil_disorder", pa.bool_()),
            ("hr_violation_evidence", pa.bool_()),
            ("hr_abuse_risk", pa.bool_()),
            ("mass_surveillance_design", pa.bool_()),
        ]
    )


def write_history(count: int, parquet: Path, jsonl: Path | None = None, seed: int = 742) -> None:
    """Write the history as Parquet (row groups of 65,536) and, if asked, the same cases as JSON lines."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _schema()
    with contextlib.ExitStack() as stack:
        lines = stack.enter_context(open(jsonl, "w", encoding="utf-8")) if jsonl else None
        with pq.ParquetWriter(parquet, schema) as writer:
            chunk: list[dict[str, Any]] = []
            for case in generate(count, seed):
                chunk.append(case)
                if lines is not None:
                    lines.write(
                        json.dumps({"$id": case["id"], **{k: v for k, v in case.items() if k != "id"}}) + "\n"
                    )
                if len(chunk) == ROW_GROUP:
                    writer.write_table(pa.Table.from_pylist(chunk, schema=schema), row_group_size=ROW_GROUP)
                    chunk = []
            if chunk:
                writer.write_table(pa.Table.from_pylist(chunk, schema=schema), row_group_size=ROW_GROUP)


# ---------------------------------------------------------------------------
# Timing `policy impact` runs


def _measure(command: list[str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS of the process tree (bytes, sampled every 50 ms), stderr."""
    import psutil

    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - started
    stderr = proc.stderr.read() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}):\n{stderr}")
    return wall, peak, stderr


def _impact(cases: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "engine",
        "impact",
        f"{POLICY}@{OLD}",
        f"@{NEW}",
        str(cases),
        "--format",
        "json",
        "-o",
        str(out),
        *extra,
    ]


def run(count: int, folder: Path, *, jsonl: bool, explain: bool, dask: bool) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    parquet = folder / f"history-{count}.parquet"
    lines = folder / f"history-{count}.jsonl"
    if not parquet.exists() or (jsonl and not lines.exists()):
        started = time.perf_counter()
        write_history(count, parquet, lines if jsonl else None)
        print(f"generated {count:,} cases in {time.perf_counter() - started:.1f} s: {parquet}")
    rows = []
    reports = {}

    def case(name: str, command: list[str], report: Path) -> None:
        wall, peak, stderr = _measure(command)
        rows.append((name, wall, peak, stderr.strip().splitlines()[-1] if stderr.strip() else ""))
        reports[name] = report
        print(f"{name:<36} {wall:7.2f} s  peak {peak / 2**20:7.0f} MiB")

    out = folder / "reports"
    out.mkdir(exist_ok=True)
    case(
        "parquet --workers 1 (baseline)", _impact(parquet, out / "w1.json", "--workers", "1"), out / "w1.json"
    )
    case("parquet --workers 2", _impact(parquet, out / "w2.json", "--workers", "2"), out / "w2.json")
    if jsonl:
        case("jsonl --workers 2", _impact(lines, out / "jsonl.json", "--workers", "2"), out / "jsonl.json")
    if explain:
        case(
            "parquet --workers 2 --explain changed",
            _impact(parquet, out / "explain.json", "--workers", "2", "--explain", "changed"),
            out / "explain.json",
        )
    if dask:
        case(
            "parquet --dask local (LocalCluster 2)",
            _impact(parquet, out / "dask.json", "--dask", "local", "--workers", "2"),
            out / "dask.json",
        )
    base = rows[0][1]
    print(f"\n{count:,} cases, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"{'run':<40} {'wall':>8} {'ratio':>6} {'peak RSS':>10}")
    for name, wall, peak, _ in rows:
        print(f"{name:<40} {wall:7.2f}s {wall / base:6.2f} {peak / 2**20:8.0f} MiB")
    for name, _, _, summary in rows:
        print(f"  {name}: {summary}")
    first = _strip_names(reports[rows[0][0]])
    same = all(_strip_names(reports[name]) == first for name, *_ in rows if name != "jsonl --workers 2")
    print("reports identical (Parquet runs):", same)
    return 0 if same else 1


def _strip_names(path: Path) -> bytes:
    """A report without the lines that name its own side files (rejects, traces), which differ by run."""
    return b"\n".join(
        line
        for line in path.read_bytes().splitlines()
        if b'"rejects_file"' not in line and b'"explain_file"' not in line
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.impact")
    sub = parser.add_subparsers(dest="what", required=True)
    gen = sub.add_parser("generate")
    gen.add_argument("--cases", type=int, default=1_000_000)
    gen.add_argument("-o", "--output", type=Path, required=True)
    gen.add_argument("--jsonl", type=Path)
    gen.add_argument("--seed", type=int, default=742)
    bench = sub.add_parser("run")
    bench.add_argument("--cases", type=int, default=1_000_000)
    bench.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "impact-bench")
    bench.add_argument("--skip-jsonl", action="store_true")
    bench.add_argument("--skip-explain", action="store_true")
    bench.add_argument("--dask", action="store_true")
    sub.add_parser("smoke")
    args = parser.parse_args(argv)
    if args.what == "generate":
        write_history(args.cases, args.output, args.jsonl, args.seed)
        return 0
    if args.what == "smoke":
        with tempfile.TemporaryDirectory() as folder:
            return run(2_000, Path(folder), jsonl=True, explain=True, dask=False)
    return run(args.cases, args.dir, jsonl=not args.skip_jsonl, explain=not args.skip_explain, dask=args.dask)


if __name__ == "__main__":
    raise SystemExit(main())
