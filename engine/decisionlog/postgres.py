"""The decision log in PostgreSQL (psycopg 3): one schema `decision_log`, append-only by triggers.

Several service processes may write to one log: each commit takes a transaction-scoped
advisory lock, reads the head, seals its batch and commits, so the chain stays one line.
UPDATE, DELETE and TRUNCATE are refused by triggers for everyone, the table owner included,
and revoked from PUBLIC; docs/service.md shows how to give the service a role that may only
SELECT and INSERT.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from engine.decisionlog.records import now_text
from engine.decisionlog.sqlite import APPEND_ONLY, SCHEMA_VERSION
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

LOCK_KEY = 0x706F6C6963796C67  # "policylg": the advisory lock every writer takes per commit

_SCHEMA = f"""
CREATE SCHEMA IF NOT EXISTS decision_log;
SET search_path TO decision_log;
CREATE TABLE IF NOT EXISTS log_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records(
  seq BIGINT PRIMARY KEY, kind TEXT NOT NULL, decision_id TEXT, recorded_at TEXT NOT NULL,
  policy TEXT, version TEXT, evaluated_at TEXT, leaf_hash BYTEA NOT NULL, chain_hash BYTEA NOT NULL);
CREATE INDEX IF NOT EXISTS records_decision ON records(decision_id);
CREATE INDEX IF NOT EXISTS records_time ON records(recorded_at);
CREATE TABLE IF NOT EXISTS bodies(seq BIGINT PRIMARY KEY, body BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS personal(
  seq BIGINT NOT NULL, path TEXT NOT NULL, salt BYTEA NOT NULL, value TEXT, PRIMARY KEY(seq, path));
CREATE TABLE IF NOT EXISTS erasures(
  seq BIGINT NOT NULL, path TEXT NOT NULL, event_seq BIGINT NOT NULL, PRIMARY KEY(seq, path));
CREATE TABLE IF NOT EXISTS pruned(seq BIGINT PRIMARY KEY, event_seq BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS holds(
  event_seq BIGINT PRIMARY KEY, decision_id TEXT NOT NULL,
  action TEXT NOT NULL CHECK (action IN ('hold', 'release')), reason TEXT NOT NULL);

CREATE OR REPLACE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '{APPEND_ONLY}: % on % refused', TG_OP, TG_TABLE_NAME; END $$;

CREATE OR REPLACE FUNCTION active_hold(did TEXT) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT COALESCE((SELECT action = 'hold' FROM decision_log.holds WHERE decision_id = did
                   ORDER BY event_seq DESC LIMIT 1), false) $$;

CREATE OR REPLACE FUNCTION body_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM decision_log.pruned p WHERE p.seq = OLD.seq) THEN
    RAISE EXCEPTION '{APPEND_ONLY}: DELETE on bodies refused (not pruned)';
  END IF;
  IF EXISTS (SELECT 1 FROM decision_log.records r WHERE r.seq = OLD.seq AND (decision_log.active_hold(r.decision_id)
       OR r.recorded_at > to_char((now() AT TIME ZONE 'UTC') - interval '5 years', 'YYYY-MM-DD"T"HH24:MI:SS'))) THEN
    RAISE EXCEPTION 'decision log retention: record % is held or younger than five years', OLD.seq;
  END IF;
  RETURN OLD;
END $$;

CREATE OR REPLACE FUNCTION personal_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM decision_log.erasures e WHERE e.seq = OLD.seq AND e.path = OLD.path)
     AND NOT EXISTS (SELECT 1 FROM decision_log.pruned p WHERE p.seq = OLD.seq) THEN
    RAISE EXCEPTION '{APPEND_ONLY}: DELETE on personal refused (not erased)';
  END IF;
  RETURN OLD;
