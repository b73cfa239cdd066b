"""Prometheus text exposition, hand-written: counters, gauges and histograms with fixed buckets.

Small enough not to need `prometheus_client`; the names and labels are documented in
docs/service.md.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Callable

__all__ = ["Histogram", "Metrics"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


class Histogram:
    """Cumulative buckets, sum and count, as Prometheus expects."""

    def __init__(self, buckets: tuple[float, ...]):
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        out, running = [], 0
        sep = "," if labels else ""
        for bound, count in zip(self.buckets, self.counts, strict=False):
            running += count
            out.append(f'{name}_bucket{{{labels}{sep}le="{bound:g}"}} {running}')
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        suffix = f"{{{labels}}}" if labels else ""
        out.append(f"{name}_sum{suffix} {self.total:.6f}")
        out.append(f"{name}_count{suffix} {self.count}")
        return out


class Metrics:
    """Everything /metrics reports; also the writer's observer (commit batch sizes, failures)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = {}
        self.batch_sizes = Histogram(BATCH_BUCKETS)
        self.commit_seconds = Histogram(LATENCY_BUCKETS)
        self.logged = 0
        self.unlogged_count = 0
        self.rejected: dict[str, int] = defaultdict(int)
        self.commit_failures = 0
        self.checkpoints = 0
        self.checkpoint_size = 0
        self.reloads: dict[str, int] = defaultdict(int)
        self.queue_depth: Callable[[], int] = lambda: 0
        self.in_flight: Callable[[], int] = lambda: 0
        self.unsafe_durability = False

    def request(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(route, status)] += 1
            histogram = self.latency.get(route)
            if histogram is None:
                histogram = self.latency[route] = Histogram(LATENCY_BUCKETS)
            histogram.observe(seconds)

    def reject(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self.rejected[reason] += count

    # -- writer observer ----------------------------------------------------
    def committed(self, size: int, seconds: float) -> None:
        with self._lock:
            self.batch_sizes.observe(size)
            self.commit_seconds.observe(seconds)
            self.logged += size

    def failed(self, size: int) -> None:
        with self._lock:
            self.commit_failures += 1

    def checkpointed(self, size: int) -> None:
        with self._lock:
            self.checkpoints += 1
            self.checkpoint_size = size

    def unlogged(self, count: int) -> None:
        with self._lock:
            self.unlogged_count += count

    # -- exposition ---------------------------------------------------------
    def render(self) -> str:
        with self._lock:
            lines = [
                "# HELP policy_requests_total HTTP requests by route and status.",
                "# TYPE policy_requests_total counter",
            ]
            for (route, status), count in sorted(self.requests.items()):
                lines.append(f'policy_requests_total{{route="{route}",status="{status}"}} {count}')
            lines += [
                "# HELP policy_request_duration_seconds Time from request to response, by route.",
                "# TYPE policy_request_duration_seconds histogram",
            ]
            for route, histogram in sorted(self.latency.items()):
                lines += histogram.lines("policy_request_duration_seconds", f'route="{route}"')
            lines += [
                "# HELP policy_decisions_logged_total Decisions committed to the decision log.",
                "# TYPE policy_decisions_logged_total counter",
                f"policy_decisions_logged_total {self.logged}",
                "# HELP decisions_unlogged_total Decisions acknowledged without a committed log record (must stay 0).",
                "# TYPE decisions_unlogged_total counter",
                f"decisions_unlogged_total {self.unlogged_count}",
                "# HELP policy_decisions_rejected_total Decisions refused with 503 (overloaded, log unavailable).",
                "# TYPE policy_decisions_rejected_total counter",
            ]
            for reason, count in sorted(self.rejected.items()):
                lines.append(f'policy_decisions_rejected_total{{reason="{reason}"}} {count}')
            lines += [
                "# HELP policy_log_commit_batch_size Records per log commit (group commit).",
                "# TYPE policy_log_commit_batch_size histogram",
                *self.batch_sizes.lines("policy_log_commit_batch_size"),
                "# HELP policy_log_commit_duration_seconds Time of one log commit (with fsync).",
                "# TYPE policy_log_commit_duration_seconds histogram",
                *self.commit_seconds.lines("policy_log_commit_duration_seconds"),
                "# HELP policy_log_commit_failures_total Log commits that failed (their requests got 503).",
                "# TYPE policy_log_commit_failures_total counter",
                f"policy_log_commit_failures_total {self.commit_failures}",
                "# HELP policy_log_checkpoints_total Signed checkpoints exported.",
                "# TYPE policy_log_checkpoints_total counter",
                f"policy_log_checkpoints_total {self.checkpoints}",
                "# HELP policy_log_checkpoint_records Records covered by the newest checkpoint.",
                "# TYPE policy_log_checkpoint_records gauge",
                f"policy_log_checkpoint_records {self.checkpoint_size}",
                "# HELP policy_log_queue_depth Records waiting for the next commit.",
                "# TYPE policy_log_queue_depth gauge",
                f"policy_log_queue_depth {self.queue_depth()}",
                "# HELP policy_requests_in_flight Decision requests being served.",
                "# TYPE policy_requests_in_flight gauge",
                f"policy_requests_in_flight {self.in_flight()}",
                "# HELP policy_reloads_total Policy reloads by outcome.",
                "# TYPE policy_reloads_total counter",
            ]
            for outcome, count in sorted(self.reloads.items()):
                lines.append(f'policy_reloads_total{{outcome="{outcome}"}} {count}')
            lines += [
                "# HELP policy_log_unsafe_durability 1 when the service runs with --unsafe-durability.",
                "# TYPE policy_log_unsafe_durability gauge",
                f"policy_log_unsafe_durability {int(self.unsafe_durability)}",
            ]
        return "\n".join(lines) + "\n"
