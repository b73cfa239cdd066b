"""Fact defaults (issue 12, part 1): `fact x: T default V`, end to end.

Checker (types, located errors), compiled fast path and traced path, the trusted path,
the trace's `defaults`, the case JSON Schema, the formatter and the `unguarded-optional` lint.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import engine
from engine.checker import check_text
from engine.formatter import format_text
from engine.linter import LintConfig, lint
from engine.render import render_decision
from tests.conftest import LANGUAGE

POLICY = LANGUAGE / "defaults.policy"

HEADER = """policy "t"
  title "t"
  version "1"
  effective 2021-01-01
  status draft
  source "s"
enum Kind "k" = <a, b>
decision d: Kind default a "d"
"""


@pytest.fixture(scope="module")
def policy() -> engine.Policy:
    return engine.load(POLICY)


def test_an_empty_case_takes_every_default(policy: engine.Policy) -> None:
    decision = policy.evaluate({}, trace=True)
    assert decision.value("review") == "approve"
    assert decision.obligation_names == ["screening"]  # party.name defaults to "unnamed"
    assert decision.trace is not None
    assert decision.trace.defaults == ["listed", "party.kind", "party.name", "reasons", "quantity", "shipped"]
    assert decision.trace.facts["listed"] is False
    assert decision.trace.facts["party.kind"] == "private"
    assert decision.trace.facts["reasons"] == []
    assert decision.trace.facts["quantity"] == "1"
    assert decision.trace.facts["shipped"] == "2021-01-01"
    assert decision.trace.facts["note"] is None  # optional without a default stays missing
    assert decision.unknown == []


def test_a_given_value_wins_over_the_default(policy: engine.Policy) -> None:
    case = {"listed": True, "party": {"kind": "government", "name": "Ministry"}, "quantity": 500}
    decision = policy.evaluate(case, trace=True)
    assert decision.value("review") == "deny"
    assert decision.trace is not None
    assert decision.trace.defaults == ["reasons", "shipped"]


def test_defaults_hold_on_the_fast_the_traced_and_the_trusted_path(policy: engine.Policy) -> None:
    case: dict[str, Any] = {"party": {"kind": "government"}, "quantity": 101}
    fast = policy.evaluate(case)
    traced = policy.evaluate(case, trace=True)
    assert fast.value("review") == traced.value("review") == "refer"
    trusted = policy.decide_trusted({"party": {"kind": "government"}, "quantity": Decimal(101)})
    assert trusted.decisions["review"].value == "refer"
    raw = policy.explain_trusted({"party": {"kind": "government"}, "quantity": Decimal(101)})
    assert policy.compiled.trace_of(raw).defaults == ["listed", "party.name", "reasons", "shipped"]


def test_the_trace_text_marks_defaulted_values(policy: engine.Policy) -> None:
    text = render_decision(policy.evaluate({}, trace=True), "text", explain=True)
    assert "party.name = unnamed (default)" in text


def test_the_schema_shows_defaults_and_does_not_require_them(policy: engine.Policy) -> None:
    schema = policy.schema()
    assert "required" not in schema or schema["required"] == []
    assert schema["properties"]["listed"]["default"] is False
    assert schema["properties"]["reasons"]["default"] == []
    assert schema["properties"]["quantity"]["default"] == "1"
    record = schema["$defs"]["Case_party"]["properties"]
    assert record["kind"]["default"] == "private"
    assert record["name"]["default"] == "unnamed"
    assert "default" not in schema["properties"]["note"] or schema["properties"]["note"]["default"] is None


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        ('fact x: boolean default 3 "x"', "not a boolean constant"),
        ('fact x: Kind default c "x"', "`c` is not a value of `Kind`"),
        ('fact x: number default "3" "x"', "not a number constant"),
        ('fact x: set of Kind default <a, z> "x"', "`z` is not a value of `Kind`"),
        ('fact x: date default true "x"', "not a date constant"),
    ],
)
def test_a_default_of_the_wrong_type_is_a_located_error(declaration: str, message: str) -> None:
    result = check_text(HEADER + declaration + "\n", "t.policy")
    errors = [d for d in result.diagnostics if d.severity.value == "error"]
    assert errors, declaration
    assert errors[0].line == 9
    assert errors[0].help
    assert any(message in d.message for d in errors), [d.message for d in errors]


def test_presence_of_a_defaulted_fact_is_a_warning() -> None:
    text = (
        HEADER
        + 'fact x: boolean default false "x"\nrule r "r"\n  cite "c"\n  if x is present\n  then decide d = b\n'
    )
    result = check_text(text, "t.policy")
    (warning,) = result.diagnostics
    assert warning.code == "presence-of-required"
    assert "has a default" in warning.message


def test_the_formatter_keeps_defaults() -> None:
    text = HEADER + 'fact   x :  set of Kind   default <b,a>   "x"\n'
    assert 'fact x: set of Kind default <b, a> "x"' in format_text(text)


def test_lint_flags_an_unguarded_optional_read_and_not_a_guarded_or_defaulted_one(tmp_path: Path) -> None:
    text = (
        HEADER
        + 'fact o: optional boolean "o"\nfact g: optional boolean "g"\nfact w: boolean default false "w"\n'
        + 'rule r1 "r1"\n  cite "c"\n  if o\n  then decide d = b\n'
        + 'rule r2 "r2"\n  cite "c"\n  if g is present and g\n  then decide d = b\n'
        + 'rule r3 "r3"\n  cite "c"\n  if w\n  then decide d = b\n'
    )
    path = tmp_path / "t.policy"
    path.write_text(text, encoding="utf-8")
    result = lint([path], LintConfig())
    found = [(d.code, d.line) for d in result.findings if d.code == "unguarded-optional"]
    assert found == [("unguarded-optional", 12)]


def test_defaults_are_in_the_policy_api_dates_too(policy: engine.Policy) -> None:
    decision = policy.evaluate({"reasons": ["CC"], "shipped": "2021-07-01"}, at=date(2021, 7, 1))
    assert decision.obligation_names == ["screening"]


def test_a_table_entry_that_ends_before_it_starts_is_a_bad_date_range(tmp_path: Path) -> None:
    """Issue 12, part 9: such an entry is never in force, so check says so, located at the table."""
    (tmp_path / "t.json").write_text(
        '{"entries": [{"key": "a", "value": true, "effective": "2021-06-01", "ends": "2021-05-31"}]}',
        encoding="utf-8",
    )
    text = HEADER + 'table flags: Kind -> boolean "flags" from "t.json"\n'
    path = tmp_path / "t.policy"
    path.write_text(text, encoding="utf-8")
    result = engine.api.check([path])[0]
    (problem,) = result.diagnostics
    assert (problem.code, problem.line) == ("bad-date-range", 9)
    assert "ends 2021-05-31, before it takes effect on 2021-06-01" in problem.message
