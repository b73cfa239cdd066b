"""What changed between two versions of a policy: the one comparison `policy diff` and `policy docs` share.

Rules are matched by id and compared as syntax trees (spans are outside equality, so layout
and comments never count); a rule's change is the set of *aspects* that differ, from
`ASPECTS`. `overrides` is a set of rule ids: listing the same ids in another order is not a
change (the precedence is the same). Derived facts are matched by name and differ when their
definition or their type does.

Each report words the aspects its own way (`policy diff` folds `unless` into `condition`
and calls `overrides` precedence; the policy pages list them as they are), but both ask
this module whether and how a rule changed, so they cannot disagree. A semantic comparison
(does the new condition hold on exactly the same cases? a proof, from the solver-backed
reasoner) adds an aspect here and reaches both reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from engine import program as p
from engine import syntax as s

Aspect = Literal["condition", "unless", "outcomes", "overrides", "description", "citations"]

#: Every aspect of a rule, in the order the policy pages list them.
ASPECTS: tuple[Aspect, ...] = ("condition", "unless", "outcomes", "overrides", "description", "citations")

#: Aspects that change what a rule says, not what it decides.
WORDING: frozenset[Aspect] = frozenset({"description", "citations"})


def rule_aspects(old: s.RuleDecl, new: s.RuleDecl) -> tuple[Aspect, ...]:
    """Which aspects of a rule differ between two versions, in `ASPECTS` order; () when none does."""
    differs: dict[Aspect, bool] = {
        "condition": old.condition != new.condition,
        "unless": old.unless != new.unless,
        "outcomes": old.outcomes != new.outcomes,
        "overrides": overridden(old) != overridden(new),
        "description": old.description != new.description,
        "citations": old.citations != new.citations,
    }
    return tuple(aspect for aspect in ASPECTS if differs[aspect])


def overridden(rule: s.RuleDecl) -> frozenset[str]:
    """The ids a rule overrides: a set, whatever order the author listed them in."""
    return frozenset(i.name for i in rule.overrides)


def derived_differs(old: p.DerivedInfo, new: p.DerivedInfo) -> bool:
    """Whether a derived fact is defined differently: another expression (as syntax) or another type."""
    return old.node.source != new.node.source or old.type != new.type


def aligned(old: Sequence[str], new: Sequence[str]) -> list[str]:
    """Ids of both lists: the newer order, each id only in the older list placed after its predecessor."""
    out = list(new)
    for index, item in enumerate(old):
        if item in out:
            continue
        previous = next((x for x in reversed(old[:index]) if x in out), None)
        out.insert(0 if previous is None else out.index(previous) + 1, item)
    return out


def rule_matches(
    before: p.Program, after: p.Program
) -> list[tuple[str, p.RuleInfo | None, p.RuleInfo | None]]:
    """Rules of two versions matched by id, in `aligned` order: (id, old or None, new or None)."""
    old = {r.id: r for r in before.rules}
    new = {r.id: r for r in after.rules}
    return [(rule_id, old.get(rule_id), new.get(rule_id)) for rule_id in aligned(list(old), list(new))]


def derived_matches(
    before: p.Program, after: p.Program
) -> list[tuple[str, p.DerivedInfo | None, p.DerivedInfo | None]]:
    """Derived facts of two versions matched by name, in `aligned` order."""
    old, new = before.derived, after.derived
    return [(name, old.get(name), new.get(name)) for name in aligned(list(old), list(new))]
