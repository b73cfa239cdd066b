"""Full-size runs of the decision service and log (the suite runs the same harness at small sizes).

    python -m benchmarks.service_load load       [--rate 1000] [--seconds 60] [--clients 32]
    python -m benchmarks.service_load saturation [--seconds 20] [--clients 64]
    python -m benchmarks.service_load overload   [--rate 3000] [--seconds 30] [--clients 128]
    python -m benchmarks.service_load kill       [--kills 50] [--postgres]
    python -m benchmarks.service_load verify     [--records 1000000]
    python -m benchmarks.service_load replay     [--records 1000000] [--workers 2]
    python -m benchmarks.service_load tamper     [--trials 100] [--postgres]

Everything runs on 127.0.0.1, bounded in count and time. Each mode prints one JSON line of
results; `verify` and `replay` also print a baseline measured in the same run (hashing the same
bytes; deciding the same cases with `Policy.evaluate`) and the ratio to it. Logs are written under
a temporary folder (or --dir) and removed afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks import service_harness as harness

ROOT = harness.ROOT


@contextlib.contextmanager
def workdir(args: argparse.Namespace) -> Iterator[Path]:
    if args.log:  # a kept log: its key and checkpoints live beside it, and stay
        folder = Path(args.log).resolve().parent
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    folder = Path(tempfile.mkdtemp(prefix="service-bench-", dir=args.dir))
    try:
        yield folder
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def log_url(args: argparse.Namespace, folder: Path) -> Iterator[tuple[str, list[str]]]:
    """A SQLite path, or (--postgres) a database on a throwaway local server, with the serve options it needs."""
    if args.log:
        yield args.log, []
        return
    if not args.postgres:
        yield str(folder / "log.db"), []
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from pg_server import postgres_server

    with postgres_server() as url:
        extra = ["--checkpoints", str(folder / "checkpoints"), "--signing-key", str(folder / "key.pem")]
        yield url, extra


def report(mode: str, **values: Any) -> None:
    print(json.dumps({"mode": mode, **values}), flush=True)


def run_load_mode(args: argparse.Namespace, mode: str) -> None:
    with workdir(args) as folder, log_url(args, folder) as (url, extra):
        server = harness.start_server(folder, url, extra=[*extra, "--max-in-flight", str(args.max_in_flight)])
        try:
            rss_before = harness.rss_mb(server.process.pid)
            rate = None if mode == "saturation" else args.rate
            result = harness.run_load(server.port, seconds=args.seconds, clients=args.clients, rate=rate)
            rss_after = harness.rss_mb(server.process.pid)
            metrics = harness.metrics(server.port)
        finally:
            server.stop()
        logged = harness.logged_ids(url)
        report(
            mode,
            offered_rate=rate,
            **harness.describe(result),
            non_2xx={k: v for k, v in result.statuses.items() if k != 200},
            retry_after_missing=result.missing_retry_after,
            acked_missing_from_log=len(set(result.acked) - logged),
            log_rows=len(logged),
            decisions_unlogged_total=metrics.get("decisions_unlogged_total"),
            mean_commit_batch=round(
                metrics["policy_log_commit_batch_size_sum"]
                / max(metrics["policy_log_commit_batch_size_count"], 1),
                1,
            ),
            rss_mb_before=round(rss_before, 1),
            rss_mb_after=round(rss_after, 1),
        )


def run_kill(args: argparse.Namespace) -> None:
    with workdir(args) as folder, log_url(args, folder) as (url, extra):
        checkpoints = folder / "checkpoints" if args.postgres else Path(url + ".checkpoints")
        started = time.perf_counter()
        result = harness.crash_trials(
            folder,
            url,
            kills=args.kills,
            clients=args.clients,
            extra=extra,
            checkpoints=checkpoints,
            min_run=0.5,
            max_run=2.0,
        )
        report(
            "kill",
            kills=result.kills,
            acked=result.acked,
            logged=result.logged,
            missing=len(result.missing),
            verify_failures=result.verify_failures,
            seconds=round(time.perf_counter() - started, 1),
        )


def _bench_cases(n: int) -> list[dict[str, Any]]:
    from benchmarks.workload import generate_cases

    return [dict(c) for c in generate_cases(n, seed=15)]


def build_log(url: str, folder: Path, records: int) -> tuple[Any, list[dict[str, Any]]]:
    """A log of `records` real decisions of the benchmark policy, written in big transactions."""
    import engine
    from benchmarks.workload import POLICY_PATH
    from engine.decisionlog.backends import open_store
    from engine.decisionlog.checkpoints import CheckpointWriter, Signer
    from engine.decisionlog.evaluation import evaluate_for_log
    from engine.decisionlog.log import decision_record
    from engine.decisionlog.merkle import Frontier

    policy = engine.load(POLICY_PATH)
    cases = _bench_cases(min(records, 100_000))
    if not url.startswith("postgresql") and Path(url).exists() and (folder / "checkpoints").exists():
        return policy, cases  # --log: an existing log built by an earlier run
    signer = Signer(folder / "key.pem")
    writer = CheckpointWriter(folder / "checkpoints", signer)
    frontier = Frontier()
    day = date(2024, 6, 1)
    with open_store(url, create=True) as store:
        for start in range(0, records, 5000):
            batch = []
            for i in range(start, min(records, start + 5000)):
                case = cases[i % len(cases)]
                evaluation = evaluate_for_log(policy, case, day)
                out = evaluation.output
                batch.append(
                    decision_record(
                        policy=out["policy"],
                        version=out["version"],
                        content_hash=out["content_hash"],
                        data_hash="-",
                        evaluated_at=day,
                        case=case,
                        output=out,
                        trace_json=evaluation.raw_trace,
                        requested_by="bench",
                    )
                )
            sealed = store.append(batch)
            for record in sealed:
                frontier.append(record.leaf)
            if (start // 5000) % 20 == 19 or start + 5000 >= records:
                writer.write(
                    signer.checkpoint(store.log_id, frontier.size, frontier.root(), sealed[-1].chain, "bench")
                )
    return policy, cases


def run_verify(args: argparse.Namespace) -> None:
    from engine.decisionlog.backends import open_store
    from engine.decisionlog.verify import verify_log

    with workdir(args) as folder, log_url(args, folder) as (url, _):
        started = time.perf_counter()
        build_log(url, folder, args.records)
        built = time.perf_counter() - started
        with open_store(url) as store:
            started = time.perf_counter()
            result = verify_log(store, folder / "checkpoints")
            seconds = time.perf_counter() - started
            started = time.perf_counter()
            total = 0
            for record in store.records():  # baseline: read every row and hash its bytes once
                total += len(hashlib.sha256(record.body or b"").digest())
            baseline = time.perf_counter() - started
        report(
            "verify",
            records=result.records,
            intact=result.intact,
            checkpoints=result.checkpoints,
            seconds=round(seconds, 2),
            baseline_read_and_hash_seconds=round(baseline, 2),
            ratio_to_baseline=round(seconds / baseline, 2),
            build_seconds=round(built, 1),
        )


def run_replay(args: argparse.Namespace) -> None:
    from benchmarks.workload import POLICY_PATH
    from engine import diff as d
    from engine.decisionlog.backends import open_store
    from engine.decisionlog.replay import replay

    with workdir(args) as folder, log_url(args, folder) as (url, _):
        started = time.perf_counter()
        policy, cases = build_log(url, folder, args.records)
        built = time.perf_counter() - started
        side = d.side_from_file(POLICY_PATH, "bench", None)
        started = time.perf_counter()
        with open_store(url) as store:
            outcome = replay(store, side, None, workers=args.workers)
        seconds = time.perf_counter() - started
        sample = cases[: min(len(cases), 20_000)]
        day = date(2024, 6, 1)
        started = time.perf_counter()
        for case in sample:
            policy.evaluate(case, at=day)
        per_case = (time.perf_counter() - started) / len(sample)
        report(
            "replay",
            records=outcome.same.replayed,
            identical=outcome.same.identical,
            mismatches=len(outcome.same.mismatches),
            seconds=round(seconds, 1),
            per_record_us=round(seconds / max(outcome.same.replayed, 1) * 1e6, 1),
            baseline_evaluate_us=round(per_case * 1e6, 1),
            ratio_to_baseline=round(seconds / max(outcome.same.replayed, 1) / per_case, 1),
            workers=args.workers,
            build_seconds=round(built, 1),
        )


def run_tamper(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    import sqlite3

    from log_tampering import CLASSES, EXPECTED, Raw, tamper
    from log_tampering import build_log as build_small

    from engine.decisionlog.backends import open_store
    from engine.decisionlog.verify import verify_log

    with workdir(args) as folder, log_url(args, folder) as (url, _):
        if args.postgres:
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE DATABASE tamper")
            url = url.rsplit("/", 1)[0] + "/tamper"
        build_small(url, folder, records=64, checkpoint_every=8)
        with open_store(url) as store:
            start = store.genesis()
        results: dict[str, dict[str, int]] = {}
        for kind in CLASSES:
            rng = random.Random(kind)
            detected = named_right = 0
            for _ in range(args.trials):
                if args.postgres:
                    import psycopg

                    from engine.decisionlog.postgres import PostgresStore

                    with psycopg.connect(url) as conn:
                        tamper(Raw(conn, postgres=True), kind, rng, start)
                        verdict = verify_log(PostgresStore(url, connection=conn), folder / "checkpoints")
                        conn.rollback()
                else:
                    copy = folder / "copy.db"
                    shutil.copy(url, copy)
                    raw = Raw(sqlite3.connect(copy, isolation_level=None), postgres=False)
                    tamper(raw, kind, rng, start)
                    raw.done()
                    with open_store(str(copy)) as store:
                        verdict = verify_log(store, folder / "checkpoints")
                detected += not verdict.intact
                named_right += verdict.first is not None and verdict.first.kind in EXPECTED[kind]
            results[kind] = {"trials": args.trials, "detected": detected, "kind_named": named_right}
        report("tamper", backend="postgresql" if args.postgres else "sqlite", classes=results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "mode", choices=["load", "saturation", "overload", "kill", "verify", "replay", "tamper"]
    )
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="offered decisions per second (load, overload)"
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--max-in-flight", type=int, default=256)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--postgres", action="store_true", help="log to a throwaway local PostgreSQL server")
    parser.add_argument("--dir", default=None, help="where temporary logs go")
    parser.add_argument(
        "--log",
        default=None,
        help="verify/replay: keep the log at this SQLite path (built if missing; its checkpoints beside it in --dir)",
    )
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    if args.mode in ("load", "saturation", "overload"):
        run_load_mode(args, args.mode)
    else:
        {"kill": run_kill, "verify": run_verify, "replay": run_replay, "tamper": run_tamper}[args.mode](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
