"""Coverage of a policy version by its test cases: did the cases make each rule and each condition
both true and false?

Computed from decision traces (every rule, every sub-condition with its value), so it
measures what the engine evaluated, not what a line-based tool would guess. A rule counts
as true when it fired (taking effect or overridden) and false when it did not fire; a
condition when its trace value was true or false (unknown counts as neither). The
percentage is over outcomes: each rule and each condition has two, true and false.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.models import ConditionTrace, Decision

FIRED = ("fired", "overridden")


@dataclass
class ConditionCoverage:
    """One condition node of one rule: where it is, its text, and the values the cases gave it."""

    rule: str
    clause: str  # "if" or "unless 1", "unless 2", ...
    path: tuple[int, ...]  # child indexes from the clause's root
    text: str
    true: int = 0
    false: int = 0
    unknown: int = 0

    @property
    def covered(self) -> int:
        return (self.true > 0) + (self.false > 0)


@dataclass
class RuleCoverage:
    rule: str
    fired: int = 0
    not_fired: int = 0
    unknown: int = 0
    conditions: dict[tuple[str, tuple[int, ...]], ConditionCoverage] = field(default_factory=dict)

    @property
    def covered(self) -> int:
        return (self.fired > 0) + (self.not_fired > 0)


@dataclass
class VersionCoverage:
    """Coverage of one policy version by all the cases run under it."""

    policy: str
    version: str
    cases: int = 0
    rules: dict[str, RuleCoverage] = field(default_factory=dict)

    def add(self, decision: Decision) -> None:
        """Count one traced decision."""
        assert decision.trace is not None, "coverage needs decisions evaluated with trace=True"
        self.cases += 1
        for trace in decision.trace.rules:
            rule = self.rules.setdefault(trace.rule, RuleCoverage(trace.rule))
            if trace.status in FIRED:
                rule.fired += 1
            elif trace.status == "unknown":
                rule.unknown += 1
            else:
                rule.not_fired += 1
            _count(rule, "if", (), trace.condition)
            for index, clause in enumerate(trace.unless, start=1):
                _count(rule, f"unless {index}", (), clause)

    @property
    def conditions(self) -> list[ConditionCoverage]:
        return [c for r in self.rules.values() for c in r.conditions.values()]

    @property
    def outcomes(self) -> tuple[int, int]:
        """(outcomes seen, outcomes possible): two per rule and two per condition."""
        rules, conditions = list(self.rules.values()), self.conditions
        seen = sum(r.covered for r in rules) + sum(c.covered for c in conditions)
        return seen, 2 * (len(rules) + len(conditions))

    @property
    def percent(self) -> float:
        seen, possible = self.outcomes
        return 100.0 * seen / possible if possible else 100.0

    def never_fired(self) -> list[str]:
        return [r.rule for r in self.rules.values() if not r.fired]

    def always_fired(self) -> list[str]:
        return [r.rule for r in self.rules.values() if r.fired and not r.not_fired]

    def never_false(self) -> list[ConditionCoverage]:
        return [c for c in self.conditions if not c.false]

    def never_true(self) -> list[ConditionCoverage]:
        return [c for c in self.conditions if not c.true]


def _count(rule: RuleCoverage, clause: str, path: tuple[int, ...], trace: ConditionTrace) -> None:
    entry = rule.conditions.setdefault(
        (clause, path), ConditionCoverage(rule.rule, clause, path, trace.condition)
    )
    if trace.value is True:
        entry.true += 1
    elif trace.value is False:
        entry.false += 1
    else:
        entry.unknown += 1
    for index, child in enumerate(trace.children):
        _count(rule, clause, (*path, index), child)


def collect(decisions: Iterable[Decision]) -> list[VersionCoverage]:
    """Coverage per policy version, in the order versions are first met."""
    versions: dict[tuple[str, str], VersionCoverage] = {}
    for decision in decisions:
        key = (decision.policy, decision.version)
        versions.setdefault(key, VersionCoverage(*key)).add(decision)
    return list(versions.values())


def total_percent(versions: list[VersionCoverage]) -> float:
    """Outcomes seen over outcomes possible, across every version (not an average of percentages)."""
    seen = sum(v.outcomes[0] for v in versions)
    possible = sum(v.outcomes[1] for v in versions)
    return 100.0 * seen / possible if possible else 100.0


# ---------------------------------------------------------------------------
# Reports


def _where(condition: ConditionCoverage) -> str:
    return f"{condition.rule} ({condition.clause}): {condition.text}"


def report_lines(versions: list[VersionCoverage], untested: list[str] | None = None) -> list[str]:
    """The text report: one block per version, the versions no case ran under, then the total."""
    lines = ["coverage (each rule and condition both true and false):"]
    for version in versions:
        seen, possible = version.outcomes
        fired = sum(1 for r in version.rules.values() if r.fired)
        lines.append(
            f"  {version.policy}@{version.version}: {version.percent:.1f}% ({seen}/{possible} outcomes, "
            f"{version.cases} cases, {fired}/{len(version.rules)} rules fired)"
        )
        for title, items in (
            ("never fired", version.never_fired()),
            ("always fired", version.always_fired()),
            ("conditions never false", [_where(c) for c in version.never_false()]),
            ("conditions never true", [_where(c) for c in version.never_true()]),
        ):
            if items:
                lines.append(f"    {title}:")
                lines += [f"      {item}" for item in items]
    if untested:
        lines.append("  versions no expectation runs (not counted): " + ", ".join(untested))
    lines.append(f"  total: {total_percent(versions):.1f}%")
    return lines


def report_data(versions: list[VersionCoverage], untested: list[str] | None = None) -> dict[str, Any]:
    """The JSON report, for tools."""
    return {
        "percent": round(total_percent(versions), 2),
        "untested": list(untested or []),
        "versions": [
            {
                "policy": v.policy,
                "version": v.version,
                "cases": v.cases,
                "percent": round(v.percent, 2),
                "outcomes": {"seen": v.outcomes[0], "possible": v.outcomes[1]},
                "rules": [
                    {
                        "rule": r.rule,
                        "fired": r.fired,
                        "not_fired": r.not_fired,
                        "unknown": r.unknown,
                        "conditions": [
                            {
                                "clause": c.clause,
                                "path": list(c.path),
                                "condition": c.text,
                                "true": c.true,
                                "false": c.false,
                                "unknown": c.unknown,
                            }
                            for c in r.conditions.values()
                        ],
                    }
                    for r in v.rules.values()
                ],
            }
            for v in versions
        ],
    }
