"""Where records live: the storage interface, sealing (positions, leaf and chain hashes), and opening a log.

Two backends share one schema (`sqlite.py`, `postgres.py`). A batch of pending records is
sealed inside the write transaction, after the log's head has been read under the
database's write lock, so several writers (PostgreSQL service workers) still produce one
unbroken chain. Append-only is enforced by the database itself: triggers refuse every
UPDATE and DELETE, except deleting a body the log has recorded as pruned and a personal
value it has recorded as erased.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.decisionlog.merkle import leaf_hash
from engine.decisionlog.records import Personal, RecordBody, chain_next, genesis

__all__ = [
    "Durability",
    "LogError",
    "LogUnavailable",
    "Pending",
    "Sealed",
    "Store",
    "StoredRecord",
]


class LogError(Exception):
    """A decision-log problem a user can act on (bad URL, not a log, refused operation)."""

    def __init__(self, message: str, help: str | None = None):
        super().__init__(message)
        self.help = help


class LogUnavailable(LogError):
    """The log could not commit: the caller must not treat the records as written."""


@dataclass(frozen=True)
class Durability:
    """What the database says about durability, and the reasons it is not durable (empty: durable)."""

    settings: dict[str, str]
    problems: list[str]

    @property
    def durable(self) -> bool:
        return not self.problems


@dataclass
class Pending:
    """A record not yet written: its body fields, indexed columns and the personal values it hides."""

    body: RecordBody
    decision_id: str | None
    recorded_at: str
    policy: str | None = None
    version: str | None = None
    evaluated_at: str | None = None
    personal: list[Personal] = field(default_factory=list)


@dataclass(frozen=True)
class Sealed:
    """A record as written: its position, exact bytes and hashes (what a receipt reports)."""

    seq: int
    body: bytes
    leaf: bytes
    chain: bytes
    pending: Pending


@dataclass(frozen=True)
class StoredRecord:
    """A row read back for verification: the body is None once pruned (or deleted by tampering)."""

    seq: int
    kind: str
    decision_id: str | None
    recorded_at: str
    leaf: bytes
    chain: bytes
    body: bytes | None


def seal(pending: Sequence[Pending], next_seq: int, previous: bytes) -> list[Sealed]:
    """Give each pending record its position and hashes, continuing the chain from `previous`."""
    sealed = []
    for offset, item in enumerate(pending):
        seq = next_seq + offset
        body = item.body.encode(seq)
        leaf = leaf_hash(body)
        previous = chain_next(previous, leaf)
        sealed.append(Sealed(seq, body, leaf, previous, item))
    return sealed


class Store(abc.ABC):
    """One decision log in a database. Not thread-safe: each thread opens its own."""

    url: str
    log_id: str

    @abc.abstractmethod
    def append(self, pending: Sequence[Pending]) -> list[Sealed]:
        """Seal and commit the records in one transaction; raise `LogUnavailable` if it fails."""

    @abc.abstractmethod
    def durability(self) -> Durability:
        """The effective durability settings of the connection."""

    @abc.abstractmethod
    def size(self) -> int:
        """How many records the log holds (the next position)."""

    @abc.abstractmethod
    def records(self, start: int = 0, stop: int | None = None) -> Iterator[StoredRecord]:
        """Records by position (a gap means rows were deleted), bodies joined in."""

    @abc.abstractmethod
    def hashes(self, start: int) -> Iterator[tuple[int, bytes, bytes]]:
        """(position, leaf hash, chain hash) from `start` on, without the bodies (catching up is cheap)."""

    @abc.abstractmethod
    def leaves(self, start: int, stop: int) -> list[bytes]:
        """Leaf hashes of positions [start, stop), in order."""

    @abc.abstractmethod
    def find(self, decision_id: str) -> int | None:
        """Position of a decision by id."""

    @abc.abstractmethod
    def body(self, seq: int) -> bytes | None:
        """The stored bytes of one record."""

    @abc.abstractmethod
    def personal(self, seqs: Sequence[int]) -> dict[int, dict[str, tuple[bytes, Any]]]:
        """The personal values still held, per record: path -> (salt, value)."""

    @abc.abstractmethod
    def erased(self) -> set[int]:
        """Positions of records with at least one erased value."""

    @abc.abstractmethod
    def pruned(self) -> set[int]:
        """Positions whose bodies were pruned under the retention rule."""

    @abc.abstractmethod
    def held(self) -> dict[str, str]:
        """Decision ids under an active hold, with the reason."""

    @abc.abstractmethod
    def apply_erasure(self, event: Pending, seq: int, paths: Sequence[str]) -> Sealed:
        """Append the erasure event and delete the personal values, in one transaction."""

    @abc.abstractmethod
    def apply_prune(self, event: Pending, seqs: Sequence[int]) -> Sealed:
        """Append the prune event and delete the record bodies, in one transaction."""

    @abc.abstractmethod
    def apply_hold(self, event: Pending, decision_id: str, action: str, reason: str) -> Sealed:
        """Append a hold or release event and index it, in one transaction."""

    @abc.abstractmethod
    def meta(self) -> dict[str, str]:
        """The log's own settings (log id, schema version, creation time, unsafe-durability notes)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection."""

    def genesis(self) -> bytes:
        return genesis(self.log_id)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
