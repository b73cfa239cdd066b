"""The decision log in SQLite: WAL journal, `synchronous=FULL`, append-only by triggers."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from engine.decisionlog.records import now_text
from engine.decisionlog.store import (
    Durability,
    LogError,
    LogUnavailable,
    Pending,
    Sealed,
    Store,
    StoredRecord,
    seal,
)

SCHEMA_VERSION = "1"
APPEND_ONLY = "decision log is append-only"

_TABLES = """
CREATE TABLE IF NOT EXISTS log_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records(
  seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, decision_id TEXT, recorded_at TEXT NOT NULL,
  policy TEXT, version TEXT, evaluated_at TEXT, leaf_hash BLOB NOT NULL, chain_hash BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS records_decision ON records(decision_id);
CREATE INDEX IF NOT EXISTS records_time ON records(recorded_at);
CREATE TABLE IF NOT EXISTS bodies(seq INTEGER PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS personal(
  seq INTEGER NOT NULL, path TEXT NOT NULL, salt BLOB NOT NULL, value TEXT, PRIMARY KEY(seq, path));
CREATE TABLE IF NOT EXISTS erasures(
  seq INTEGER NOT NULL, path TEXT NOT NULL, event_seq INTEGER NOT NULL, PRIMARY KEY(seq, path));
CREATE TABLE IF NOT EXISTS pruned(seq INTEGER PRIMARY KEY, event_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS holds(
  event_seq INTEGER PRIMARY KEY, decision_id TEXT NOT NULL,
  action TEXT NOT NULL CHECK (action IN ('hold', 'release')), reason TEXT NOT NULL);
"""

_ACTIVE_HOLDS = """
SELECT h.decision_id FROM holds h WHERE h.action = 'hold' AND NOT EXISTS (
  SELECT 1 FROM holds l WHERE l.decision_id = h.decision_id AND l.event_seq > h.event_seq
  AND l.action = 'release')
"""


def _refuse(table: str, action: str, when: str = "") -> str:
    return (
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{action.lower()} BEFORE {action} ON {table} {when}"
        f" BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}: {action} on {table} refused'); END;"
    )


_TRIGGERS = "\n".join(
    [
        *(
            _refuse(t, "UPDATE")
            for t in ("log_meta", "records", "bodies", "personal", "erasures", "pruned", "holds")
        ),
        *(_refuse(t, "DELETE") for t in ("log_meta", "records", "erasures", "pruned", "holds")),
        _refuse("bodies", "DELETE", "WHEN NOT EXISTS (SELECT 1 FROM pruned p WHERE p.seq = OLD.seq)"),
        _refuse(
            "personal",
            "DELETE",
            "WHEN NOT EXISTS (SELECT 1 FROM erasures e WHERE e.seq = OLD.seq AND e.path = OLD.path)"
            " AND NOT EXISTS (SELECT 1 FROM pruned p WHERE p.seq = OLD.seq)",
        ),
        # A held decision's body cannot be pruned, and none younger than five years, whatever the caller says.
        "CREATE TRIGGER IF NOT EXISTS bodies_retention BEFORE DELETE ON bodies WHEN EXISTS ("
        " SELECT 1 FROM records r WHERE r.seq = OLD.seq AND (r.decision_id IN (" + _ACTIVE_HOLDS + ")"
        " OR r.recorded_at > strftime('%Y-%m-%dT%H:%M:%f', 'now', '-5 years')))"
        " BEGIN SELECT RAISE(ABORT, 'decision log retention: record is held or younger than five years'); END;",
    ]
)


class SqliteStore(Store):
    """A log in one SQLite file (plus its -wal and -shm files while open)."""

    def __init__(self, path: str, *, create: bool = False, synchronous: str = "FULL"):
        self.url = path
        self.path = Path(path)
        exists = self.path.exists()
        if not exists and not create:
            raise LogError(f"no decision log at `{path}`", "check the path; `policy serve --log` creates one")
        if exists and self.path.is_dir():
            raise LogError(f"`{path}` is a folder, not a decision log", "give the log's file path")
        try:
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA synchronous={synchronous}")
            self.db.execute("PRAGMA busy_timeout=30000")
            if create:
                self._create()
            self.log_id = self._meta_value("log_id")
        except sqlite3.DatabaseError as exc:
            raise LogError(
                f"`{path}` is not a decision log: {exc}", "give a file made by `policy serve`"
            ) from None

    # -- schema -------------------------------------------------------------
    def _create(self) -> None:
        """Tables and triggers (idempotent), then the log's id, once."""
        self.db.executescript(_TABLES + _TRIGGERS)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            found = self.db.execute("SELECT value FROM log_meta WHERE key = 'log_id'").fetchone()
            if found is None:
                rows = [("log_id", str(uuid.uuid4())), ("schema", SCHEMA_VERSION), ("created_at", now_text())]
                self.db.executemany("INSERT INTO log_meta VALUES (?, ?)", rows)
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    def _meta_value(self, key: str) -> str:
        try:
            row = self.db.execute("SELECT value FROM log_meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError:
            row = None
        if row is None:
            raise LogError(
                f"`{self.url}` is not a decision log (no {key})", "give a file made by `policy serve`"
            )
        return str(row[0])

    def meta(self) -> dict[str, str]:
        return {k: v for k, v in self.db.execute("SELECT key, value FROM log_meta")}

    def durability(self) -> Durability:
        journal = str(self.db.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        sync = int(self.db.execute("PRAGMA synchronous").fetchone()[0])
        names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
        settings = {"journal_mode": journal, "synchronous": names.get(sync, str(sync))}
        problems = []
        if journal != "wal":
            problems.append(f"journal_mode is {journal}, not wal")
        if sync < 2:
            problems.append(
                f"synchronous is {settings['synchronous']}: a power cut can lose acknowledged commits"
            )
        fs = _filesystem(self.path)
        settings["filesystem"] = fs
        if fs in ("tmpfs", "ramfs"):
            problems.append(f"the log is on {fs}: it does not survive a reboot")
        return Durability(settings, problems)

    # -- writing ------------------------------------------------------------
    def _transaction(
        self, pending: Sequence[Pending], extra: Callable[[list[Sealed]], None] | None = None
    ) -> list[Sealed]:
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT seq, chain_hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
            next_seq, previous = (0, self.genesis()) if row is None else (row[0] + 1, bytes(row[1]))
            sealed = seal(pending, next_seq, previous)
            db.executemany(
                "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        s.seq,
                        s.pending.body.kind,
                        s.pending.decision_id,
                        s.pending.recorded_at,
                        s.pending.policy,
                        s.pending.version,
                        s.pending.evaluated_at,
                        s.leaf,
                        s.chain,
                    )
                    for s in sealed
                ],
            )
            db.executemany("INSERT INTO bodies VALUES (?, ?)", [(s.seq, s.body) for s in sealed])
            personal = [
                (s.seq, p.path, p.salt, json.dumps(p.value, ensure_ascii=False))
                for s in sealed
                for p in s.pending.personal
            ]
            if personal:
                db.executemany("INSERT INTO personal VALUES (?, ?, ?, ?)", personal)
            if extra is not None:
                extra(sealed)
            db.execute("COMMIT")
            return sealed
        except sqlite3.Error as exc:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise LogUnavailable(f"the decision log could not commit: {exc}") from None

    def append(self, pending: Sequence[Pending]) -> list[Sealed]:
        return self._transaction(pending)

    def apply_erasure(self, event: Pending, seq: int, paths: Sequence[str]) -> Sealed:
        def erase(sealed: list[Sealed]) -> None:
            event_seq = sealed[0].seq
            self.db.executemany("INSERT INTO erasures VALUES (?, ?, ?)", [(seq, p, event_seq) for p in paths])
            self.db.executemany("DELETE FROM personal WHERE seq = ? AND path = ?", [(seq, p) for p in paths])

        return self._transaction([event], erase)[0]

    def apply_prune(self, event: Pending, seqs: Sequence[int]) -> Sealed:
        def prune(sealed: list[Sealed]) -> None:
            event_seq = sealed[0].seq
            self.db.executemany("INSERT INTO pruned VALUES (?, ?)", [(s, event_seq) for s in seqs])
            self.db.executemany("DELETE FROM personal WHERE seq = ?", [(s,) for s in seqs])
            self.db.executemany("DELETE FROM bodies WHERE seq = ?", [(s,) for s in seqs])

        return self._transaction([event], prune)[0]

    def apply_hold(self, event: Pending, decision_id: str, action: str, reason: str) -> Sealed:
        def hold(sealed: list[Sealed]) -> None:
            self.db.execute(
                "INSERT INTO holds VALUES (?, ?, ?, ?)", (sealed[0].seq, decision_id, action, reason)
            )

        return self._transaction([event], hold)[0]

    # -- reading ------------------------------------------------------------
    def size(self) -> int:
        row = self.db.execute("SELECT MAX(seq) FROM records").fetchone()
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    def records(self, start: int = 0, stop: int | None = None) -> Iterator[StoredRecord]:
        cursor = self.db.execute(
            "SELECT r.seq, r.kind, r.decision_id, r.recorded_at, r.leaf_hash, r.chain_hash, b.body"
            " FROM records r LEFT JOIN bodies b ON b.seq = r.seq WHERE r.seq >= ? AND r.seq < ? ORDER BY r.seq",
            (start, stop if stop is not None else 2**62),
        )
        while rows := cursor.fetchmany(2000):
            for seq, kind, did, at, leaf, chain, body in rows:
                yield StoredRecord(
                    seq, kind, did, at, bytes(leaf), bytes(chain), None if body is None else bytes(body)
                )

    def hashes(self, start: int) -> Iterator[tuple[int, bytes, bytes]]:
        cursor = self.db.execute(
            "SELECT seq, leaf_hash, chain_hash FROM records WHERE seq >= ? ORDER BY seq", (start,)
        )
        while rows := cursor.fetchmany(5000):
            for seq, leaf, chain in rows:
                yield seq, bytes(leaf), bytes(chain)

    def leaves(self, start: int, stop: int) -> list[bytes]:
        cursor = self.db.execute(
            "SELECT leaf_hash FROM records WHERE seq >= ? AND seq < ? ORDER BY seq", (start, stop)
        )
        return [bytes(r[0]) for r in cursor]

    def find(self, decision_id: str) -> int | None:
        row = self.db.execute(
            "SELECT seq FROM records WHERE decision_id = ? AND kind = 'decision' ORDER BY seq LIMIT 1",
            (decision_id,),
        ).fetchone()
        return None if row is None else int(row[0])

    def body(self, seq: int) -> bytes | None:
        row = self.db.execute("SELECT body FROM bodies WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else bytes(row[0])

    def personal(self, seqs: Sequence[int]) -> dict[int, dict[str, tuple[bytes, Any]]]:
        found: dict[int, dict[str, tuple[bytes, Any]]] = {}
        for chunk in range(0, len(seqs), 500):
            part = list(seqs[chunk : chunk + 500])
            marks = ",".join("?" * len(part))
            for seq, path, salt, value in self.db.execute(
                f"SELECT seq, path, salt, value FROM personal WHERE seq IN ({marks})", part
            ):
                found.setdefault(seq, {})[path] = (
                    bytes(salt),
                    json.loads(value) if value is not None else None,
                )
        return found

    def erased(self) -> set[int]:
        return {r[0] for r in self.db.execute("SELECT DISTINCT seq FROM erasures")}

    def pruned(self) -> set[int]:
        return {r[0] for r in self.db.execute("SELECT seq FROM pruned")}

    def held(self) -> dict[str, str]:
        rows = self.db.execute(
            "SELECT h.decision_id, h.reason FROM holds h WHERE h.decision_id IN (" + _ACTIVE_HOLDS + ")"
            " AND h.action = 'hold' ORDER BY h.event_seq"
        )
        return {did: reason for did, reason in rows}

    def close(self) -> None:
        self.db.close()


def _filesystem(path: Path) -> str:
    """The type of the filesystem holding `path` (from /proc/mounts; `unknown` elsewhere)."""
    try:
        target = os.path.realpath(path if path.exists() else path.parent)
        best, kind = "", "unknown"
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                parts = line.split()
                inside = len(parts) >= 3 and (
                    target == parts[1] or target.startswith(parts[1].rstrip("/") + "/")
                )
                if inside and len(parts[1]) > len(best):
                    best, kind = parts[1], parts[2]
        return kind
    except OSError:
        return "unknown"
