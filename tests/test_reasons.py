"""Case rejections read the same whichever validator found them, and a long enumeration is not a message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import engine
from engine.errors import CaseError
from tests.conftest import LANGUAGE, ROOT

PYDANTIC_WORDS = ("Input should", "Value error", "instance of", "valid dictionary", "Extra inputs")


def _reasons(policy: engine.Policy, case: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(CaseError) as info:
        policy.validate(case)
    return dict(info.value.problems)


def test_an_unknown_country_names_the_nearest_few_and_the_count() -> None:
    policy = engine.load(ROOT / "policies" / "ear-742.7", version="2020-10-06")
    case = json.loads((ROOT / "fixtures/cases/water-cannon-hong-kong-police.json").read_text())
    reason = _reasons(policy, {**case, "destination": "HX"})["destination"]
    assert reason == (
        "'HX' is not one of the allowed values of Country (202 values; nearest: 'HK', 'HN', 'HR'; "
        "`policy schema POLICY` lists them all)"
    )
    assert _reasons(policy, {**case, "destination": "hk"})["destination"].startswith(
        "'hk' is not one of the allowed values of Country (202 values; nearest: 'HK';"
    )


def test_a_short_enumeration_is_listed_whole() -> None:
    policy = engine.load(LANGUAGE / "surveillance.policy")
    case = json.loads((LANGUAGE / "cases" / "surveillance-cameras-kenya-police.json").read_text())
    reason = _reasons(policy, {**case, "control_reason": ["XX"]})["control_reason[0]"]
    assert reason == "'XX' is not one of the allowed values ('NS', 'CC', 'AT', 'SS' or 'infosec')"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("eccn", 1, "must be a string, not 1"),
        ("capability", "x", "must be a list of Capability values, not 'x'"),
        ("end_user", "x", "must be an object of facts, not 'x'"),
        ("hr_abuse_risk", "yes", "must be true or false, not 'yes'"),
        ("quantity", "abc", 'must be a number, or a decimal string like "12.50"'),
        ("application_date", "2021-02-30", "'2021-02-30' is not a day of the calendar"),
        ("application_date", 1609459200, "must be a date written YYYY-MM-DD"),
        ("tags", [1], "must be a string, not 1"),
        ("unknown", 1, "is not a fact of this policy"),
        ("hr_abuse_risk", "\x1b[31mred", "must be true or false, not '\\x1b[31mred'"),
    ],
)
def test_every_reason_is_in_the_engines_words(field: str, value: Any, expected: str) -> None:
    policy = engine.load(LANGUAGE / "surveillance.policy")
    case = json.loads((LANGUAGE / "cases" / "surveillance-cameras-kenya-police.json").read_text())
    reasons = _reasons(policy, {**case, field: value})
    (found,) = reasons.values()
    assert found == expected
    assert not any(word in found for word in PYDANTIC_WORDS)
    assert "\x1b" not in found  # a typed escape code arrives escaped


def test_no_reason_over_the_fixture_cases_uses_pydantic_words(in_root: Path) -> None:
    """Every bundled case under a policy it does not fit: all the reasons, none in pydantic's words."""
    policy = engine.load("policies/ear-742.11/1996-03-25.policy")
    seen = 0
    for file in sorted(Path("fixtures/language/cases").glob("*.json")):
        try:
            policy.validate(json.loads(file.read_text()))
        except CaseError as exc:
            seen += len(exc.problems)
            assert not any(w in r for _, r in exc.problems for w in PYDANTIC_WORDS), exc.problems
    assert seen > 0
