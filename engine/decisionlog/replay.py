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
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from engine import api
from engine import diff as d
from engine.cases import CaseFile
from engine.decisionlog.log import export_records
from engine.decisionlog.records import TRACE_SALT_PATH, compact, trace_hash
from engine.decisionlog.store import Store
from engine.errors import CaseError, PolicyError, UsageError
from engine.registry import read_versions

__all__ = ["LoggedCase", "ReplayOutcome", "SameVersion", "logged_cases", "replay"]

CHUNK = 500


@dataclass(frozen=True)
class LoggedCase:
    """What replay needs of one logged decision."""

    seq: int
    decision_id: str
    version: str
    content_hash: str
    evaluated_at: date
    case: dict[str, Any]
    output: dict[str, Any]
    trace_hash: str
    trace_salt: bytes | None


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


def logged_cases(
    store: Store, policy_id: str, *, since: str | None, until: str | None, skipped: dict[str, int]
) -> Iterator[LoggedCase]:
    """The logged decisions of one policy in the window, with inputs restored and trace salts."""
    batch: list[dict[str, Any]] = []

    def flush() -> Iterator[LoggedCase]:
        salts = store.personal([r["seq"] for r in batch])
        for record in batch:
            salt = salts.get(record["seq"], {}).get(TRACE_SALT_PATH)
            yield LoggedCase(
                seq=record["seq"],
                decision_id=record["decision_id"],
                version=record["version"],
                content_hash=record["content_hash"],
                evaluated_at=date.fromisoformat(record["evaluated_at"]),
                case=record["input"],
                output=record["output"],
                trace_hash=record["trace_hash"],
                trace_salt=None if salt is None else salt[0],
            )
        batch.clear()

    for record in export_records(store, since=since, until=until, kinds=("decision",)):
        if record.get("pruned"):
            skipped["pruned"] = skipped.get("pruned", 0) + 1
            continue
        if record.get("policy") != policy_id:
            continue
        if record.get("personal_erased"):
            skipped["personal data erased"] = skipped.get("personal data erased", 0) + 1
            continue
        batch.append(record)
        if len(batch) >= CHUNK:
            yield from flush()
    yield from flush()


def check_same(policy: api.Policy, cases: Sequence[LoggedCase]) -> SameVersion:
    """Re-decide under the recorded version: output and trace hash must be identical."""
    result = SameVersion()
    for logged in cases:
        result.replayed += 1
        try:
            decision = policy.evaluate(logged.case, trace=True, at=logged.evaluated_at)
        except CaseError as exc:
            result.mismatches.append(
                _mismatch(logged, f"the logged input no longer validates: {exc.problems}")
            )
            continue
        full = decision.model_dump(mode="json")
        output = {**full, "trace": None}
        if output != logged.output:
            result.mismatches.append(_mismatch(logged, "the decision differs from the logged one"))
        elif trace_hash(compact(full["trace"]), logged.trace_salt) != logged.trace_hash:
            result.mismatches.append(_mismatch(logged, "the trace hash differs from the logged one"))
        else:
            result.identical += 1
    return result


def _mismatch(logged: LoggedCase, why: str) -> dict[str, Any]:
    return {"seq": logged.seq, "decision_id": logged.decision_id, "problem": why}


_worker_policy: api.Policy | None = None


def _init_worker(path: str) -> None:
    global _worker_policy
    _worker_policy = api.load(path)


def _work(cases: list[LoggedCase]) -> SameVersion:
    assert _worker_policy is not None
    return check_same(_worker_policy, cases)


def _chunks(cases: Iterator[LoggedCase], size: int) -> Iterator[list[LoggedCase]]:
    chunk: list[LoggedCase] = []
    for case in cases:
        chunk.append(case)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


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
) -> ReplayOutcome:
    """Replay every logged decision of `against`'s policy in the window."""
    skipped: dict[str, int] = {}
    same = SameVersion()
    groups: dict[tuple[str, str], _Group] = {}
    window: list[date] = []
    cases = logged_cases(
        store,
        against.policy.id,
        since=since.isoformat() if since else None,
        until=until.isoformat() if until else None,
        skipped=skipped,
    )
    pool = (
        ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(str(against.policy.path),))
        if workers > 1
        else None
    )
    pending = []
    try:
        for chunk in _chunks(cases, CHUNK):
            window += [min(c.evaluated_at for c in chunk), max(c.evaluated_at for c in chunk)]
            same_chunk = [c for c in chunk if c.content_hash == against.policy.content_hash]
            if same_chunk:
                if pool is not None:
                    pending.append(pool.submit(_work, same_chunk))
                else:
                    same.merge(check_same(against.policy, same_chunk))
            for logged in chunk:
                if logged.content_hash != against.policy.content_hash:
                    _replay_other(logged, against, folder, groups)
        for future in pending:
            same.merge(future.result())
    finally:
        if pool is not None:
            pool.shutdown()
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
