"""Replay: decide logged cases again, under the version that decided them or under a candidate.

Under the recorded version (same content hash) every decision must come out identical: the
same decision JSON and the same trace hash, using the recorded evaluation date. Under another
version the result is the reviewer's diff report of `policy diff` (engine/diff.py), one
report per recorded version, with the logged decisions as its cases.

Records whose personal values were erased cannot be re-decided faithfully (a fact is gone) and
pruned records have no input left: both are counted and skipped, never guessed.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from engine import api
from engine import diff as d
from engine.cases import CaseFile
from engine.decisionlog.evaluation import evaluate_for_log
from engine.decisionlog.records import TRACE_SALT_PATH, compact, parse_body, restore_personal, trace_hash
from engine.decisionlog.store import Store
from engine.errors import CaseError, PolicyError, UsageError
from engine.registry import read_versions

__all__ = ["LoggedCase", "ReplayOutcome", "SameVersion", "parse_chunk", "raw_chunks", "replay"]

CHUNK = 2000


@dataclass(frozen=True)
class LoggedCase:
    """What replay needs of one logged decision; the output stays the bytes the log holds."""

    seq: int
    decision_id: str
    version: str
    content_hash: str
    evaluated_at: date
    case: dict[str, Any]
    output_json: bytes
    trace_hash: str
    trace_salt: bytes | None

    @functools.cached_property
    def output(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.output_json)
        return data


_OUTPUT_KEY = b',"output":'
_TRACE_KEY = b',"trace_hash":'


def split_decision(body: bytes) -> tuple[dict[str, Any], bytes, str] | None:
    """A decision record's fields before its output, the output's exact bytes, and the trace hash.

    The output is the last object but one of a record and holds no `"output"` key, so it is
    found without parsing it; replays compare it byte for byte. None: not a well-formed record.
    """
    at = body.rfind(_OUTPUT_KEY)
    end = body.rfind(_TRACE_KEY)
    if at < 0 or end < at:
        return None
    head = parse_body(body[:at] + b"}")
    try:
        digest = json.loads(body[end + len(_TRACE_KEY) : -1])
    except ValueError:
        return None
    if head is None or not isinstance(digest, str):
        return None
    return head, body[at + len(_OUTPUT_KEY) : end], digest


@dataclass
class SameVersion:
    """Replays under the recorded version: how many, and every one that did not come out identical."""

    replayed: int = 0
    identical: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    def merge(self, other: SameVersion) -> None:
        self.replayed += other.replayed
        self.identical += other.identical
        self.mismatches += other.mismatches


@dataclass
class ReplayOutcome:
    against: d.VersionInfo
    same: SameVersion
    reports: list[d.DiffReport]
    skipped: dict[str, int]
    window: tuple[date | None, date | None] = (None, None)

    @property
    def ok(self) -> bool:
        return not self.same.mismatches and not any(r.summary.failed for r in self.reports)

    def to_json(self) -> dict[str, Any]:
        return {
            "replay_version": 1,
            "against": self.against.model_dump(mode="json"),
            "evaluated_from": self.window[0].isoformat() if self.window[0] else None,
            "evaluated_to": self.window[1].isoformat() if self.window[1] else None,
            "recorded_version": {
                "replayed": self.same.replayed,
                "identical": self.same.identical,
                "mismatches": self.same.mismatches,
            },
            "skipped": self.skipped,
            "reports": [r.model_dump(mode="json") for r in self.reports],
        }


RawChunk = list[tuple[int, bytes, dict[str, Any] | None]]


def raw_chunks(
    store: Store, *, since: str | None, until: str | None, skipped: dict[str, int]
) -> Iterator[RawChunk]:
    """Decision records in the window as (position, bytes, personal values or None), in chunks.

    The bytes are parsed by whoever replays them (a worker process), so reading stays cheap;
    personal values are fetched only for records that hold commitments.
    """
    chunk: list[tuple[int, bytes]] = []

    def flush() -> RawChunk:
        needing = {seq for seq, body in chunk if b'"$commitment"' in body}
        values = store.personal(sorted(needing)) if needing else {}
        out: RawChunk = []
        for seq, body in chunk:
            if seq not in needing:
                out.append((seq, body, None))
                continue
            held = values.get(seq, {})
            personal: dict[str, Any] = {p: v for p, (_, v) in held.items() if p != TRACE_SALT_PATH}
            if TRACE_SALT_PATH in held:
                personal[TRACE_SALT_PATH] = held[TRACE_SALT_PATH][0]
            out.append((seq, body, personal))
        chunk.clear()
        return out

    for record in store.records():
        if record.kind != "decision":
            continue
        if (since and record.recorded_at < since) or (until and record.recorded_at >= until):
            continue
        if record.body is None:
            skipped["pruned"] = skipped.get("pruned", 0) + 1
            continue
        chunk.append((record.seq, record.body))
        if len(chunk) >= CHUNK:
            yield flush()
    if chunk:
        yield flush()


def parse_chunk(
    chunk: RawChunk, policy_id: str, recorded: str | None, skipped: dict[str, int]
) -> list[LoggedCase]:
    """The replayable decisions of one policy in a chunk; erased ones are counted and left out."""
    cases = []
    for seq, body, personal in chunk:
        split = split_decision(body)
        if split is None:
            continue
        data, output_json, digest = split
        if data.get("policy") != policy_id:
            continue
        if recorded is not None and data.get("version") != recorded:
            continue
        case = data["input"]
        salt = None
        if personal is not None:
            values = {k: v for k, v in personal.items() if k != TRACE_SALT_PATH}
            salt = personal.get(TRACE_SALT_PATH)
            case = restore_personal(case, values)
            if b'"$commitment"' in compact(case):
                skipped["personal data erased"] = skipped.get("personal data erased", 0) + 1
                continue
        cases.append(
            LoggedCase(
                seq=seq,
                decision_id=data["decision_id"],
                version=data["version"],
                content_hash=data["content_hash"],
                evaluated_at=date.fromisoformat(data["evaluated_at"]),
                case=case,
                output_json=output_json,
                trace_hash=digest,
                trace_salt=salt,
            )
        )
    return cases


def check_same(policy: api.Policy, cases: Sequence[LoggedCase]) -> SameVersion:
    """Re-decide under the recorded version: output and trace hash must be identical."""
    result = SameVersion()
    for logged in cases:
        result.replayed += 1
        try:
            evaluation = evaluate_for_log(policy, logged.case, logged.evaluated_at)
        except CaseError as exc:
            why = f"the logged input no longer validates: {exc.problems}"
            result.mismatches.append(_mismatch(logged, why))
            continue
        same_bytes = _dumps(evaluation.output) == logged.output_json  # how the log wrote it
        if not same_bytes and evaluation.output != logged.output:
            result.mismatches.append(_mismatch(logged, "the decision differs from the logged one"))
        elif trace_hash(evaluation.raw_trace, logged.trace_salt) != logged.trace_hash:
            result.mismatches.append(_mismatch(logged, "the trace hash differs from the logged one"))
        else:
            result.identical += 1
    return result


def _dumps(value: Any) -> bytes:
    """JSON exactly as a record body writes a nested value (engine.decisionlog.records.RecordBody)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _mismatch(logged: LoggedCase, why: str) -> dict[str, Any]:
    return {"seq": logged.seq, "decision_id": logged.decision_id, "problem": why}


