"""Decision records and the operations auditors and operators run on a log: erase, prune, hold, export, prove.

Every operation that changes what the log holds (erasing a personal value, pruning bodies
past retention, placing or lifting a hold) first appends a signed event saying who did it,
when and why, in the same transaction (15 CFR 762.5(b)(4) asks a record system to keep
exactly that), so the chain shows every change and `verify` keeps passing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from engine.decisionlog.backends import is_postgres
from engine.decisionlog.checkpoints import LATEST_FILE, Checkpoint, Signer
from engine.decisionlog.merkle import inclusion_path
from engine.decisionlog.records import (
    TRACE_SALT_PATH,
    RecordBody,
    commit_personal,
    compact,
    new_decision_id,
    now_text,
    parse_body,
    restore_personal,
    trace_hash,
)
from engine.decisionlog.store import LogError, Pending, Sealed, Store

__all__ = [
    "RETENTION_YEARS",
    "decision_record",
    "default_checkpoints",
    "default_signing_key",
    "erase",
    "export_records",
    "exported_record",
    "hold",
    "inclusion_proof",
    "prune",
    "reference_data_hash",
    "signed_event",
]

#: 15 CFR 762.6 and EU 2021/821 Art. 27(3): five years.
RETENTION_YEARS = 5


def default_checkpoints(url: str) -> Path | None:
    """`<log>.checkpoints/` beside a SQLite log; a PostgreSQL log needs an explicit folder."""
    return None if is_postgres(url) else Path(url + ".checkpoints")


def default_signing_key(url: str) -> Path | None:
    """`<log>.signing-key.pem` beside a SQLite log (move it away in production: docs/service.md)."""
    return None if is_postgres(url) else Path(url + ".signing-key.pem")


def reference_data_hash(sources: Mapping[str, str]) -> str:
    """sha256 over the reference-data files (tables) a version was built from, not its rule text."""
    digest = hashlib.sha256()
    for name in sorted(sources):
        if not name.endswith((".policy", ".vocab")):
            digest.update(name.rsplit("/", 1)[-1].encode("utf-8") + b"\0")
            digest.update(sources[name].encode("utf-8") + b"\0")
    return digest.hexdigest()


def decision_record(
    *,
    policy: str,
    version: str,
    content_hash: str,
    data_hash: str,
    evaluated_at: date,
    case: Mapping[str, Any],
    output: dict[str, Any],
    trace_json: bytes,
    personal_paths: Sequence[str] = (),
    requested_by: str = "",
    decision_id: str | None = None,
    decided_at: str | None = None,
) -> Pending:
    """The pending record of one decision: input with personal values committed, output, trace hash."""
    stored_case, personal = commit_personal(case, personal_paths)
    salt = next((p.salt for p in personal if p.path == TRACE_SALT_PATH), None)
    did = decision_id or new_decision_id()
    when = decided_at or now_text()
    fields = {
        "decision_id": did,
        "decided_at": when,
        "policy": policy,
        "version": version,
        "content_hash": content_hash,
        "data_hash": data_hash,
        "evaluated_at": evaluated_at.isoformat(),
        "requested_by": requested_by,
        "input": stored_case,
        "output": output,
        "trace_hash": trace_hash(trace_json, salt),
    }
    return Pending(
        RecordBody("decision", fields),
        decision_id=did,
        recorded_at=when,
        policy=policy,
        version=version,
        evaluated_at=evaluated_at.isoformat(),
        personal=personal,
    )


def signed_event(kind: str, fields: dict[str, Any], signer: Signer) -> Pending:
    """An event record whose fields are signed with the log's key (verify checks the signature)."""
    when = now_text()
    signed = {"kind": kind, "at": when, **fields, "key_id": signer.key_id}
    signature = signer.sign(compact(signed))
    body = {k: v for k, v in signed.items() if k != "kind"}
    body["signature"] = signature
    return Pending(RecordBody(kind, body), decision_id=fields.get("decision_id"), recorded_at=when)


def _decision_seq(store: Store, decision_id: str) -> int:
    seq = store.find(decision_id)
    if seq is None:
        raise LogError(f"no decision `{decision_id}` in the log", "`policy log show LOG` lists decision ids")
    return seq


def erase(
    store: Store, signer: Signer, decision_id: str, *, fields: Sequence[str] = (), by: str, reason: str
) -> tuple[Sealed, list[str]]:
    """Remove personal values (all of the decision's, or the named fields) and their salts."""
    seq = _decision_seq(store, decision_id)
    held = store.personal([seq]).get(seq, {})
    if not held:
        raise LogError(
            f"decision `{decision_id}` holds no personal values (none declared, or already erased)"
        )
    paths = list(fields) or sorted(held)
    unknown = [p for p in paths if p not in held]
    if unknown:
        raise LogError(
            f"decision `{decision_id}` holds no personal value at {', '.join(unknown)}",
            f"it holds: {', '.join(sorted(p for p in held if p != TRACE_SALT_PATH))}",
        )
    if set(held) - set(paths) == {TRACE_SALT_PATH}:
        paths.append(TRACE_SALT_PATH)  # the last value gone: the trace salt goes with it
    event = signed_event(
        "erasure",
        {"decision_id": decision_id, "record": seq, "fields": sorted(paths), "by": by, "reason": reason},
        signer,
    )
    return store.apply_erasure(event, seq, paths), paths


def retention_cutoff(today: date) -> date:
    """The newest decision date that may be pruned today: five years back."""
    try:
        return today.replace(year=today.year - RETENTION_YEARS)
    except ValueError:  # 29 February
        return today.replace(year=today.year - RETENTION_YEARS, day=28)


