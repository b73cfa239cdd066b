"""Group commit: one thread owns the log connection, commits queued records in batches, then acknowledges.

Requests hand a `Pending` record and a callback to `submit`; the writer takes everything
queued (up to `max_batch`), commits it in one transaction and only then calls the callbacks
with the sealed records, so a caller can never acknowledge a decision that is not on disk.
A failed commit calls back with the error instead (the service answers 503). A full queue
refuses at once (`submit` returns False) so overload sheds load instead of growing memory.
After commits, a signed checkpoint is exported when 1,000 records or 1 second have passed.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from engine.decisionlog.checkpoints import CheckpointWriter
from engine.decisionlog.merkle import Frontier
from engine.decisionlog.store import LogUnavailable, Pending, Sealed, Store

__all__ = ["TEST_ACK_BEFORE_COMMIT_ENV", "GroupCommitter", "WriterObserver"]

Callback = Callable[[Sealed | None, Exception | None], None]

#: Test-only: acknowledge before committing, so the crash harness can prove it catches lost decisions.
TEST_ACK_BEFORE_COMMIT_ENV = "POLICY_LOG_TEST_ACK_BEFORE_COMMIT"


class WriterObserver(Protocol):
    def committed(self, size: int, seconds: float) -> None: ...
    def failed(self, size: int) -> None: ...
    def checkpointed(self, size: int) -> None: ...
    def unlogged(self, count: int) -> None: ...


@dataclass
class _Item:
    pending: Pending
    callback: Callback


class GroupCommitter:
    """The single writer of one service process (several processes may share a PostgreSQL log)."""

    def __init__(
        self,
        store: Store,
        checkpoints: CheckpointWriter | None,
        *,
        observer: WriterObserver | None = None,
        max_batch: int = 1000,
        max_queue: int = 20000,
        checkpoint_every: int = 1000,
        checkpoint_interval: float = 1.0,
    ):
        self.store = store
        self.checkpoints = checkpoints
        self.observer = observer
        self.max_batch = max_batch
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval = checkpoint_interval
        self.ack_before_commit = os.environ.get(TEST_ACK_BEFORE_COMMIT_ENV) == "1"
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name="decision-log-writer", daemon=True)
        self._frontier = Frontier()
        self._head = store.genesis()
        self._checkpointed = -1
        self._last_checkpoint = time.monotonic()
        self.last_error: str | None = None
        self.healthy = True

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> None:
        """Catch up with what the log holds (for the Merkle frontier), checkpoint it, start the thread."""
        self._catch_up()
        self._checkpoint(force=True)
        self._thread.start()

    def stop(self) -> None:
        """Commit what is queued, write a final checkpoint, stop."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def submit(self, pending: Pending, callback: Callback) -> bool:
        """Queue a record; False (nothing queued) when the queue is full."""
        try:
            self._queue.put_nowait(_Item(pending, callback))
        except queue.Full:
            return False
        return True

    # -- the thread ---------------------------------------------------------
    def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                first = self._queue.get(timeout=0.1)
            except queue.Empty:
                self._checkpoint()
                continue
            batch: list[_Item] = []
            if first is None:
                stopping = True
            else:
                batch.append(first)
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            if batch:
                self._commit(batch)
            self._checkpoint(force=stopping)

    def _commit(self, batch: list[_Item]) -> None:
        if self.ack_before_commit:  # the deliberately broken test build
            for item in batch:
                item.callback(None, None)
            if self.observer:
                self.observer.unlogged(len(batch))
            time.sleep(0.02)
        started = time.perf_counter()
        try:
            sealed = self.store.append([i.pending for i in batch])
        except LogUnavailable as exc:
            self.healthy = False
            self.last_error = str(exc)
            if self.observer:
                self.observer.failed(len(batch))
            if not self.ack_before_commit:
                for item in batch:
                    item.callback(None, exc)
            return
        except Exception as exc:  # never leave a caller waiting: an unexpected error is a failed commit
            self.healthy = False
            self.last_error = f"unexpected error while committing: {exc!r}"
            if self.observer:
                self.observer.failed(len(batch))
            if not self.ack_before_commit:
                for item in batch:
                    item.callback(None, LogUnavailable(self.last_error))
            return
        self.healthy = True
        self.last_error = None
        if self.observer:
            self.observer.committed(len(batch), time.perf_counter() - started)
        if sealed and sealed[0].seq == self._frontier.size:
            for record in sealed:
                self._frontier.append(record.leaf)
            self._head = sealed[-1].chain
        if not self.ack_before_commit:
            for item, record in zip(batch, sealed, strict=True):
                item.callback(record, None)

    # -- checkpoints ----------------------------------------------------------
    def _catch_up(self) -> None:
        """Bring the frontier up to the log's size (records other writers appended)."""
        for seq, leaf, chain in self.store.hashes(self._frontier.size):
            if seq != self._frontier.size:
                raise LogUnavailable(
                    f"the log has a gap at record #{self._frontier.size}: run `policy log verify`"
                )
            self._frontier.append(leaf)
            self._head = chain

    def _checkpoint(self, force: bool = False) -> None:
        if self.checkpoints is None:
            return
        due = (
            force
            or self._frontier.size - max(self._checkpointed, 0) >= self.checkpoint_every
            or time.monotonic() - self._last_checkpoint >= self.checkpoint_interval
        )
        if not due:
            return
        try:
            self._catch_up()
            if self._frontier.size in (0, self._checkpointed):
                self._last_checkpoint = time.monotonic()
                return
            from engine.decisionlog.records import now_text

            checkpoint = self.checkpoints.signer.checkpoint(
                self.store.log_id, self._frontier.size, self._frontier.root(), self._head, now_text()
            )
            self.checkpoints.write(checkpoint)
        except (OSError, LogUnavailable) as exc:
            self.last_error = f"could not export a checkpoint: {exc}"
            return
        except Exception as exc:  # a database error while catching up: retried at the next interval
            self.last_error = f"could not export a checkpoint: {exc!r}"
            return
        self._checkpointed = self._frontier.size
        self._last_checkpoint = time.monotonic()
        if self.observer:
            self.observer.checkpointed(self._frontier.size)
