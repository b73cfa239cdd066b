"""`policy batch` over Parquet: decide every row of a Parquet file, write Parquet or JSON lines.

The rows are decided by `engine.columnar` (typed columnar ingestion and `decide_batches`),
one row group per task, on a pool of worker processes or in this process, and written in
input order. Output:

* `.parquet`: the `decide_batches` columns (one per decision, obligations, recommendations,
  fired, unknown, rule_key) with the input row number first (`row`, 1-based) and, with
  `--trace`, the trace as JSON text (`trace`); rejected rows are left out.
* anything else: JSON lines, each the decision `policy eval --format json` gives, with `"row"`
  (the 1-based row number) first, as `policy batch` writes for JSON-lines input.

Rejected rows (a value outside its enumeration, a missing required fact) go to the rejects
file, one JSON line each with `row`, `problems` and the row as read. Every output is written
under a temporary name and renamed when the run has finished: a Parquet file is unreadable
until its footer is written, so a partial one would be worse than none.
"""

from __future__ import annotations

import datetime
import json
import multiprocessing
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import api
from engine.batch import Summary
from engine.columnar import PolicyRef, _decide_one, case_of_row, columnar_for, row_input
from engine.impact import AtomicFile, _main_thread, parquet_units
from engine.impact import Unit as _Unit

__all__ = ["is_parquet", "run"]

INFLIGHT_PER_WORKER = 3


def is_parquet(path: str) -> bool:
    return path.endswith((".parquet", ".pq", ".parq"))


@dataclass(frozen=True)
class Task:
    ref: PolicyRef
    trace: bool
    parquet_out: bool


@dataclass
class Piece:
    """One row group's output: a record batch (Parquet out) or JSON lines, and the rejects."""

    rows: int
    decisions: int
    table: Any = None
    lines: bytes = b""
    rejects: bytes = b""


class Decider:
    """Decides row groups for one task; one per process, the policy compiled once."""

    def __init__(self, task: Task):
        self.task = task
        self.policy = task.ref.load()
        self.compiled = self.policy.compiled
        self.when = task.ref.at or self.compiled.info.effective or datetime.date.today()
        self._bodies: dict[str, str] = {}
        self._files: dict[str, Any] = {}

    def run(self, unit: _Unit) -> Piece:
        import pyarrow.parquet as pq

        handle = self._files.get(unit.path)
        if handle is None:
            handle = self._files[unit.path] = pq.ParquetFile(unit.path)
        piece = Piece(0, 0)
        tables, lines, rejects = [], [], []
        row = unit.first_row
        for batch in handle.iter_batches(row_groups=[unit.row_group]):
            table, decided, rejected = self._batch(batch, row)
            tables.append(table)
            lines += decided
            rejects += rejected
            piece.rows += batch.num_rows
            row += batch.num_rows
        piece.decisions = piece.rows - len(rejects)
        if self.task.parquet_out:
            import pyarrow as pa

            piece.table = pa.concat_tables(tables) if tables else None
        piece.lines = _join(lines)
        piece.rejects = _join(rejects)
        return piece

    def _batch(self, batch: Any, first_row: int) -> tuple[Any, list[str], list[str]]:
        import pyarrow as pa
        import pyarrow.compute as pc

        out = _decide_one(self.task.ref, self.compiled, batch, self.when)
        errors = out.column("error")
        rejects = []
        for index in _pc_nonnull(errors):
            problems = json.loads(errors[index].as_py())
            rejects.append(
                _dumps(
                    {
                        "row": first_row + index,
                        "error": "invalid-case",
                        "problems": problems,
                        "input": row_input(batch, index),
                    }
                )
            )
        keep = pc.is_null(errors)
        rows = pa.array(range(first_row, first_row + batch.num_rows), pa.int64())
        traces: list[str | None] | None = None
        if self.task.trace:
            traces = [
                None if errors[i].is_valid else self._traced(batch, i).model_dump_json()
                for i in range(batch.num_rows)
            ]
        if self.task.parquet_out:
            table = pa.Table.from_batches([out]).drop_columns(["error"])
            table = table.add_column(0, "row", rows)
            if traces is not None:
                table = table.append_column(
                    "trace", pa.array([None if t is None else _trace_only(t) for t in traces], pa.string())
                )
            return table.filter(keep), [], rejects
        keys = out.column("rule_key").to_pylist()
        ids = out.column(self.task.ref.id_column).to_pylist() if self.task.ref.id_column else None
        lines = []
        for i, key in enumerate(keys):
            if errors[i].is_valid:
                continue
            traced = traces[i] if traces is not None else None
            body = traced if traced is not None else self._body(key)
            ident = "" if ids is None else f'"id":{json.dumps(ids[i], ensure_ascii=False, default=str)},'
            lines.append(f'{{"row":{first_row + i},{ident}{body[1:]}')
        return None, lines, rejects

    def _traced(self, batch: Any, index: int) -> Any:
        return self.policy.evaluate(
            case_of_row(batch, index, self.compiled.program), trace=True, at=self.when
        )

    def _body(self, key_text: str) -> str:
        """The untraced decision for a key, serialized once (it depends only on the key and the date)."""
        body = self._bodies.get(key_text)
        if body is None:
            from engine.columnar import parse_key
            from engine.impact import _untraced

            decision = _untraced(self.compiled, self.compiled.resolve(parse_key(key_text)), self.when)
            body = self._bodies[key_text] = decision.model_dump_json(exclude={"trace"})
        return body