def prune(
    store: Store, signer: Signer, before: date, *, by: str, reason: str, today: date | None = None
) -> tuple[Sealed | None, int, dict[str, str]]:
    """Delete the bodies of decisions made before `before`; refuse if that is under five years.

    Returns the prune event (None when nothing was due), how many bodies were deleted, and
    the held decisions that were kept.
    """
    today = today or datetime.now(UTC).date()
    cutoff = retention_cutoff(today)
    if before > cutoff:
        raise LogError(
            f"--before {before} would delete decisions younger than {RETENTION_YEARS} years",
            f"15 CFR 762.6 keeps records five years: the latest date allowed today is {cutoff}",
        )
    held = store.held()
    pruned = store.pruned()
    limit = before.isoformat()
    due = [
        r.seq
        for r in store.records()
        if r.kind == "decision"
        and r.recorded_at < limit
        and r.seq not in pruned
        and r.decision_id not in held
    ]
    kept = {d: reason for d, reason in held.items()}
    if not due:
        return None, 0, kept
    event = signed_event(
        "prune",
        {"before": limit, "records": len(due), "first": due[0], "last": due[-1], "by": by, "reason": reason},
        signer,
    )
    return store.apply_prune(event, due), len(due), kept


def hold(
    store: Store, signer: Signer, decision_id: str, *, reason: str, by: str, release: bool = False
) -> Sealed:
    """Place (or lift) a hold: a held decision is never pruned (an agency asked for it)."""
    seq = _decision_seq(store, decision_id)
    action = "release" if release else "hold"
    if release and decision_id not in store.held():
        raise LogError(f"decision `{decision_id}` is not on hold")
    event = signed_event(
        action, {"decision_id": decision_id, "record": seq, "by": by, "reason": reason}, signer
    )
    return store.apply_hold(event, decision_id, action, reason)


def export_records(
    store: Store, *, since: str | None = None, until: str | None = None, kinds: Sequence[str] = ()
) -> Iterator[dict[str, Any]]:
    """Each record as an auditor reads it: personal values restored where still held, hashes in hex.

    `since`/`until` compare with the record's time (ISO text, so a date works).
    """
    batch: list[Any] = []

    def flush() -> Iterator[dict[str, Any]]:
        values = store.personal([r.seq for r in batch if r.kind == "decision" and r.body is not None])
        for record in batch:
            yield _exported(record, values.get(record.seq, {}))
        batch.clear()

    for record in store.records():
        if since and record.recorded_at < since:
            continue
        if until and record.recorded_at >= until:
            continue
        if kinds and record.kind not in kinds:
            continue
        batch.append(record)
        if len(batch) >= 1000:
            yield from flush()
    yield from flush()


def exported_record(store: Store, decision_id: str) -> dict[str, Any]:
    """One decision's record as `export` writes it."""
    seq = _decision_seq(store, decision_id)
    (record,) = store.records(seq, seq + 1)
    return _exported(record, store.personal([seq]).get(seq, {}))


def _exported(record: Any, personal: dict[str, tuple[bytes, Any]]) -> dict[str, Any]:
    head = {
        "seq": record.seq,
        "kind": record.kind,
        "decision_id": record.decision_id,
        "time": record.recorded_at,
    }
    hashes = {"leaf_hash": record.leaf.hex(), "chain_hash": record.chain.hex()}
    if record.body is None:
        return {**head, "pruned": True, **hashes}
    body = parse_body(record.body)
    if body is None:
        return {**head, "unreadable": True, **hashes}
    out = {**head, **{k: v for k, v in body.items() if k not in ("seq", "kind")}}
    if record.kind == "decision":
        out["input"] = _mark_erased(
            restore_personal(body.get("input", {}), {p: v for p, (_, v) in personal.items()})
        )
        out["personal_erased"] = _has_commitments(out["input"])
    return {**out, **hashes}


def _mark_erased(value: Any) -> Any:
    """A commitment still in the input means its value was erased: say so plainly."""
    if isinstance(value, dict):
        if set(value) == {"$commitment"}:
            return {"$erased": value["$commitment"]}
        return {k: _mark_erased(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mark_erased(v) for v in value]
    return value


def _has_commitments(value: Any) -> bool:
    if isinstance(value, dict):
        return "$erased" in value or any(_has_commitments(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_commitments(v) for v in value)
    return False


def latest_checkpoint(folder: Path) -> Checkpoint:
    """The newest checkpoint of a folder (`latest.json`)."""
    path = folder / LATEST_FILE
    try:
        return Checkpoint.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise LogError(
            f"cannot read the checkpoint `{path}`: {exc}", "give the folder the service exports to"
        ) from None


def inclusion_proof(store: Store, decision_id: str, checkpoint: Checkpoint) -> dict[str, Any]:
    """Everything an outsider needs to check one record is in the signed log: the record's bytes,
    its position, the audit path to the checkpoint's root, and the signed checkpoint itself."""
    seq = _decision_seq(store, decision_id)
    if seq >= checkpoint.size:
        raise LogError(
            f"decision `{decision_id}` (#{seq}) is newer than the checkpoint ({checkpoint.size} records)",
            "wait for the next checkpoint (at most a second) and ask again",
        )
    body = store.body(seq)
    if body is None:
        raise LogError(f"decision `{decision_id}` was pruned: only its hash remains")
    leaves = store.leaves(0, checkpoint.size)
    return {
        "proof_version": 1,
        "decision_id": decision_id,
        "leaf_index": seq,
        "tree_size": checkpoint.size,
        "record": body.decode("utf-8"),
        "audit_path": [h.hex() for h in inclusion_path(leaves, seq)],
        "checkpoint": checkpoint.to_json(),
    }
