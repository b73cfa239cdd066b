"""Batch evaluation: decide a stream of JSON-lines cases on every core, in input order, in constant memory.

The main process reads the input in chunks of lines, hands each chunk to a worker process
(each worker loads the policy once, by path, so no compiled code is pickled), and writes
the chunks' results back in input order as they complete. At most a few chunks per worker
are in flight, so memory stays constant however long the stream is. Every chunk's
decisions and rejects are written whole and flushed together, with Ctrl-C held off during
the write, so an interrupted run leaves only complete lines and counts that add up.

Per case the path is `json.loads` → `CompiledPolicy.validate` (its generated reader takes the
common, exactly-typed case without pydantic; pydantic decides and explains the rest) → fired
rules → precedence (cached) → JSON. The serialized decision depends only on the fired-rule key
and the evaluation date, so it is serialized once per key and the line number spliced in front.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

from engine import api
from engine.cases import decode_json
from engine.errors import CaseError

CHUNK_BYTES = 1 << 19
"""Bytes read per chunk (about 1,200 cases of the fixtures' size), cut at the last whole line:
large enough that inter-process overhead is small, small enough to write and flush often."""

INFLIGHT_PER_WORKER = 3
"""Chunks queued per worker: keeps every worker busy while bounding memory."""

# ---------------------------------------------------------------------------
# Deciding a chunk


@dataclass(frozen=True)
class ChunkResult:
    """One chunk's output lines and reject lines (UTF-8, newline-terminated) and its counts."""

    decisions: bytes
    rejects: bytes
    n_decisions: int
    n_rejects: int
    n_blank: int
    n_lines: int


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _with_line(line: int, body: str) -> str:
    """Splice `"line": N` in front of a serialized JSON object's members."""
    return f'{{"line":{line},{body[1:]}' if len(body) > 2 else f'{{"line":{line}}}'


class Decider:
    """Decides chunks of input lines for one policy version; one per worker process."""

    def __init__(self, policy: api.Policy, *, at: date | None = None, trace: bool = False):
        self.policy = policy
        self.compiled = policy.compiled
        self.at = at
        self.trace = trace
        self._serialized: dict[tuple[int, ...], str] = {}

    def decide_line(self, raw: bytes, line: int) -> tuple[str | None, str | None]:
        """(decision line, None) or (None, reject line) for one non-blank input line."""
        try:
            case = decode_json(raw[:-1] if raw.endswith(b"\r") else raw)
        except CaseError as exc:
            (problem,) = exc.case_diagnostics
            column = {"column": problem.column} if problem.column else {}
            return None, self._reject(line, raw, "invalid-json", reason=problem.message, **column)
        try:
            return _with_line(line, self._decision_json(self.compiled.validate(case))), None
        except CaseError as exc:
            problems = [{"path": path, "reason": reason} for path, reason in exc.problems]
            return None, self._reject(line, raw, "invalid-case", problems=problems)
        except (
            Exception
        ) as exc:  # an engine bug on an unforeseen value: reject the case, keep the stream going
            return None, self._reject(line, raw, "evaluation-failed", reason=f"{type(exc).__name__}: {exc}")

    def _decision_json(self, facts: dict[str, Any]) -> str:
        """The decision as compact JSON; without a trace it depends only on the fired rules, so cache it."""
        if self.trace:
            decision = self.compiled.decide_facts(facts, trace=True, at=self.at)
            return decision.model_dump_json()  # pydantic-core: the same text as json.dumps, 3x faster
        fired = tuple(self.compiled.fired(facts, self.at))
        body = self._serialized.get(fired)
        if body is None:
            decision = self.compiled.decide_facts(facts, at=self.at)
            body = decision.model_dump_json(exclude={"trace"})
            self._serialized[fired] = body
        return body

    @staticmethod
    def _reject(line: int, raw: bytes, error: str, **details: Any) -> str:
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        return _dumps({"line": line, "error": error, **details, "input": text})

    def decide_chunk(self, first_line: int, block: bytes) -> ChunkResult:
        """Decide the lines of `block`, numbered from `first_line`; blank lines are skipped and counted."""
        lines = block.split(b"\n")
        if block.endswith(b"\n"):
            lines.pop()
        out: list[str] = []
        rejects: list[str] = []
        blank = 0
        for line, raw in enumerate(lines, first_line):
            if not raw.strip():
                blank += 1
                continue
            decided, rejected = self.decide_line(raw, line)
            if decided is not None:
                out.append(decided)
            else:
                rejects.append(rejected or "")
        return ChunkResult(
            decisions=_join(out),
            rejects=_join(rejects),
            n_decisions=len(out),
            n_rejects=len(rejects),
            n_blank=blank,
            n_lines=len(lines),
        )


def _join(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


# ---------------------------------------------------------------------------
# Worker processes


class BatchError(Exception):
    """A failure that stops the whole run (the policy could not be loaded or changed under us)."""


_worker: Decider | BatchError | None = None


def _init_worker(path: str, at: date | None, trace: bool, expected_hash: str) -> None:
    """Load the policy once per worker, by path; a failure is kept and raised by the first chunk.

    Raising here would make the pool restart the worker forever, so the error waits.
    SIGINT is ignored: the main process decides what an interrupt means and terminates us.
    """
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        policy = api.load(path)
    except Exception as exc:
        _worker = BatchError(f"worker could not load `{path}`: {exc}")
        return
    if policy.content_hash != expected_hash:
        _worker = BatchError(f"`{path}` changed while the batch was starting; run it again")
        return
    _worker = Decider(policy, at=at, trace=trace)


def _work(first_line: int, block: bytes) -> ChunkResult:
    """The task each worker runs: decide one chunk with the worker's own policy."""
    if isinstance(_worker, BatchError):
        raise _worker
    if _worker is None:
        raise BatchError("worker was not initialised")
    return _worker.decide_chunk(first_line, block)


# ---------------------------------------------------------------------------
# The run


@dataclass
class Summary:
    """What a run did: lines read = decisions + rejects + blank, over the lines fully written."""

    lines: int = 0
    decisions: int = 0
    rejects: int = 0
    blank: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    def add(self, result: ChunkResult, size: int) -> None:
        self.lines += result.n_lines
        self.decisions += result.n_decisions
        self.rejects += result.n_rejects
        self.blank += result.n_blank
        self.bytes_read += size

    @property
    def rate(self) -> float:
        """Input lines per second."""
        return self.lines / self.seconds if self.seconds > 0 else 0.0


def read_chunks(stream: BinaryIO, size: int = CHUNK_BYTES) -> Iterator[tuple[int, bytes]]:
    """(first line number, block of whole lines) for consecutive blocks of about `size` bytes.

    One bytes object per block, not one per line, keeps the main process's share of the
    work small. `read1` returns what is available, so a slow producer's lines are decided
    as they come; a partial last line waits for its end (or for the end of the input).
    """
    read = getattr(stream, "read1", stream.read)
    carry: list[bytes] = []
    first = 1
    while True:
        data = read(size)
        if not data:
            break
        cut = data.rfind(b"\n") + 1
        if cut == 0:  # no line ends here: a long line, keep reading
            carry.append(data)
            continue
        block = b"".join([*carry, data[:cut]]) if carry else data[:cut]
        carry = [data[cut:]] if cut < len(data) else []
        yield first, block
        first += block.count(b"\n")
    if carry:
        yield first, b"".join(carry)


class InterruptGuard:
    """Lets Ctrl-C land between chunks, never inside a chunk's write, so only whole lines are left.

    Python runs signal handlers in the main thread at the next bytecode, whichever thread the
    signal hit (the pool has helper threads), so blocking the signal in one thread is not
    enough: the handler itself defers while a write is under way and raises right after it.
    Installed only over Python's default handler in the main thread; an ignored SIGINT stays
    ignored and an embedding application's own handler is left alone.
    """

    def __init__(self) -> None:
        self.writing = False
        self.pending = False
        self.previous: Any = None

    def __enter__(self) -> InterruptGuard:
        if _in_main_thread() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.writing:
            self.pending = True
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def writing_chunk(self) -> Iterator[None]:
        """Hold an interrupt until the block is done, then raise it."""
        self.writing = True
        try:
            yield
        finally:
            self.writing = False
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt


class Writer:
    """Writes each chunk's decisions and rejects whole, flushes both, then counts them."""

    def __init__(
        self,
        out: BinaryIO,
        rejects: BinaryIO,
        summary: Summary,
        progress: Callable[[Summary], None],
        guard: InterruptGuard,
    ):
        self.out = out
        self.rejects = rejects
        self.summary = summary
        self.progress = progress
        self.guard = guard

    def write(self, result: ChunkResult, size: int) -> None:
        with self.guard.writing_chunk():
            if result.decisions:
                self.out.write(result.decisions)
            if result.rejects:
                self.rejects.write(result.rejects)
            self.out.flush()
            self.rejects.flush()
            self.summary.add(result, size)
        self.progress(self.summary)


def _run_inline(decider: Decider, chunks: Iterator[tuple[int, bytes]], writer: Writer) -> None:
    for first, block in chunks:
        writer.write(decider.decide_chunk(first, block), len(block))


def _run_pool(
    policy: api.Policy,
    at: date | None,
    trace: bool,
    workers: int,
    chunks: Iterator[tuple[int, bytes]],
    writer: Writer,
) -> None:
    """Fan chunks out to worker processes, at most a few per worker in flight, writing in input order."""
    args = (str(policy.path), at, trace, policy.content_hash)
    # Workers start with SIGINT ignored (also set in the initializer, for spawned workers).
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if _in_main_thread() else None
    try:
        pool = multiprocessing.Pool(workers, initializer=_init_worker, initargs=args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    try:
        pending: deque[tuple[Any, int]] = deque()
        limit = workers * INFLIGHT_PER_WORKER
        for first, block in chunks:
            pending.append((pool.apply_async(_work, (first, block)), len(block)))
            # Write what is done at the head (in order) before reading on; wait only when full.
            while pending and (len(pending) >= limit or pending[0][0].ready()):
                result, done_size = pending.popleft()
                writer.write(result.get(), done_size)
        while pending:
            result, done_size = pending.popleft()
            writer.write(result.get(), done_size)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def run(
    policy: api.Policy,
    source: BinaryIO,
    out: BinaryIO,
    rejects: BinaryIO,
    *,
    at: date | None = None,
    trace: bool = False,
    workers: int = 1,
    chunk_bytes: int = CHUNK_BYTES,
    progress: Callable[[Summary], None] | None = None,
) -> Summary:
    """Decide every line of `source`, writing decisions and rejects; Ctrl-C stops it cleanly.

    On KeyboardInterrupt the workers are terminated and the summary comes back with
    `interrupted=True`, counting only the chunks written whole. Raises `BatchError` if a
    worker cannot load the policy.
    """
    summary = Summary()
    started = time.perf_counter()
    chunks = read_chunks(source, chunk_bytes)
    with InterruptGuard() as guard:
        writer = Writer(out, rejects, summary, progress or (lambda _: None), guard)
        try:
            if workers <= 1:
                _run_inline(Decider(policy, at=at, trace=trace), chunks, writer)
            else:
                _run_pool(policy, at, trace, workers, chunks, writer)
        except KeyboardInterrupt:
            summary.interrupted = True
    summary.seconds = time.perf_counter() - started
    return summary


# ---------------------------------------------------------------------------
# Progress and test inputs


class Progress:
    """A counter line on stderr, redrawn at most a few times a second; percent when the size is known."""

    def __init__(self, total_bytes: int | None, stream: Any = None, interval: float = 0.25):
        self.total = total_bytes
        self.stream = stream or sys.stderr
        self.interval = interval
        self.started = time.perf_counter()
        self.last = 0.0
        self.drawn = False

    def __call__(self, summary: Summary) -> None:
        now = time.perf_counter()
        if now - self.last < self.interval:
            return
        self.last = now
        elapsed = now - self.started
        rate = summary.lines / elapsed if elapsed > 0 else 0.0
        text = f"{summary.lines:,} lines: {summary.decisions:,} decisions, {summary.rejects:,} rejects, {rate:,.0f} lines/s"
        if self.total:
            text = f"{100 * summary.bytes_read / self.total:5.1f}%  " + text
        self.stream.write("\r\x1b[2K" + text)
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        """Erase the counter line so the summary starts on a clean line."""
        if self.drawn:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()


def sample_lines(cases_dir: str | Path, count: int, malformed_every: int = 0) -> Iterator[str]:
    """`count` JSON lines cycling the fixture cases, with a truncated line every `malformed_every` lines.

    For tests and the throughput measurement in docs/batch.md.
    """
    cases = [
        json.dumps(json.loads(f.read_text(encoding="utf-8")), separators=(",", ":"))
        for f in sorted(Path(cases_dir).glob("*.json"))
    ]
    for i in range(count):
        text = cases[i % len(cases)]
        if malformed_every and (i + 1) % malformed_every == 0:
            text = text[: len(text) // 2]
        yield text