_worker_policy: api.Policy | None = None


def _init_worker(path: str) -> None:
    global _worker_policy
    _worker_policy = api.load(path)


@dataclass
class _ChunkResult:
    same: SameVersion
    others: list[LoggedCase]
    skipped: dict[str, int]
    dates: list[date]


def _process(
    chunk: RawChunk, policy_id: str, recorded: str | None, policy: api.Policy | None = None
) -> _ChunkResult:
    """Parse a chunk and replay what the recorded version decided; the rest goes back for diffing."""
    policy = policy or _worker_policy
    assert policy is not None
    skipped: dict[str, int] = {}
    cases = parse_chunk(chunk, policy_id, recorded, skipped)
    same = [c for c in cases if c.content_hash == policy.content_hash]
    others = [c for c in cases if c.content_hash != policy.content_hash]
    dates = [min(c.evaluated_at for c in cases), max(c.evaluated_at for c in cases)] if cases else []
    return _ChunkResult(check_same(policy, same), others, skipped, dates)


@dataclass
class _Group:
    """Logged decisions of one recorded version, replayed under a different one."""

    version: str
    content_hash: str
    before: d.Side | None
    problem: str | None
    kept: list[d.CaseDiff] = field(default_factory=list)
    fast_unchanged: int = 0
    earliest: date | None = None


