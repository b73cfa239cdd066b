"""Drive a real `policy serve` process over loopback: load, overload, and kill -9 under load.

Used by the suite at small sizes (tests/test_service_crash.py) and by `benchmarks/service_load.py`
at full size. Everything talks to 127.0.0.1 only, with bounded counts and times.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "harness-token-0123456789abcdef"
CASES_DIR = ROOT / "fixtures" / "cases"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_tokens(folder: Path) -> Path:
    path = folder / "tokens.json"
    path.write_text(
        json.dumps({"tokens": [{"name": "harness", "token": TOKEN, "scopes": ["decide", "log", "admin"]}]})
    )
    path.chmod(0o600)
    return path


def sample_cases(limit: int | None = None) -> list[bytes]:
    """The bundled cases as request bodies (the 742.7 pack's fixtures)."""
    bodies = []
    for path in sorted(CASES_DIR.glob("*.json"))[:limit]:
        bodies.append(path.read_bytes())
    return bodies


@dataclass
class Server:
    """A `policy serve` subprocess; `kill()` is SIGKILL, no goodbye."""

    process: subprocess.Popen[bytes]
    port: int
    stderr_path: Path

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"policy serve exited {self.process.returncode}: {self.stderr_path.read_text()[-2000:]}"
                )
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("policy serve did not become ready")

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(
    folder: Path,
    log: str,
    *,
    extra: Sequence[str] = (),
    env: dict[str, str] | None = None,
    policies: Sequence[str] = ("policies/ear-742.7",),
    port: int | None = None,
) -> Server:
    """Start `python -m engine serve` from the repository root with this checkout first on the path."""
    port = port or free_port()
    tokens = folder / "tokens.json"
    if not tokens.exists():
        write_tokens(folder)
    stderr_path = folder / f"serve-{port}-{time.monotonic_ns()}.log"
    command = [
        sys.executable,
        "-m",
        "engine",
        "serve",
        *policies,
        "--port",
        str(port),
        "--log",
        log,
        "--tokens",
        str(tokens),
        "--reload-interval",
        "0",
        *extra,
    ]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr, env=environment
        )
    server = Server(process, port, stderr_path)
    server.wait_ready()
    return server


@dataclass
class LoadResult:
    """What the clients saw: acknowledged decision ids, statuses, latencies of 200s."""

    acked: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    missing_retry_after: int = 0
    seconds: float = 0.0

    def merge(self, other: LoadResult) -> None:
        self.acked += other.acked
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count
        self.latencies += other.latencies
        self.errors += other.errors
        self.missing_retry_after += other.missing_retry_after

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)


def _client(
    port: int, bodies: list[bytes], stop: threading.Event, result: LoadResult, rate: float | None, path: str
) -> None:
    """One keep-alive connection sending decisions until `stop` (paced to `rate` per second if given)."""
    conn: http.client.HTTPConnection | None = None
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    interval = 1.0 / rate if rate else 0.0
    next_at = time.perf_counter()
    rng = random.Random()
    while not stop.is_set():
        if interval:
            now = time.perf_counter()
            if now < next_at:
                time.sleep(next_at - now)
            next_at += interval
        body = bodies[rng.randrange(len(bodies))]
        started = time.perf_counter()
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            result.errors += 1
            if conn is not None:
                conn.close()
            conn = None
            if stop.wait(0.01):
                break
            continue
        elapsed = time.perf_counter() - started
        result.statuses[response.status] = result.statuses.get(response.status, 0) + 1
        if response.status == 200:
            result.acked.append(json.loads(data)["decision_id"])
            result.latencies.append(elapsed)
        elif response.status == 503 and response.getheader("Retry-After") is None:
            result.missing_retry_after += 1
    if conn is not None:
        conn.close()


def run_load(
    port: int,
    *,
    seconds: float,
    clients: int,
    rate: float | None = None,
    bodies: list[bytes] | None = None,
    kill_after: float | None = None,
    server: Server | None = None,
    path: str = "/v1/policies/ear-742.7/decide?at=2021-01-01",
) -> LoadResult:
    """Offer load for `seconds` (total `rate` per second over all clients, or as fast as they can).

    With `kill_after`, the server is killed with SIGKILL that many seconds in, and the clients
    stop shortly after: what they saw acknowledged is returned.
    """
    bodies = bodies or sample_cases()
    stop = threading.Event()
    results = [LoadResult() for _ in range(clients)]
    per_client = rate / clients if rate else None
    threads = [
        threading.Thread(target=_client, args=(port, bodies, stop, results[i], per_client, path), daemon=True)
        for i in range(clients)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    if kill_after is not None and server is not None:
        time.sleep(kill_after)
        server.kill()
        time.sleep(0.2)
    else:
        time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    total = LoadResult()
    for result in results:
        total.merge(result)
    total.seconds = time.perf_counter() - started
    return total


def logged_ids(log: str) -> set[str]:
    """Every decision id committed to the log."""
    from engine.decisionlog.backends import open_store

    with open_store(log) as store:
        return {r.decision_id for r in store.records() if r.kind == "decision" and r.decision_id}


@dataclass
class CrashReport:
    kills: int = 0
    acked: int = 0
    missing: list[str] = field(default_factory=list)
    verify_failures: list[str] = field(default_factory=list)
    logged: int = 0


def crash_trials(
    folder: Path,
    log: str,
    *,
    kills: int,
    clients: int = 8,
    min_run: float = 0.3,
    max_run: float = 1.2,
    extra: Sequence[str] = (),
    env: dict[str, str] | None = None,
    checkpoints: Path | None = None,
    seed: int = 7,
) -> CrashReport:
    """Start, load, kill -9, verify; `kills` times. Then: is every acknowledged decision in the log?"""
    from engine.decisionlog.backends import open_store
    from engine.decisionlog.verify import verify_log

    rng = random.Random(seed)
    report = CrashReport()
    acked: list[str] = []
    for _ in range(kills):
        server = start_server(folder, log, extra=extra, env=env)
        result = run_load(
            server.port, seconds=0, clients=clients, kill_after=rng.uniform(min_run, max_run), server=server
        )
        report.kills += 1
        acked += result.acked
        with open_store(log) as store:
            verdict = verify_log(store, checkpoints)
        if not verdict.intact:
            first = verdict.first
            report.verify_failures.append(f"after kill {report.kills}: {first}")
    ids = logged_ids(log)
    report.logged = len(ids)
    report.acked = len(acked)
    report.missing = [a for a in acked if a not in ids]
    return report


def metrics(port: int) -> dict[str, float]:
    """The unlabelled samples of /metrics."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc), in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def describe(result: LoadResult) -> dict[str, Any]:
    return {
        "seconds": round(result.seconds, 2),
        "ok": result.ok,
        "rate_ok_per_s": round(result.ok / result.seconds, 1) if result.seconds else None,
        "statuses": result.statuses,
        "errors": result.errors,
        "p50_ms": round(result.percentile(0.5) * 1000, 2),
        "p99_ms": round(result.percentile(0.99) * 1000, 2),
    }
