"""Numbers (issue 12, part 2): exact arithmetic, percentages, min/max, declared scales.

Expectations are worked out by hand from docs/language.md §6.1, not read off the engine.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine
from engine import numbers
from engine import syntax as s
from engine.checker import check_text
from engine.formatter import format_text
from engine.linter import LintConfig, lint
from engine.parser import parse
from engine.render import render_decision
from tests.conftest import LANGUAGE

POLICY = LANGUAGE / "numbers.policy"

HEADER = """policy "t"
  title "t"
  version "1"
  effective 2021-01-01
  status draft
  source "s"
enum R "r" = <x, y>
fact a: number "a"
fact b: number "b"
fact k: R "k"
decision d: R default x "d"
"""


@pytest.fixture(scope="module")
def policy() -> engine.Policy:
    return engine.load(POLICY)


def case(**values: Any) -> dict[str, Any]:
    return {"category": "standard", "item_value": 10000, "part_value": 0, **values}


# ---------------------------------------------------------------------------
# Exact comparisons at the boundary (the de minimis shape: share * 100 > limit)


@pytest.mark.parametrize(
    ("part", "review"),
    [("2500", "approve"), ("2499.99", "approve"), ("2500.01", "refer"), ("10000", "refer")],
)
def test_the_boundary_is_exact(policy: engine.Policy, part: str, review: str) -> None:
    assert policy.evaluate(case(part_value=part)).value("review") == review


def test_a_quotient_with_no_finite_decimal_is_compared_exactly(policy: engine.Policy) -> None:
    # 1/3 of the value is 33.333...%: above the 25% limit; a third of 3 dollars is exactly 1.
    assert policy.evaluate(case(item_value=3, part_value=1)).value("review") == "refer"


def test_percentages_are_fractions(policy: engine.Policy) -> None:
    # sensitive: over-quarter when part > 25% * item, 2021 limit 10
    sensitive = {"category": "sensitive", "item_value": 100}
    assert policy.evaluate({**sensitive, "part_value": 25}).value("review") == "refer"  # 25% > 10%
    assert policy.evaluate({**sensitive, "part_value": "25.01"}).value("review") == "deny"
    assert policy.evaluate({**sensitive, "part_value": 5}).value("review") == "approve"


def test_number_table_values_are_dated(policy: engine.Policy) -> None:
    sensitive = {"category": "sensitive", "item_value": 100, "part_value": 6}
    assert policy.evaluate(sensitive, at="2021-06-01").value("review") == "approve"  # limit 10
    assert policy.evaluate(sensitive, at="2022-06-01").value("review") == "refer"  # limit 5


def test_derived_numbers_are_rounded_to_their_scale(policy: engine.Policy) -> None:
    decision = policy.evaluate(case(part_value="2500.5", freight="12.25", discount=1), trace=True)
    assert decision.trace is not None
    derived = decision.trace.derived
    assert derived["share"] == "0.2500"  # 0.25005 half even -> 0.2500
    assert derived["share_percent"] == "25.01"  # 25.005 half up -> 25.01
    assert derived["landed"] == "10012.25"
    assert derived["net"] == "10011.25"


def test_the_trace_shows_what_each_test_computed(policy: engine.Policy) -> None:
    decision = policy.evaluate(case(part_value="2500.01"), trace=True)
    assert decision.trace is not None
    over = decision.trace.rules[0].condition
    assert over.computed == {
        "part_value / item_value": "0.250001",
        "part_value / item_value * 100": "25.0001",
    }
    text = render_decision(decision, "text", explain=True)
    assert "computed part_value / item_value = 0.250001, part_value / item_value * 100 = 25.0001" in text
    dumped = decision.model_dump(mode="json")
    assert "computed" not in dumped["trace"]["rules"][1]["condition"]["children"][0]  # no arithmetic there


def test_division_by_zero_is_unknown_not_a_crash(policy: engine.Policy) -> None:
    decision = policy.evaluate(case(item_value=0, part_value=1), trace=True)
    assert decision.unknown == ["over-limit", "small-net"]
    assert decision.value("review") == "approve"
    assert [r.rule for r in decision.decisions["review"].undetermined_by] == ["over-limit"]
    assert decision.trace is not None
    assert decision.trace.rules[0].condition.computed["part_value / item_value"] is None
    assert decision.trace.derived["share"] is None
    text = render_decision(decision, "text", explain=True)
    assert "a division by zero" in text


def test_trusted_integers_and_validated_strings_agree(policy: engine.Policy) -> None:
    trusted = policy.decide_trusted({"category": "standard", "item_value": 3, "part_value": 1, "discount": 0})
    validated = policy.evaluate(
        {"category": "standard", "item_value": "3", "part_value": "1", "discount": "0"}
    )
    assert trusted.decisions["review"].value == validated.value("review") == "refer"


# ---------------------------------------------------------------------------
# The arithmetic helpers


def test_addition_is_exact_where_binary_floats_are_not() -> None:
    assert numbers.add(Decimal("0.1"), Decimal("0.2")) == Decimal("0.3")
    big = Decimal("123456789012345678901234567890.123456789")
    product = numbers.multiply(big, big)
    assert isinstance(product, Decimal) and Fraction(product) == Fraction(big) ** 2


@pytest.mark.parametrize(
    ("value", "mode", "expected"),
    [
        (Fraction(25005, 1000), "half_up", "25.01"),
        (Fraction(25005, 1000), "half_even", "25.00"),
        (Fraction(25015, 1000), "half_even", "25.02"),
        (Fraction(25005, 1000), "half_down", "25.00"),
        (Fraction(-25005, 1000), "half_up", "-25.01"),
        (Fraction(1, 3), "half_up", "0.33"),
        (Fraction(2, 3), "down", "0.66"),
        (Fraction(2, 3), "up", "0.67"),
        (Fraction(-2, 3), "ceiling", "-0.66"),
        (Fraction(-2, 3), "floor", "-0.67"),
        (Decimal("2.675"), "half_up", "2.68"),
        (Decimal("7"), "half_up", "7.00"),
    ],
)
def test_rounding_rules(value: Any, mode: str, expected: str) -> None:
    assert str(numbers.round_to(value, 2, mode)) == expected


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.fractions(min_value=-(10**6), max_value=10**6, max_denominator=10**6),
        st.integers(-(10**9), 10**9).map(lambda n: Fraction(n, 10**3)),
    ),
    st.sampled_from(list(numbers.ROUNDING_MODES)),
)
def test_rational_rounding_agrees_with_decimal_rounding(value: Fraction, mode: str) -> None:
    """Rounding a quotient equals rounding its exact decimal expansion (taken far enough)."""
    rounded = numbers.round_to(value, 2, mode)
    assert rounded is not None
    assert rounded.as_tuple().exponent == -2
    assert abs(Fraction(rounded) - value) < Fraction(1, 100)
    # Where the quotient has a short exact decimal, Python's decimal rounding is the reference.
    scaled = value * 10**6
    if scaled.denominator == 1:
        exact = Decimal(scaled.numerator).scaleb(-6)
        assert rounded == exact.quantize(Decimal("0.01"), rounding=numbers.ROUNDING_MODES[mode])


def test_division_by_zero_and_unknowns_have_no_value() -> None:
    assert numbers.divide(Decimal(1), Decimal(0)) is None
    assert numbers.add(None, Decimal(1)) is None
    assert numbers.smallest(Decimal(1), None) is None


# ---------------------------------------------------------------------------
# Syntax, formatting, checking


def test_percentages_parse_to_fractions_and_print_back() -> None:
    result = parse(HEADER + 'rule r "r"\n  cite "c"\n  if a > 12.5% * b\n  then decide d = y\n')
    assert result.tree is not None
    condition = result.tree.rules[0].condition
    assert isinstance(condition, s.Compare) and isinstance(condition.right, s.Arith)
    assert condition.right.left == s.Literal(Decimal("0.125"), True)
    assert s.unparse(condition) == "a > 12.5% * b"


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("a  -  (b - 1) > 0", "a - (b - 1) > 0"),
        ("(a - b) - 1 > 0", "a - b - 1 > 0"),
        ("(a + b) * 2 > 0", "(a + b) * 2 > 0"),
        ("a + (b * 2) > 0", "a + b * 2 > 0"),
        ("a / (b / 2) > 0", "a / (b / 2) > 0"),
        ("max( a ,b,1 ) >= min(a, 2 * b)", "max(a, b, 1) >= min(a, 2 * b)"),
        ("a + 1 in <2, 3>", "a + 1 in <2, 3>"),
    ],
)
def test_the_formatter_prints_arithmetic_with_only_the_needed_parentheses(
    written: str, canonical: str
) -> None:
    text = HEADER + f'rule r "r"\n  cite "c"\n  if {written}\n  then decide d = y\n'
    assert f"  if {canonical}\n" in format_text(text)


def test_a_scale_is_kept_by_the_formatter() -> None:
    text = HEADER + 'define q: number  scale 2   rounding half_up "q" = a / b\n'
    assert 'define q: number scale 2 rounding half_up "q" = a / b' in format_text(text)


@pytest.mark.parametrize(
    ("source", "code", "line"),
    [
        ('define q: number "q" = a / b\n', "unrounded-division", 12),
        ('define q: number "q" = min(a / b, 1)\n', "unrounded-division", 12),
        ('define q: number scale 2 rounding halfup "q" = a / b\n', "unknown-value", 12),
        ('fact c: number scale 2 rounding half_up "c"\n', "type-mismatch", 12),
        ('define q: R scale 2 rounding half_up "q" = k\n', "type-mismatch", 12),
        ('define q: number "q" = avg(a, b)\n', "unknown-function", 12),
        ('define q: number "q" = k + 1\n', "type-mismatch", 12),
        ('define q: number "q" = max(a)\n', "type-mismatch", 12),
        ('rule r "r"\n  cite "c"\n  if a-b > 0\n  then decide d = y\n', "unknown-fact", 14),
    ],
)
def test_number_errors_are_located_and_coded(source: str, code: str, line: int) -> None:
    result = check_text(HEADER + source, "t.policy")
    assert [(d.code, d.line) for d in result.diagnostics] == [(code, line)]
    assert result.diagnostics[0].help


def test_a_comparison_may_use_an_unrounded_quotient() -> None:
    text = HEADER + 'rule r "r"\n  cite "c"\n  if a / b > 25%\n  then decide d = y\n'
    assert check_text(text, "t.policy").diagnostics == []


def test_the_linter_does_not_call_arithmetic_rules_dead(tmp_path: Path) -> None:
    text = HEADER + 'rule r "r"\n  cite "c"\n  if a * 3 = 10 and a / 4 > 0.5\n  then decide d = y\n'
    path = tmp_path / "t.policy"
    path.write_text(text, encoding="utf-8")
    codes = {d.code for d in lint([path], LintConfig()).findings}
    assert not codes & {"rule-never-fires", "rule-shadowed"}
