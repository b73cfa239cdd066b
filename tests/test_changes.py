"""One version comparison (engine/changes.py): `policy diff` and the policy pages agree on what changed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine import api, diff
from engine.changes import ASPECTS, rule_aspects
from engine.policydocs import compare_versions
from engine.program import Program

BODY = """
use "vocab/trade.vocab"

rule base "The general case"
  cite "test (a)"
  if true
  then decide license_review = favorable

rule other "Another case"
  cite "test (b)"
  if civil_disorder
  then decide license_review = denial

rule risk "A human-rights risk"
  cite "test (c)"
  overrides {first}, {second}
  if hr_abuse_risk
  then decide license_review = not_favorable
"""


def _programs(write_policy: Callable[..., Path], before: str, after: str) -> tuple[Program, Program]:
    old = api.Environment().load(write_policy(before, name="old.policy")).compiled.program
    new = api.Environment().load(write_policy(after, name="new.policy")).compiled.program
    return old, new


def test_reordering_overrides_is_no_change_for_diff_and_docs(write_policy: Callable[..., Path]) -> None:
    """The bug the issue names: `policy diff` reported a precedence change, the policy page none."""
    old, new = _programs(
        write_policy,
        BODY.format(first="base", second="other"),
        BODY.format(first="other", second="base"),
    )
    assert diff.rule_changes(old, new) == []
    assert compare_versions(old, new).changed == ()


def test_a_real_precedence_change_is_reported_by_both(write_policy: Callable[..., Path]) -> None:
    old, new = _programs(
        write_policy,
        BODY.format(first="base", second="other"),
        BODY.format(first="base", second="base").replace("base, base", "base"),
    )
    (change,) = diff.rule_changes(old, new)
    assert change.rule == "risk" and change.aspects == ["precedence"]
    (page,) = compare_versions(old, new).changed
    assert page.id == "risk" and page.kinds == ("overrides",)


def test_aspects_come_in_one_order(write_policy: Callable[..., Path]) -> None:
    old, new = _programs(
        write_policy,
        BODY.format(first="base", second="other"),
        BODY.format(first="base", second="other")
        .replace('"A human-rights risk"', '"A risk"')
        .replace("if hr_abuse_risk", "if hr_abuse_risk and civil_disorder"),
    )
    rule = {r.id: r.decl for r in old.rules}["risk"]
    changed = {r.id: r.decl for r in new.rules}["risk"]
    assert rule_aspects(rule, changed) == ("condition", "description")
    assert set(rule_aspects(rule, changed)) <= set(ASPECTS)
    (change,) = diff.rule_changes(old, new)
    assert change.aspects == ["wording", "condition"]