def _trace_only(decision_json: str) -> str:
    return json.dumps(json.loads(decision_json)["trace"], ensure_ascii=False, separators=(",", ":"))


def _pc_nonnull(array: Any) -> list[int]:
    import pyarrow.compute as pc

    if array.null_count == len(array):
        return []
    rows: list[int] = pc.indices_nonzero(pc.is_valid(array)).to_pylist()
    return rows


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _join(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


_decider: Decider | None = None


def _init(task: Task) -> None:
    global _decider
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _decider = Decider(task)


def _work(unit: _Unit) -> Piece:
    assert _decider is not None
    return _decider.run(unit)


def _pieces(task: Task, units: Iterator[_Unit], workers: int) -> Iterator[Piece]:
    if workers <= 1:
        decider = Decider(task)
        for unit in units:
            yield decider.run(unit)
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
    try:
        pool = multiprocessing.get_context("fork").Pool(workers, initializer=_init, initargs=(task,))
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    try:
        pending: deque[Any] = deque()
        for unit in units:
            pending.append(pool.apply_async(_work, (unit,)))
            while pending and (len(pending) >= workers * INFLIGHT_PER_WORKER or pending[0].ready()):
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def run(
    policy: api.Policy,
    cases: Path,
    output: Path | None,
    rejects: Path,
    *,
    at: datetime.date | None = None,
    trace: bool = False,
    workers: int = 1,
    progress: Callable[[Summary], None] | None = None,
    id_column: str | None = None,
) -> Summary:
    """Decide every row of a Parquet file; `output` None means JSON lines on stdout.

    The id column (`id_column`, else one called `$id`, `id` or `case_id` that is not a fact)
    is carried to the output and the rejects.
    """
    import pyarrow.parquet as pq

    schema = pq.ParquetFile(cases).schema_arrow
    if id_column is None:
        id_column = next(
            (
                n
                for n in ("$id", "id", "case_id")
                if n in schema.names and n not in policy.compiled.program.facts
            ),
            None,
        )
    ref = PolicyRef.of(policy, at=at, id_column=id_column)
    columnar_for(ref, schema)  # a schema that does not fit the facts stops here, before any file is made
    parquet_out = output is not None and is_parquet(str(output))
    task = Task(ref, trace, parquet_out)
    summary = Summary()
    started = time.perf_counter()
    files: list[AtomicFile] = []
    writer = None
    try:
        rejects_file = AtomicFile(rejects)
        files.append(rejects_file)
        out_file = None
        if output is not None:
            out_file = AtomicFile(output)
            files.append(out_file)
        try:
            for piece in _pieces(task, parquet_units((str(cases),)), workers):
                if parquet_out:
                    import pyarrow.parquet as pq_

                    if piece.table is not None and piece.table.num_rows:
                        if writer is None:
                            assert out_file is not None
                            writer = pq_.ParquetWriter(out_file.handle, piece.table.schema)
                        writer.write_table(piece.table)
                elif out_file is not None:
                    out_file.handle.write(piece.lines)
                else:
                    sys.stdout.buffer.write(piece.lines)
                    sys.stdout.buffer.flush()
                if piece.rejects:
                    rejects_file.handle.write(piece.rejects)
                summary.lines += piece.rows
                summary.decisions += piece.decisions
                summary.rejects += piece.rows - piece.decisions
                if progress is not None:
                    progress(summary)
            if parquet_out and writer is None and out_file is not None:  # no row decided: an empty table
                empty = _empty_output(ref, trace)
                pq.write_table(empty, out_file.handle)
            if writer is not None:
                writer.close()
            for handle in files:
                handle.commit()
        except KeyboardInterrupt:
            summary.interrupted = True
            for handle in files:
                handle.discard()
    except BaseException:
        for handle in files:
            handle.discard()
        raise
    summary.seconds = time.perf_counter() - started
    return summary


def _empty_output(ref: PolicyRef, trace: bool) -> Any:
    import pyarrow as pa

    from engine.columnar import output_schema

    schema = output_schema(ref)
    fields = [pa.field("row", pa.int64()), *[f for f in schema if f.name != "error"]]
    if trace:
        fields.append(pa.field("trace", pa.string()))
    return pa.schema(fields).empty_table()
