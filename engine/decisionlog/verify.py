"""`policy log verify`: recompute every hash, walk the chain, and hold the log to its signed checkpoints.

What each kind of tampering looks like to the walk (the tests do each one to a real log):

- `edited`: a record's bytes no longer match its stored leaf hash.
- `edited-rehashed`: bytes and leaf hash agree but the chain hash does not follow from the previous record.
- `deleted`: a position is missing (a gap), or a record's bytes are missing without a prune event,
  or a record claims a later position than the one it sits at.
- `inserted`: a record claims an earlier position than the one it sits at (one was slipped in before it).
- `reordered`: a record claims the position of another record that in turn claims its position.
- `rewritten`: everything is internally consistent but a signed checkpoint disagrees: records were
  edited, deleted or inserted and every hash after them recomputed (only checkpoints can show it).
- `truncated`: the log holds fewer records than a signed checkpoint says it held.
- `forged-checkpoint`, `forged-event`: a signature that the public key does not verify.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.decisionlog.checkpoints import (
    PUBLIC_KEY_FILE,
    Checkpoint,
    load_public_key,
    public_key_id,
    read_checkpoints,
    verify_signature,
)
from engine.decisionlog.merkle import Frontier, leaf_hash
from engine.decisionlog.records import body_seq, chain_next, compact
from engine.decisionlog.store import Store

__all__ = ["Problem", "VerifyReport", "verify_log"]

CHECKPOINT_KINDS = frozenset({"rewritten", "truncated", "forged-checkpoint"})
SIGNED_EVENTS = frozenset({"erasure", "prune", "hold", "release"})


@dataclass(frozen=True)
class Problem:
    """One finding: the first record it makes suspect, the kind of tampering, and what was seen."""

    seq: int
    kind: str
    message: str
    decision_id: str | None = None


@dataclass
class VerifyReport:
    """The outcome of a verification: intact when there is no problem."""

    records: int = 0
    checkpoints: int = 0
    newest_checkpoint: int | None = None
    pruned: int = 0
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        """The first bad record: a problem the walk pinned to one record wins over the
        range a disagreeing checkpoint implies (that range is where it lies, not what it is)."""
        precise = [p for p in self.problems if p.kind not in CHECKPOINT_KINDS]
        candidates = precise or self.problems
        return min(candidates, key=lambda p: p.seq) if candidates else None

    def to_json(self) -> dict[str, Any]:
        first = self.first
        return {
            "intact": self.intact,
            "records": self.records,
            "checkpoints": self.checkpoints,
            "newest_checkpoint": self.newest_checkpoint,
            "pruned": self.pruned,
            "first_bad": None if first is None else first.__dict__,
            "problems": [p.__dict__ for p in sorted(self.problems, key=lambda p: p.seq)],
            "warnings": self.warnings,
        }


@dataclass
class _Walk:
    """State of the single pass over the records."""

    previous: bytes
    frontier: Frontier = field(default_factory=Frontier)
    position: int = 0
    claims: list[tuple[int, int, str | None]] = field(default_factory=list)  # (position, claimed, id)


def verify_log(
    store: Store,
    checkpoint_dir: Path | None = None,
    public_key_file: Path | None = None,
) -> VerifyReport:
    """Verify the whole log in one pass; the report names every problem and the first bad record."""
    report = VerifyReport()
    checkpoints, key = _load_checkpoints(store, checkpoint_dir, public_key_file, report)
    pending = sorted((c for c in checkpoints if c.size > 0), key=lambda c: c.size)
    pruned = store.pruned()
    report.pruned = len(pruned)
    walk = _Walk(previous=store.genesis())
    last_good_checkpoint = 0
    cp = 0
    for record in store.records():
        if record.seq != walk.position:
            report.problems.append(
                Problem(
                    walk.position,
                    "deleted",
                    f"records #{walk.position} to #{record.seq - 1} are missing (positions jump)",
                )
            )
            walk.position = record.seq
        body = record.body
        if body is None:
            if record.seq not in pruned:
                report.problems.append(
                    Problem(
                        record.seq,
                        "deleted",
                        f"record #{record.seq}'s content was deleted without a prune event",
                        record.decision_id,
                    )
                )
        elif leaf_hash(body) != record.leaf:
            report.problems.append(
                Problem(
                    record.seq,
                    "edited",
                    f"record #{record.seq}'s bytes do not match its hash",
                    record.decision_id,
                )
            )
        else:
            claimed = body_seq(body)
            if claimed != record.seq:
                walk.claims.append((record.seq, -1 if claimed is None else claimed, record.decision_id))
            elif key is not None and record.kind in SIGNED_EVENTS:
                _check_event(body, key, record.seq, report)
        if (
            chain_next(walk.previous, record.leaf) != record.chain
            and not any(p.seq == record.seq for p in report.problems)
            and not any(c[0] == record.seq for c in walk.claims)
        ):
            report.problems.append(
                Problem(
                    record.seq,
                    "edited-rehashed",
                    f"record #{record.seq}'s hash does not follow from record #{record.seq - 1}: "
                    "it was replaced and its hash recomputed",
                    record.decision_id,
                )
            )
        walk.previous = record.chain
        walk.frontier.append(record.leaf)
        walk.position += 1
        while cp < len(pending) and pending[cp].size == walk.frontier.size:
            if _matches(pending[cp], walk):
                last_good_checkpoint = pending[cp].size
            else:
                report.problems.append(_rewritten(pending[cp], last_good_checkpoint))
            cp += 1
    report.records = walk.frontier.size
    _classify_claims(walk.claims, report)
    if cp < len(pending):
        newest = pending[-1]
        report.problems.append(
            Problem(
                walk.frontier.size,
                "truncated",
                f"the log holds {walk.frontier.size} records but the checkpoint of {newest.time} "
                f"was signed over {newest.size}: records #{walk.frontier.size} to #{newest.size - 1} are gone",
            )
        )
    report.checkpoints = len(checkpoints)
    report.newest_checkpoint = pending[-1].size if pending else None
    return report


def _matches(checkpoint: Checkpoint, walk: _Walk) -> bool:
    return checkpoint.root == walk.frontier.root().hex() and checkpoint.chain_head == walk.previous.hex()


def _rewritten(checkpoint: Checkpoint, last_good: int) -> Problem:
    return Problem(
        last_good,
        "rewritten",
        f"the checkpoint of {checkpoint.time} over {checkpoint.size} records does not match the log: "
        f"a record from #{last_good} to #{checkpoint.size - 1} was edited, deleted or inserted and "
        "the hashes after it recomputed",
    )


def _classify_claims(claims: list[tuple[int, int, str | None]], report: VerifyReport) -> None:
    """Records that sit at another position than the one they were written at."""
    claim_at = {position: claimed for position, claimed, _ in claims}
    for position, claimed, decision_id in claims:
        if claimed < 0:
            report.problems.append(
                Problem(position, "edited", f"record #{position} is not a record", decision_id)
            )
        elif claim_at.get(claimed) == position:
            report.problems.append(
                Problem(
                    min(position, claimed),
                    "reordered",
                    f"record #{position} holds the record written as #{claimed}",
                    decision_id,
                )
            )
        elif claimed > position:
            report.problems.append(
                Problem(
                    position,
                    "deleted",
                    f"record #{position} was written as #{claimed}: records were deleted before it and the rest renumbered",
                    decision_id,
                )
            )
        else:
            report.problems.append(
                Problem(
                    claimed,
                    "inserted",
                    f"record #{position} was written as #{claimed}: a record was inserted at #{claimed}",
                    decision_id,
                )
            )
        break  # later claims follow from the first displacement


def _check_event(body: bytes, key: Any, seq: int, report: VerifyReport) -> None:
    """An erasure, prune or hold event must carry a valid signature by the log's key."""
    try:
        data = json.loads(body)
        signed = {k: v for k, v in data.items() if k not in ("seq", "signature")}
        ok = verify_signature(key, compact(signed), str(data.get("signature", "")))
    except (ValueError, AttributeError):
        ok = False
    if not ok:
        report.problems.append(Problem(seq, "forged-event", f"event #{seq}'s signature does not verify"))


