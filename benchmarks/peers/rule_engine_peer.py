"""rule-engine: one boolean rule per condition, compiled once; Python combines them.

rule-engine matches a rule against an object (``Rule.matches``); it has no notion of outcomes or
precedence, so the override of R1 and R4's "otherwise" are three lines of Python, as a user would
write them. Items are read from the case dict with ``resolve_item``; ``end_user['type']`` reaches into
the record.
"""

from __future__ import annotations

from benchmarks.peers._common import Decide, quoted_set
from benchmarks.workload import (
    EDD,
    EDD_COUNTRIES,
    FAVORABLE,
    HR_CAPABILITIES,
    HR_REASONS,
    HR_REVIEW,
    NOT_APPLICABLE,
    Case,
)

NAME = "rule-engine"
PACKAGE = "rule-engine"
MODULE = "rule_engine"

SS_RULE = "'SS' in control_reason"
HR_RULE = (
    f"({quoted_set(HR_REASONS)} & control_reason.to_set)"
    f" and ({quoted_set(HR_CAPABILITIES)} & capability.to_set)"
)
EDD_RULE = f"end_user['type'] == 'government' and destination in {quoted_set(EDD_COUNTRIES)}"


def setup() -> Decide:
    import rule_engine

    context = rule_engine.Context(resolver=rule_engine.resolve_item)
    ss = rule_engine.Rule(SS_RULE, context=context)
    hr = rule_engine.Rule(HR_RULE, context=context)
    edd = rule_engine.Rule(EDD_RULE, context=context)

    def decide(case: Case) -> tuple[str, tuple[str, ...]]:
        if ss.matches(case):
            return NOT_APPLICABLE
        obligations = []
        if edd.matches(case):
            obligations.append(EDD)
        if hr.matches(case):
            obligations.append(HR_REVIEW)
        return ("case_by_case", tuple(sorted(obligations))) if obligations else FAVORABLE

    return decide