def replay(
    store: Store,
    against: d.Side,
    folder: Path | None,
    *,
    since: date | None = None,
    until: date | None = None,
    workers: int = 1,
    recorded: str | None = None,
) -> ReplayOutcome:
    """Replay every logged decision of `against`'s policy in the window (made by `recorded`, if given)."""
    skipped: dict[str, int] = {}
    same = SameVersion()
    groups: dict[tuple[str, str], _Group] = {}
    window: list[date] = []
    chunks = raw_chunks(
        store,
        since=since.isoformat() if since else None,
        until=until.isoformat() if until else None,
        skipped=skipped,
    )
    policy_id = against.policy.id

    def merge(result: _ChunkResult) -> None:
        same.merge(result.same)
        window.extend(result.dates)
        for why, n in result.skipped.items():
            skipped[why] = skipped.get(why, 0) + n
        for logged in result.others:
            _replay_other(logged, against, folder, groups)

    if workers <= 1:
        for chunk in chunks:
            merge(_process(chunk, policy_id, recorded, against.policy))
    else:
        with ProcessPoolExecutor(
            workers, initializer=_init_worker, initargs=(str(against.policy.path),)
        ) as pool:
            pending: list[Any] = []
            for chunk in chunks:
                pending.append(pool.submit(_process, chunk, policy_id, recorded))
                while len(pending) > 2 * workers:  # bounded memory: at most a few chunks in flight
                    merge(pending.pop(0).result())
            for future in pending:
                merge(future.result())
    reports = [_report(group, against, store) for group in groups.values()]
    bounds = (min(window), max(window)) if window else (None, None)
    return ReplayOutcome(against.info(), same, reports, skipped, bounds)


def _replay_other(
    logged: LoggedCase, against: d.Side, folder: Path | None, groups: dict[tuple[str, str], _Group]
) -> None:
    """Diff one logged decision against the candidate; unchanged ones are only counted."""
    key = (logged.version, logged.content_hash)
    group = groups.get(key)
    if group is None:
        group = groups[key] = _group(logged, folder)
    group.earliest = min(group.earliest or logged.evaluated_at, logged.evaluated_at)
    case = CaseFile(logged.decision_id, f"log#{logged.seq}", logged.case, _comment(logged.case))
    if group.before is None:
        problem = d.CaseProblem(
            side="before", version=logged.version, problems=[group.problem or "unavailable"]
        )
        group.kept.append(d.CaseDiff(case=case.name, path=case.path, status="failed", errors=[problem]))
        return
    before = dataclasses.replace(group.before, at=logged.evaluated_at)
    after = dataclasses.replace(against, at=logged.evaluated_at)
    if _same_outcome(logged, before, after):
        group.fast_unchanged += 1
        return
    diff = d.compare_case(case, before, after)
    if diff.status == "unchanged":
        group.fast_unchanged += 1
    else:
        group.kept.append(diff)