def _load_checkpoints(
    store: Store, folder: Path | None, key_file: Path | None, report: VerifyReport
) -> tuple[list[Checkpoint], Any]:
    """The checkpoints whose signatures verify (forged ones become problems) and the public key."""
    if folder is None:
        report.warnings.append(
            "no checkpoints given (--checkpoints DIR): only the log's own hashes were checked; "
            "a rewritten chain or a truncated tail cannot be detected without them"
        )
        return [], None
    found, errors, warnings = read_checkpoints(folder)
    report.warnings += warnings
    for error in errors:
        report.problems.append(Problem(0, "forged-checkpoint", f"checkpoint file damaged: {error}"))
    key_path = key_file or folder / PUBLIC_KEY_FILE
    if not key_path.exists():
        report.warnings.append(f"no public key at {key_path}: signatures not checked")
        return found, None
    key = load_public_key(key_path)
    if key_file is None:
        report.warnings.append(
            f"checked signatures with {key_path}, which sits beside the checkpoints; "
            "give --public-key with a copy you trust"
        )
    key_id = public_key_id(key)
    good = []
    for checkpoint in found:
        if checkpoint.log_id != store.log_id:
            report.problems.append(
                Problem(0, "forged-checkpoint", f"a checkpoint belongs to another log ({checkpoint.log_id})")
            )
        elif checkpoint.key_id != key_id or not verify_signature(
            key, compact(checkpoint.signed_part()), checkpoint.signature
        ):
            report.problems.append(
                Problem(
                    min(checkpoint.size, store.size()),
                    "forged-checkpoint",
                    f"the checkpoint of {checkpoint.time} over {checkpoint.size} records is not signed by the log's key",
                )
            )
        else:
            good.append(checkpoint)
    return good, key
