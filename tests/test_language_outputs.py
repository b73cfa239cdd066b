"""Typed decisions (issue 12, part 3): boolean, number, date, string and enumeration outputs.

A decided value is a constant or an expression computed per case, after precedence, for the
rules that take effect (fast, traced and trusted paths alike).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

import engine
from engine.checker import check_text
from engine.formatter import format_text
from engine.render import render_decision
from tests.conftest import LANGUAGE

POLICY = LANGUAGE / "outputs.policy"

HEADER = """policy "t"
  title "t"
  version "1"
  effective 2021-01-01
  status draft
  source "s"
enum R "r" = <a, b>
fact n: number "n"
fact k: R "k"
"""


@pytest.fixture(scope="module")
def policy() -> engine.Policy:
    return engine.load(POLICY)


CASE: dict[str, Any] = {"value": 3, "share": 1, "filed": "2021-03-01", "desk": "Asia"}


def test_every_type_of_decision_on_the_fast_path(policy: engine.Policy) -> None:
    decision = policy.evaluate(CASE)
    assert decision.value("subject") is True
    assert decision.value("percent") == Decimal("33.33")
    assert decision.value("answer_by") == date(2021, 3, 1)
    assert decision.value("handled_by") == "Asia"
    assert decision.value("review") == "refer"


def test_the_json_contract_of_typed_values(policy: engine.Policy) -> None:
    values = {k: v["value"] for k, v in policy.evaluate(CASE).model_dump(mode="json")["decisions"].items()}
    assert values == {
        "subject": True,
        "percent": "33.33",
        "answer_by": "2021-03-01",
        "handled_by": "Asia",
        "review": "refer",
    }


def test_defaults_of_every_type(policy: engine.Policy) -> None:
    decision = policy.evaluate({"value": 0, "share": 0, "filed": "2021-03-01", "extended": True})
    assert decision.value("subject") is False
    assert decision.value("percent") == Decimal("0.00")  # the default, at the declared scale
    assert decision.value("answer_by") == date(2099, 12, 31)
    assert decision.value("handled_by") == "registry"
    assert all(v.default for v in decision.decisions.values())


def test_a_computed_value_is_rounded_half_up_at_its_scale(policy: engine.Policy) -> None:
    assert policy.evaluate({**CASE, "value": 8, "share": "0.0004"}).value("percent") == Decimal(
        "0.01"
    )  # 0.005
    assert policy.evaluate({**CASE, "value": 8, "share": "0.00039"}).value("percent") == Decimal("0.00")


def test_traced_untraced_and_trusted_agree(policy: engine.Policy) -> None:
    fast = policy.evaluate(CASE)
    traced = policy.evaluate(CASE, trace=True)
    assert fast.model_dump(exclude={"trace"}) == traced.model_dump(exclude={"trace"})
    trusted = policy.decide_trusted({**CASE, "filed": date(2021, 3, 1)})
    assert {k: v.value for k, v in trusted.decisions.items()} == {
        k: v.value for k, v in fast.decisions.items()
    }


def test_decisions_computed_per_case_are_not_served_from_the_fired_rules_cache(policy: engine.Policy) -> None:
    one = policy.evaluate({**CASE, "share": 1}).value("percent")
    two = policy.evaluate({**CASE, "share": 2}).value("percent")  # the same rules fire
    assert (one, two) == (Decimal("33.33"), Decimal("66.67"))


def test_the_text_view_prints_values_as_written(policy: engine.Policy) -> None:
    text = render_decision(policy.evaluate(CASE, trace=True), "text", explain=True)
    assert "subject = true\n" in text
    assert "percent = 33.33\n" in text
    assert "answer_by = 2021-03-01\n" in text


@pytest.mark.parametrize(
    ("source", "code", "message"),
    [
        ('decision d: boolean "d"\n', "missing-default", "has no default"),
        ('decision d: boolean default 1 "d"\n', "type-mismatch", "not a boolean constant"),
        ('decision d: set of R default <> "d"\n', "type-mismatch", "a decision has one value"),
        ('decision d: optional R default a "d"\n', "type-mismatch", "marked `optional`"),
        ('decision d: R default c "d"\n', "unknown-value", "`c` is not a value of `R`"),
        ('decision d: Rx default a "d"\n', "unknown-type", "unknown type `Rx`"),
        (
            'decision d: number default 0 "d"\nrule r "r"\n  cite "c"\n  if n > 0\n  then decide d = 1 / n\n',
            "unrounded-division",
            "decision `d` divides",
        ),
        (
            'decision d: boolean default false "d"\nrule r "r"\n  cite "c"\n  if n > 0\n  then decide d = n\n',
            "type-mismatch",
            "`n` is a number, but decision `d` is a boolean",
        ),
        (
            'decision d: R default a "d"\nrule r "r"\n  cite "c"\n  if n > 0\n  then decide d = c\n',
            "unknown-value",
            "`c` is not a value of `R`",
        ),
    ],
)
def test_typed_decision_errors(source: str, code: str, message: str) -> None:
    result = check_text(HEADER + source, "t.policy")
    assert [d.code for d in result.diagnostics] == [code], result.diagnostics
    assert message in result.diagnostics[0].message
    assert result.diagnostics[0].help
    assert "false_value" not in (result.diagnostics[0].help or "")


def test_a_boolean_decision_no_longer_gets_the_keyword_advice() -> None:
    result = check_text(HEADER + 'decision d: boolean default false "d"\n', "t.policy")
    assert result.diagnostics == []


def test_an_enum_decision_may_take_the_value_of_a_fact() -> None:
    text = HEADER + 'decision d: R default a "d"\nrule r "r"\n  cite "c"\n  if n > 0\n  then decide d = k\n'
    result = check_text(text, "t.policy")
    assert result.ok and result.program is not None
    policy = engine.api.Policy(engine.runtime.CompiledPolicy(result.program), POLICY)
    assert policy.evaluate({"n": 1, "k": "b"}).value("d") == "b"


def test_two_rules_computing_different_values_conflict_per_case() -> None:
    text = HEADER + (
        'decision d: number default 0 "d"\n'
        'rule r1 "r1"\n  cite "c"\n  if n > 0\n  then decide d = n + 1\n'
        'rule r2 "r2"\n  cite "c"\n  if n > 0\n  then decide d = n * 2\n'
    )
    result = check_text(text, "t.policy")
    assert result.program is not None
    policy = engine.api.Policy(engine.runtime.CompiledPolicy(result.program), POLICY)
    assert policy.evaluate({"n": 1, "k": "a"}).value("d") == Decimal(2)  # 1 + 1 = 1 * 2: they agree
    clash = policy.evaluate({"n": 3, "k": "a"})
    assert clash.value("d") is None
    assert [(c.rule, c.value) for c in clash.conflicts[0].claims] == [("r1", Decimal(4)), ("r2", Decimal(6))]


def test_the_formatter_keeps_typed_declarations_and_expressions() -> None:
    text = HEADER + (
        'decision d: number   scale 2 rounding half_up default 0 "d"\n'
        'rule r "r"\n  cite "c"\n  if n > 0\n  then decide d = (n + 1) * 2\n'
    )
    formatted = format_text(text)
    assert 'decision d: number scale 2 rounding half_up default 0 "d"' in formatted
    assert "  then decide d = (n + 1) * 2\n" in formatted


def test_an_intent_expectation_can_carry_an_evaluation_date(tmp_path: Any) -> None:
    """Issue 12, part 9: `at = DATE` in `policy test` expectations picks the evaluation date."""
    from engine.intent import Runner, load_expectations
    from tests.conftest import ROOT

    intent = tmp_path / "ear-734.4.toml"
    intent.write_text(
        '[[expect]]\ncase = "ear-734.4/standard-iran-exactly-10"\nversion = "2016-03-11"\nat = 2021-06-01\n'
        'subject_to_ear = false\nus_content_percent = "10.00"\nwhy = "dated"\n'
        '[[expect]]\ncase = "ear-734.4/standard-iran-exactly-10"\nversion = "2016-03-11"\nat = "soon"\n',
        encoding="utf-8",
    )
    expectations, problems = load_expectations([intent])
    assert [p.message for p in problems] == ["`at` must be a date"]
    (item,) = expectations
    assert item.at == date(2021, 6, 1) and item.id.endswith("@2016-03-11:2021-06-01")
    result = Runner(ROOT / "policies", ROOT / "fixtures" / "cases").run(item)
    assert result.status == "pass", result.mismatches
    assert result.decision is not None and result.decision.evaluated_at == date(2021, 6, 1)
