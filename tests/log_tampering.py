"""What an attacker with write access to the database can do to a decision log, class by class.

Each function tampers with a log through a raw DB-API connection after switching the
append-only triggers off, as someone holding the database file (or a superuser) could.
Used by tests/test_decisionlog.py (SQLite), tests/test_postgres.py and benchmarks/service_load.py.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from engine.decisionlog.backends import open_store
from engine.decisionlog.checkpoints import CheckpointWriter, Signer
from engine.decisionlog.log import decision_record
from engine.decisionlog.writer import GroupCommitter

CLASSES = (
    "byte-edit",
    "edit-rehash",
    "edit-rechain",
    "delete",
    "delete-rechain",
    "reorder",
    "insert",
    "truncate",
)

#: The kinds `verify` may name for each class of tampering.
EXPECTED = {
    "byte-edit": {"edited"},
    "edit-rehash": {"edited-rehashed"},
    "edit-rechain": {"rewritten"},
    "delete": {"deleted"},
    # a deletion near the tail, rechained, leaves no later checkpoint to disagree: the log is just short
    "delete-rechain": {"rewritten", "truncated"},
    "reorder": {"reordered"},
    "insert": {"inserted"},
    "truncate": {"truncated"},
}


def build_log(url: str, folder: Path, records: int, checkpoint_every: int = 8) -> None:
    """A log of `records` decisions (some with a personal field), checkpointed every few records."""
    import threading

    with open_store(url, create=True) as store:
        signer = Signer(folder / "signing-key.pem")
        writer = GroupCommitter(
            store, CheckpointWriter(folder / "checkpoints", signer), checkpoint_every=checkpoint_every
        )
        writer.start()
        for start in range(0, records, checkpoint_every):
            done = threading.Event()
            count = min(checkpoint_every, records - start)
            left = [count]

            def callback(
                sealed: Any, error: Any, left: list[int] = left, done: threading.Event = done
            ) -> None:
                left[0] -= 1
                if left[0] == 0:
                    done.set()

            for i in range(start, start + count):
                pending = decision_record(
                    policy="ear-742.7",
                    version="2020-10-06",
                    content_hash="c" * 64,
                    data_hash="d" * 64,
                    evaluated_at=date(2021, 1, 1),
                    case={"n": i, "end_user": {"name": f"Person {i}", "type": "government"}},
                    output={
                        "decisions": {"license_review": {"value": "favorable" if i % 2 else "not_favorable"}}
                    },
                    trace_json=b'{"rules":[]}',
                    personal_paths=["end_user.name"],
                    requested_by="test",
                )
                writer.submit(pending, callback)
            done.wait(10)
            writer._checkpoint(force=True)
        writer.stop()


class Raw:
    """A DB-API connection with `?` placeholders on both backends, triggers switched off."""

    def __init__(self, conn: Any, postgres: bool):
        self.conn, self.postgres = conn, postgres
        if not postgres:
            conn.execute("PRAGMA synchronous=OFF")  # a throwaway copy: no fsync per statement
            conn.execute("BEGIN")
        if postgres:
            for table in ("records", "bodies"):
                self.run(f"ALTER TABLE decision_log.{table} DISABLE TRIGGER ALL")
        else:
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
                conn.execute(f"DROP TRIGGER {name}")

    def done(self) -> None:
        """Commit the tampering and close."""
        if not self.postgres:
            self.conn.execute("COMMIT")
        self.conn.close()

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        if self.postgres:
            sql = (
                sql.replace("?", "%s")
                .replace(" records", " decision_log.records")
                .replace(" bodies", " decision_log.bodies")
            )
        cursor = self.conn.execute(sql, params)
        try:
            return [
                tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in cursor.fetchall()
            ]
        except Exception:
            return []

    def size(self) -> int:
        return int(self.run("SELECT MAX(seq) FROM records")[0][0]) + 1

    def body(self, seq: int) -> bytes:
        return bytes(self.run("SELECT body FROM bodies WHERE seq = ?", (seq,))[0][0])

    def chain(self, seq: int, genesis: bytes) -> bytes:
        if seq < 0:
            return genesis
        return bytes(self.run("SELECT chain_hash FROM records WHERE seq = ?", (seq,))[0][0])

    def set_body(self, seq: int, body: bytes, rehash: bool) -> None:
        self.run("UPDATE bodies SET body = ? WHERE seq = ?", (body, seq))
        if rehash:
            self.run("UPDATE records SET leaf_hash = ? WHERE seq = ?", (leaf(body), seq))

    def rechain(self, start: int, genesis: bytes) -> None:
        previous = self.chain(start - 1, genesis)
        for seq, leaf_hash in self.run(
            "SELECT seq, leaf_hash FROM records WHERE seq >= ? ORDER BY seq", (start,)
        ):
            previous = hashlib.sha256(previous + bytes(leaf_hash)).digest()
            self.run("UPDATE records SET chain_hash = ? WHERE seq = ?", (previous, seq))

    def move(self, old: int, new: int) -> None:
        self.run("UPDATE records SET seq = ? WHERE seq = ?", (new, old))
        self.run("UPDATE bodies SET seq = ? WHERE seq = ?", (new, old))


def leaf(body: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + body).digest()


def renumbered(body: bytes, seq: int) -> bytes:
    _, _, rest = body.partition(b",")
    return b'{"seq":' + str(seq).encode() + b"," + rest


def edited(body: bytes, rng: random.Random) -> bytes:
    """A still-valid record with one value changed (the decision's outcome, or a digit of its time)."""
    if b'"favorable"' in body:
        return body.replace(b'"favorable"', b'"not_favorable"', 1)
    if b'"not_favorable"' in body:
        return body.replace(b'"not_favorable"', b'"favorable"', 1)
    return body.replace(b'"requested_by":"', b'"requested_by":"x', 1)


def tamper(raw: Raw, kind: str, rng: random.Random, genesis: bytes) -> tuple[int, int]:
    """Tamper once; returns (the first record affected, the log size before)."""
    size = raw.size()
    i = rng.randrange(1, size - 2)
    if kind == "byte-edit":
        body = bytearray(raw.body(i))
        at = rng.randrange(len(body))
        body[at] = (body[at] + rng.randrange(1, 256)) % 256
        raw.set_body(i, bytes(body), rehash=False)
    elif kind == "edit-rehash":
        raw.set_body(i, edited(raw.body(i), rng), rehash=True)
    elif kind == "edit-rechain":
        raw.set_body(i, edited(raw.body(i), rng), rehash=True)
        raw.rechain(i, genesis)
    elif kind == "delete":
        raw.run("DELETE FROM bodies WHERE seq = ?", (i,))
        raw.run("DELETE FROM records WHERE seq = ?", (i,))
    elif kind == "delete-rechain":
        raw.run("DELETE FROM bodies WHERE seq = ?", (i,))
        raw.run("DELETE FROM records WHERE seq = ?", (i,))
        for seq in range(i + 1, size):
            raw.move(seq, seq - 1)
            raw.set_body(seq - 1, renumbered(raw.body(seq - 1), seq - 1), rehash=True)
        raw.rechain(i, genesis)
    elif kind == "reorder":
        j = rng.choice([s for s in range(1, size) if s != i])
        raw.move(i, -1)
        raw.move(j, i)
        raw.move(-1, j)
        i = min(i, j)
    elif kind == "insert":
        forged = raw.body(i).replace(b'"decision_id":"', b'"decision_id":"f', 1)
        for seq in range(size - 1, i - 1, -1):
            raw.move(seq, seq + 1)
        chain = hashlib.sha256(raw.chain(i - 1, genesis) + leaf(forged)).digest()
        raw.run(
            "INSERT INTO records VALUES (?, 'decision', 'forged', '2021-01-01T00:00:00Z', NULL, NULL, NULL, ?, ?)",
            (i, leaf(forged), chain),
        )
        raw.run("INSERT INTO bodies VALUES (?, ?)", (i, forged))
    elif kind == "truncate":
        k = rng.randrange(1, min(6, size - 1))
        i = size - k
        raw.run("DELETE FROM bodies WHERE seq >= ?", (i,))
        raw.run("DELETE FROM records WHERE seq >= ?", (i,))
    else:
        raise ValueError(kind)
    return i, size


Tamperer = Callable[[Raw, str, random.Random, bytes], tuple[int, int]]