END $$;
"""


def _triggers() -> str:
    statements = []
    for table in ("log_meta", "records", "bodies", "personal", "erasures", "pruned", "holds"):
        statements.append(
            f"CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION refuse();"
        )
        events = "UPDATE" if table in ("bodies", "personal") else "UPDATE OR DELETE"
        statements.append(
            f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE {events} ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION refuse();"
        )
        statements.append(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM PUBLIC;")
    statements.append(
        "CREATE OR REPLACE TRIGGER bodies_delete BEFORE DELETE ON bodies FOR EACH ROW EXECUTE FUNCTION body_delete();"
    )
    statements.append(
        "CREATE OR REPLACE TRIGGER personal_delete BEFORE DELETE ON personal"
        " FOR EACH ROW EXECUTE FUNCTION personal_delete();"
    )
    return "\n".join(statements)


class PostgresStore(Store):
    """A log in a PostgreSQL database (schema `decision_log`)."""

    def __init__(self, url: str, *, create: bool = False, connection: Any = None):
        """`connection`: an open psycopg connection to use for everything, inside whatever
        transaction it is in (tests read a tampered log that way, then roll back)."""
        try:
            import psycopg
        except ImportError:
            raise LogError(
                "a PostgreSQL log needs psycopg", "pip install 'policy-engine[postgres]'"
            ) from None
        self._psycopg = psycopg
        self.url = url
        self._conn: Any = connection
        self._external = connection is not None
        try:
            conn = self._connection()
            if create:
                with conn.transaction():
                    conn.execute(f"SELECT pg_advisory_xact_lock({LOCK_KEY})")
                    conn.execute(_SCHEMA + _triggers())
                    found = conn.execute("SELECT value FROM log_meta WHERE key = 'log_id'").fetchone()
                    if found is None:
                        rows = [
                            ("log_id", str(uuid.uuid4())),
                            ("schema", SCHEMA_VERSION),
                            ("created_at", now_text()),
                        ]
                        with conn.cursor() as cursor:
                            cursor.executemany("INSERT INTO log_meta VALUES (%s, %s)", rows)
            conn.execute("SET search_path TO decision_log")
            row = conn.execute("SELECT value FROM log_meta WHERE key = 'log_id'").fetchone()
        except psycopg.errors.UndefinedTable:
            raise LogError(
                f"`{_safe(url)}` holds no decision log", "`policy serve --log URL` creates one"
            ) from None
        except psycopg.Error as exc:
            raise LogError(f"cannot open the log at `{_safe(url)}`: {str(exc).strip()}") from None
        if row is None:
            raise LogError(f"`{_safe(url)}` holds no decision log", "`policy serve --log URL` creates one")
        self.log_id = str(row[0])

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._conn = self._psycopg.connect(self.url, autocommit=True)
            self._conn.execute("SET search_path TO decision_log")
        return self._conn

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return list(self._connection().execute(sql, params).fetchall())
        except self._psycopg.Error as exc:
            self._drop_if_broken()
            raise LogError(f"cannot read the log: {str(exc).strip()}") from None

    def _drop_if_broken(self) -> None:
        if self._conn is not None and (self._conn.closed or self._conn.broken):
            self._conn = None

    def meta(self) -> dict[str, str]:
        return {k: v for k, v in self._query("SELECT key, value FROM log_meta")}

    def durability(self) -> Durability:
        settings = {
            name: str(self._query(f"SHOW {name}")[0][0])
            for name in ("fsync", "synchronous_commit", "full_page_writes")
        }
        problems = []
        if settings["fsync"] != "on":
            problems.append("fsync is off: a crash of the server can lose or corrupt committed data")
        if settings["synchronous_commit"] == "off":
            problems.append("synchronous_commit is off: the newest commits can be lost on a server crash")
        if settings["full_page_writes"] != "on":
            problems.append("full_page_writes is off: torn pages after a power cut")
        return Durability(settings, problems)

    def _transaction(
        self, pending: Sequence[Pending], extra: Callable[[Any, list[Sealed]], None] | None = None
    ) -> list[Sealed]:
        psycopg = self._psycopg
        try:
            conn = self._connection()
            with conn.transaction():
                conn.execute(f"SELECT pg_advisory_xact_lock({LOCK_KEY})")
                row = conn.execute("SELECT seq, chain_hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
                next_seq, previous = (0, self.genesis()) if row is None else (row[0] + 1, bytes(row[1]))
                sealed = seal(pending, next_seq, previous)
                with conn.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO records VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
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
                    cursor.executemany(
                        "INSERT INTO bodies VALUES (%s, %s)", [(s.seq, s.body) for s in sealed]
                    )
                    personal = [
                        (s.seq, p.path, p.salt, json.dumps(p.value, ensure_ascii=False))
                        for s in sealed
                        for p in s.pending.personal
                    ]
                    if personal:
                        cursor.executemany("INSERT INTO personal VALUES (%s, %s, %s, %s)", personal)
                    if extra is not None:
                        extra(cursor, sealed)
            return sealed
        except psycopg.Error as exc:
            self._drop_if_broken()
            raise LogUnavailable(f"the decision log could not commit: {str(exc).strip()}") from None

    def append(self, pending: Sequence[Pending]) -> list[Sealed]:
        return self._transaction(pending)

    def apply_erasure(self, event: Pending, seq: int, paths: Sequence[str]) -> Sealed:
        def erase(cursor: Any, sealed: list[Sealed]) -> None:
            cursor.executemany(
                "INSERT INTO erasures VALUES (%s, %s, %s)", [(seq, p, sealed[0].seq) for p in paths]
            )
            cursor.executemany("DELETE FROM personal WHERE seq = %s AND path = %s", [(seq, p) for p in paths])

        return self._transaction([event], erase)[0]

    def apply_prune(self, event: Pending, seqs: Sequence[int]) -> Sealed:
        def prune(cursor: Any, sealed: list[Sealed]) -> None:
            cursor.executemany("INSERT INTO pruned VALUES (%s, %s)", [(s, sealed[0].seq) for s in seqs])
            cursor.executemany("DELETE FROM personal WHERE seq = %s", [(s,) for s in seqs])
            cursor.executemany("DELETE FROM bodies WHERE seq = %s", [(s,) for s in seqs])

        return self._transaction([event], prune)[0]

    def apply_hold(self, event: Pending, decision_id: str, action: str, reason: str) -> Sealed:
        def hold(cursor: Any, sealed: list[Sealed]) -> None:
            cursor.execute(
                "INSERT INTO holds VALUES (%s, %s, %s, %s)", (sealed[0].seq, decision_id, action, reason)
            )

        return self._transaction([event], hold)[0]

    def size(self) -> int:
        row = self._query("SELECT MAX(seq) FROM records")
        return 0 if not row or row[0][0] is None else int(row[0][0]) + 1

    def records(self, start: int = 0, stop: int | None = None) -> Iterator[StoredRecord]:
        """Streamed with a server-side cursor, so a million records do not sit in memory."""
        if self._external:
            yield from self._scan(self._conn, start, stop)
            return
        conn = self._psycopg.connect(self.url)  # its own connection: a named cursor needs a transaction
        try:
            yield from self._scan(conn, start, stop)
        finally:
            conn.close()

    def _scan(self, conn: Any, start: int, stop: int | None) -> Iterator[StoredRecord]:
        conn.execute("SET search_path TO decision_log")
        with conn.cursor(name="records_scan") as cursor:
            cursor.itersize = 5000
            cursor.execute(
                "SELECT r.seq, r.kind, r.decision_id, r.recorded_at, r.leaf_hash, r.chain_hash, b.body"
                " FROM records r LEFT JOIN bodies b ON b.seq = r.seq WHERE r.seq >= %s AND r.seq < %s"
                " ORDER BY r.seq",
                (start, stop if stop is not None else 2**62),
            )
            for seq, kind, did, at, leaf, chain, body in cursor:
                yield StoredRecord(
                    seq, kind, did, at, bytes(leaf), bytes(chain), None if body is None else bytes(body)
                )

    def hashes(self, start: int) -> Iterator[tuple[int, bytes, bytes]]:
        rows = self._query(
            "SELECT seq, leaf_hash, chain_hash FROM records WHERE seq >= %s ORDER BY seq", (start,)
        )
        for seq, leaf, chain in rows:
            yield seq, bytes(leaf), bytes(chain)

    def leaves(self, start: int, stop: int) -> list[bytes]:
        rows = self._query(
            "SELECT leaf_hash FROM records WHERE seq >= %s AND seq < %s ORDER BY seq", (start, stop)
        )
        return [bytes(r[0]) for r in rows]

    def find(self, decision_id: str) -> int | None:
        rows = self._query(
            "SELECT seq FROM records WHERE decision_id = %s AND kind = 'decision' ORDER BY seq LIMIT 1",
            (decision_id,),
        )
        return int(rows[0][0]) if rows else None

    def body(self, seq: int) -> bytes | None:
        rows = self._query("SELECT body FROM bodies WHERE seq = %s", (seq,))
        return bytes(rows[0][0]) if rows else None

    def personal(self, seqs: Sequence[int]) -> dict[int, dict[str, tuple[bytes, Any]]]:
        found: dict[int, dict[str, tuple[bytes, Any]]] = {}
        if not seqs:
            return found
        for seq, path, salt, value in self._query(
            "SELECT seq, path, salt, value FROM personal WHERE seq = ANY(%s)", (list(seqs),)
        ):
            found.setdefault(seq, {})[path] = (bytes(salt), json.loads(value) if value is not None else None)
        return found

    def erased(self) -> set[int]:
        return {r[0] for r in self._query("SELECT DISTINCT seq FROM erasures")}

    def pruned(self) -> set[int]:
        return {r[0] for r in self._query("SELECT seq FROM pruned")}

    def held(self) -> dict[str, str]:
        rows = self._query(
            "SELECT decision_id, reason FROM holds h WHERE action = 'hold' AND active_hold(decision_id) ORDER BY event_seq"
        )
        return {did: reason for did, reason in rows}

    def close(self) -> None:
        if self._conn is not None and not self._external:
            self._conn.close()
            self._conn = None


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}@{host}"
    return url
