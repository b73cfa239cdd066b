"""Run batch decisions and impact runs on a Dask cluster (`pip install 'policy-engine[dask]'`).

The work is cut the same way as on one machine (Parquet row groups, blocks of JSON lines)
and every task runs the same function as a local worker process, via `Bag.map_partitions`:
the policy travels as a `PolicyRef` (its source text and content hash) and each Dask worker
compiles it once. Results come back to the client in input order, so an impact report made
on a cluster is byte-identical to one made with `--workers 1`.

    from distributed import Client
    import engine, engine.dask
    from engine.columnar import PolicyRef

    client = Client("tcp://scheduler:8786")
    ref = PolicyRef.of(engine.load("policies/ear-742.7", version="2020-10-06"))
    bag = engine.dask.decisions(ref, ["history/part-0.parquet", "history/part-1.parquet"])
    for batch in bag.compute():          # pyarrow.RecordBatch, as decide_batches gives them
        ...

Nothing here is imported by `import engine`; dask and distributed are imported when used.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from engine.columnar import PolicyRef, decide_batches
from engine.impact import Executor, Job, Unit, UnitResult, run_units

__all__ = ["decisions", "executor", "run_on"]

PARTITION_UNITS = 1  # units per Dask partition: one row group each, so every worker gets work and results stream back in order


def _partition(units: Sequence[Unit], job: Job) -> list[UnitResult]:
    """One partition's task on a Dask worker: the same code a local worker process runs."""
    return run_units(job, list(units))


def run_on(client: Any, job: Job, units: Iterator[Unit], inflight: int | None = None) -> Iterator[UnitResult]:
    """Decide units on a Dask cluster with `Bag.map_partitions`, yielding results in input order.

    A bounded number of partitions is in flight (default: three per worker thread), so the
    client's memory stays constant however long the input.
    """
    import dask.bag as db

    limit = inflight or 3 * max(sum(client.nthreads().values()), 1)
    pending: deque[Any] = deque()

    def submit(chunk: list[Unit]) -> None:
        bag = db.from_sequence(chunk, npartitions=1).map_partitions(_partition, job)
        pending.append(client.compute(bag))

    chunk: list[Unit] = []
    for unit in units:
        chunk.append(unit)
        if len(chunk) == PARTITION_UNITS:
            submit(chunk)
            chunk = []
            while len(pending) >= limit:
                yield from pending.popleft().result()
    if chunk:
        submit(chunk)
    while pending:
        yield from pending.popleft().result()


@contextmanager
def executor(address: str, workers: int) -> Iterator[Executor]:
    """An impact executor on the cluster at `address`, or on a new `LocalCluster` for `local`."""
    from distributed import Client, LocalCluster

    cluster = None
    if address == "local":
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    else:
        client = Client(address)
    try:
        yield lambda job, units: run_on(client, job, units)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _decide_row_group(pieces: Sequence[tuple[str, int]], ref: PolicyRef) -> list[Any]:
    """Read row groups on the worker and decide them with `decide_batches`."""
    import pyarrow.parquet as pq

    out = []
    for path, group in pieces:
        batches = pq.ParquetFile(path).iter_batches(row_groups=[group])
        out += list(decide_batches(ref, batches))
    return out


def decisions(ref: PolicyRef, paths: Sequence[str], partitions: int | None = None) -> Any:
    """A lazy `dask.bag.Bag` of decided record batches (the `decide_batches` output), one task per row group.

    Each worker reads its own row groups: the client sends only file names and row-group numbers.
    """
    import dask.bag as db
    import pyarrow.parquet as pq

    pieces = [(str(path), g) for path in paths for g in range(pq.ParquetFile(path).metadata.num_row_groups)]
    bag = db.from_sequence(pieces, npartitions=partitions or max(len(pieces), 1))
    return bag.map_partitions(_decide_row_group, ref)
