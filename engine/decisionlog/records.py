"""What one log record is, as bytes: the exact text that is hashed, chained and signed.

A record body is compact JSON whose first key is always `seq` (its position in the log), so
`verify` can read the position without parsing the rest. Keys after it come in a fixed
order; the body is stored and hashed exactly as written, never re-serialised, so nothing
about JSON canonicalisation can make an intact record look edited.

Declared personal fields never enter these bytes: each value is replaced by a salted
commitment `{"$commitment": "sha256:<hex>"}`, and the value and its salt live in a separate,
erasable table. Erasing them leaves every hash intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "GENESIS_PREFIX",
    "Personal",
    "RecordBody",
    "body_seq",
    "chain_next",
    "commit_personal",
    "commitment",
    "compact",
    "genesis",
    "new_decision_id",
    "now_text",
    "parse_body",
    "trace_hash",
]

GENESIS_PREFIX = b"policy-decision-log\x00"
_SEQ = re.compile(rb'^\{"seq":(\d+),')


def compact(value: Any) -> bytes:
    """JSON without spaces, keys sorted, UTF-8: how values inside a record are written and committed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def now_text() -> str:
    """UTC time with microseconds, as records carry it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_decision_id() -> str:
    """A random, unguessable decision id (UUID4 text)."""
    return str(uuid.uuid4())


def genesis(log_id: str) -> bytes:
    """The chain value before the first record: bound to the log's own id."""
    return hashlib.sha256(GENESIS_PREFIX + log_id.encode("utf-8")).digest()


def chain_next(previous: bytes, leaf: bytes) -> bytes:
    """Chain hash of a record: SHA-256(previous chain hash || leaf hash)."""
    return hashlib.sha256(previous + leaf).digest()


def commitment(salt: bytes, value: Any) -> str:
    """A hiding, binding commitment to a personal value: sha256(salt || compact JSON of the value)."""
    return "sha256:" + hashlib.sha256(salt + compact(value)).hexdigest()


def trace_hash(trace_json: bytes, salt: bytes | None = None) -> str:
    """Hash of the decision's raw trace (engine.decisionlog.evaluation); salted when the case held personal values, so the
    hash cannot be used to guess them (the salt is erased with them)."""
    return "sha256:" + hashlib.sha256((salt or b"trace\x00") + trace_json).hexdigest()


@dataclass(frozen=True)
class Personal:
    """One personal value taken out of a case: its dotted path, salt and value."""

    path: str
    salt: bytes
    value: Any


TRACE_SALT_PATH = "$trace"


def commit_personal(case: Mapping[str, Any], paths: Sequence[str]) -> tuple[dict[str, Any], list[Personal]]:
    """The case with each present personal field replaced by its commitment, and the values removed.

    A trace salt is added (as path `$trace`) whenever at least one personal value was present.
    """
    stored: dict[str, Any] = json.loads(compact(case))  # a deep copy we may edit
    taken: list[Personal] = []
    for path in paths:
        parent: Any = stored
        *parents, leaf = path.split(".")
        for part in parents:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or leaf not in parent or parent[leaf] is None:
            continue
        salt = os.urandom(32)
        taken.append(Personal(path, salt, parent[leaf]))
        parent[leaf] = {"$commitment": commitment(salt, parent[leaf])}
    if taken:
        taken.append(Personal(TRACE_SALT_PATH, os.urandom(32), None))
    return stored, taken


def restore_personal(stored: Any, values: Mapping[str, Any]) -> Any:
    """The case as received: commitments replaced by the values still held (erased ones stay marked)."""
    case: Any = json.loads(compact(stored))
    for path, value in values.items():
        if path == TRACE_SALT_PATH:
            continue
        parent: Any = case
        *parents, leaf = path.split(".")
        for part in parents:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and isinstance(parent.get(leaf), dict):
            parent[leaf] = value
    return case


@dataclass
class RecordBody:
    """The fields of a record in their fixed order; `encode` gives the hashed bytes."""

    kind: str
    fields: dict[str, Any] = field(default_factory=dict)

    def encode(self, seq: int) -> bytes:
        """`{"seq":N,"kind":...,<fields in insertion order>}` as compact UTF-8 JSON."""
        ordered = {"seq": seq, "kind": self.kind, **self.fields}
        return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def body_seq(body: bytes) -> int | None:
    """The position a record body claims for itself, without parsing the JSON (None: malformed)."""
    match = _SEQ.match(body)
    return int(match.group(1)) if match else None


def parse_body(body: bytes) -> dict[str, Any] | None:
    """The body as a dict, or None when it is not a JSON object (a tampered byte can do that)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None