def _same_outcome(logged: LoggedCase, before: d.Side, after: d.Side) -> bool:
    """Fast path: the candidate's untraced decision equals the logged one and the same rules'
    conditions hold under both versions (so no rule's status can differ). Anything else gets
    the full traced diff of `policy diff`."""
    try:
        decision = after.policy.evaluate(logged.case, at=after.at)
    except CaseError:
        return False
    if d.outcome_summary(decision).model_dump() != _summary(logged.output):
        return False
    return _raw_fired(before, logged) == _raw_fired(after, logged)


def _raw_fired(side: d.Side, logged: LoggedCase) -> list[str] | None:
    """Ids of the rules whose conditions hold, before precedence (None: the case does not validate)."""
    compiled = side.policy.compiled
    try:
        facts = compiled.validate(logged.case)
    except CaseError:
        return None
    return sorted(compiled.program.rules[i].id for i in compiled.fired(facts, side.at))


def _summary(output: dict[str, Any]) -> dict[str, Any]:
    decisions = {
        k: (v.get("value") if v.get("value") is not None else d.CONFLICT)
        for k, v in output["decisions"].items()
    }
    return {
        "decisions": decisions,
        "obligations": [o["name"] for o in output.get("obligations", [])],
        "recommendations": [r["name"] for r in output.get("recommendations", [])],
        "fired": output.get("fired", []),
        "unknown": output.get("unknown", []),
    }


def _comment(case: dict[str, Any]) -> str | None:
    comment = case.get("$comment")
    return comment if isinstance(comment, str) else None


def _group(logged: LoggedCase, folder: Path | None) -> _Group:
    """Find the recorded version's text in the policy folder, and check it is the logged text."""
    if folder is None:
        return _Group(
            logged.version, logged.content_hash, None, "give POLICY as a folder to replay other versions"
        )
    entries = [e for e in read_versions(folder) if e.version == logged.version]
    if not entries:
        return _Group(
            logged.version, logged.content_hash, None, f"`{folder}` has no version `{logged.version}`"
        )
    try:
        side = d.side_from_entry(entries[0], f"{logged.version} (as logged)", None)
    except (PolicyError, UsageError) as exc:
        return _Group(logged.version, logged.content_hash, None, f"the logged version no longer loads: {exc}")
    if side.policy.content_hash != logged.content_hash:
        why = (
            f"`{entries[0].path}` is not the text that decided (content hash {side.policy.content_hash[:12]}, "
            f"logged {logged.content_hash[:12]})"
        )
        return _Group(logged.version, logged.content_hash, None, why)
    return _Group(logged.version, logged.content_hash, side, None)


def _report(group: _Group, against: d.Side, store: Store) -> d.DiffReport:
    kept = group.kept
    summary = d.summarise(kept)
    summary = summary.model_copy(
        update={
            "unchanged": summary.unchanged + group.fast_unchanged,
            "compared": summary.compared + group.fast_unchanged,
        }
    )
    earliest = group.earliest or date.today()
    after_info = against.info().model_copy(update={"evaluated_at": earliest})
    if group.before is None:
        before_info = d.VersionInfo(
            label=f"{group.version} (as logged)",
            policy=against.policy.id,
            version=group.version,
            status="unknown",
            effective=None,
            ends=None,
            content_hash=group.content_hash,
            path="(not found)",
            evaluated_at=earliest,
        )
        rule_changes: list[d.RuleChange] = []
        definitions: list[d.DefinitionChange] = []
    else:
        before_info = group.before.info().model_copy(update={"evaluated_at": earliest})
        before_program, after_program = group.before.policy.compiled.program, against.policy.compiled.program
        rule_changes = d.rule_changes(before_program, after_program)
        definitions = d.definition_changes(before_program, after_program)
    return d.DiffReport(
        before=before_info,
        after=after_info,
        cases_from=f"decision log {store.log_id} (each case re-decided on its logged evaluation date)",
        summary=summary,
        cases=kept,
        rule_changes=rule_changes,
        definition_changes=definitions,
    )
