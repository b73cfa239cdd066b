"""The compiled evaluator: what each construct decides, unknowns, precedence, conflicts, dates, threads.

Expectations are written by hand from docs/language.md, against the fixture policies of
fixtures/language/ (one rule per construct in constructs.policy, the precedence chain in
precedence.policy, two disagreeing rules in conflict.policy, the brief's sentence in
surveillance.policy). Renderings are snapshotted in test_trace_render.py.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import engine
from engine import api
from engine.errors import CaseError
from engine.models import ConditionTrace, Decision, RuleTrace
from tests.conftest import LANGUAGE, ROOT

#: A case of the test vocabulary on which no rule of constructs.policy fires, except the one
#: testing that `application_date` is missing.
BASE: dict[str, Any] = {
    "eccn": "EAR99",
    "control_reason": [],
    "capability": [],
    "destination": "US",
    "end_user": {"type": "private"},
    "hr_abuse_risk": False,
    "civil_disorder": False,
    "quantity": 50,
    "tags": [],
}


def case(**changes: Any) -> dict[str, Any]:
    """BASE with changes; `end_user__name="x"` sets a field of a record."""
    out = copy.deepcopy(BASE)
    for key, value in changes.items():
        if "__" in key:
            record, field = key.split("__")
            out.setdefault(record, {})[field] = value
        else:
            out[key] = value
    return out


def load(name: str) -> api.Policy:
    return engine.load(LANGUAGE / name)


def statuses(decision: Decision) -> dict[str, str]:
    assert decision.trace is not None
    return {r.rule: r.status for r in decision.trace.rules}


def rule_trace(decision: Decision, rule: str) -> RuleTrace:
    assert decision.trace is not None
    (found,) = [r for r in decision.trace.rules if r.rule == rule]
    return found


# ---------------------------------------------------------------------------
# Every construct: a case where it holds and a near miss where it does not

CONSTRUCTS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    # rule, changes that make it fire, changes that do not
    (
        "logic",
        {"hr_abuse_risk": True},  # not government_end_user
        {"hr_abuse_risk": True, "end_user": {"type": "government"}},
    ),
    ("bare-fact", {"hr_abuse_risk": True}, {}),
    ("bare-derived", {"destination": "CN"}, {"destination": "IN"}),
    ("bare-derived", {"destination": "MO"}, {"destination": "DE"}),
    ("equal-enum", {"end_user": {"type": "government"}}, {"end_user": {"type": "government_linked"}}),
    ("not-equal", {"destination": "DE"}, {"destination": "US"}),
    ("number-less", {"quantity": 9}, {"quantity": 10}),
    ("number-less", {"quantity": "9.99"}, {"quantity": "10.00"}),
    ("number-at-least", {"quantity": 100}, {"quantity": "99.9"}),
    ("decimal-more", {"unit_value": "10.51"}, {"unit_value": "10.50"}),
    ("date-on-or-after", {"application_date": "2020-10-06"}, {"application_date": "2020-10-05"}),
    ("date-before", {"application_date": "2020-10-05"}, {"application_date": "2020-10-06"}),
    (
        "string-equal",
        {"end_user": {"type": "private", "name": "Acme"}},
        {"end_user": {"type": "private", "name": "acme"}},
    ),
    ("boolean-equal", {"mass_surveillance": True}, {"mass_surveillance": False}),
    ("in-scalar", {"destination": "HK"}, {"destination": "KE"}),
    ("in-set", {"control_reason": ["NS", "infosec"]}, {"control_reason": ["NS", "AT"]}),
    ("in-set", {"control_reason": ["CC"]}, {"control_reason": []}),
    ("in-group", {"eccn": "0D977"}, {"eccn": "0A978"}),
    ("includes-one", {"capability": ["recording", "surveillance"]}, {"capability": ["recording"]}),
    ("includes-any", {"capability": ["location_tracking"]}, {"capability": ["sensors", "recording"]}),
    ("includes-all", {"control_reason": ["CC", "NS", "AT"]}, {"control_reason": ["CC", "AT"]}),
    ("includes-string", {"tags": ["bulk", "urgent"]}, {"tags": ["Urgent"]}),
    ("in-table", {"eccn": "3A981"}, {"eccn": "3A982"}),
    ("lookup-scalar", {"eccn": "0A978"}, {"eccn": "3A981"}),
    ("lookup-set", {"destination": "CN"}, {"destination": "DE"}),
    ("name-present", {"end_user": {"type": "private", "name": ""}}, {}),
    ("date-missing", {}, {"application_date": "2021-01-01"}),
    (
        "unless-clause",
        {"end_user": {"type": "government"}, "destination": "KE"},
        {"end_user": {"type": "government"}, "destination": "DE"},
    ),
    (
        "unless-clause",
        {"end_user": {"type": "government_linked"}, "destination": "IN"},
        {"end_user": {"type": "individual"}, "destination": "IN"},
    ),
]


@pytest.mark.parametrize(
    ("rule", "fires", "misses"), CONSTRUCTS, ids=[f"{r}-{i}" for i, (r, _, _) in enumerate(CONSTRUCTS)]
)
def test_construct(rule: str, fires: dict[str, Any], misses: dict[str, Any]) -> None:
    policy = load("constructs.policy")
    hit = policy.evaluate(case(**fires), trace=True)
    miss = policy.evaluate(case(**misses), trace=True)
    assert rule in hit.fired
    assert statuses(hit)[rule] == "fired"
    assert rule not in miss.fired
    assert statuses(miss)[rule] == "not_fired"


def test_the_base_case_fires_only_the_missing_date_rule() -> None:
    decision = load("constructs.policy").evaluate(BASE, trace=True)
    assert decision.fired == ["date-missing"]
    assert decision.obligation_names == ["flagged"]
    assert [r.rule for r in decision.obligations[0].rules] == ["date-missing"]
    # rules reading a missing optional fact, or a key with no table entry, are unknown
    assert sorted(decision.unknown) == sorted(
        ["decimal-more", "date-on-or-after", "date-before", "string-equal", "boolean-equal", "lookup-scalar"]
    )
    assert decision.decisions["license_review"].value == "not_applicable"
    assert decision.decisions["license_review"].default is True


def test_obligations_accumulate_over_every_effective_rule() -> None:
    decision = load("constructs.policy").evaluate(
        case(hr_abuse_risk=True, destination="CN", application_date="2021-01-01")
    )
    (flagged,) = decision.obligations
    assert flagged.name == "flagged"
    assert flagged.description == "the rule's construct held for the case"
    assert [r.rule for r in flagged.rules] == decision.fired
    assert {"logic", "bare-fact", "bare-derived", "in-scalar", "lookup-set", "date-on-or-after"} <= set(
        decision.fired
    )


def test_a_set_valued_fact_is_in_a_set_when_any_of_its_values_is() -> None:
    policy = load("constructs.policy")
    assert "in-set" in policy.evaluate(case(control_reason=["AT", "SS", "infosec"])).fired
    assert "in-set" not in policy.evaluate(case(control_reason=["AT", "SS"])).fired


def test_includes_all_of_the_empty_set_and_any_of_nothing() -> None:
    policy = engine.load(LANGUAGE / "constructs.policy")
    decision = policy.evaluate(case(control_reason=["CC", "NS"], capability=[]), trace=True)
    assert statuses(decision)["includes-all"] == "fired"
    assert statuses(decision)["includes-any"] == "not_fired"


# ---------------------------------------------------------------------------
# Unknown values: Kleene logic over missing optional facts

KLEENE = """use "vocab/trade.vocab"
obligation flagged "held"
rule and-rule if hr_abuse_risk and mass_surveillance then require flagged
rule or-rule if hr_abuse_risk or mass_surveillance then require flagged
rule not-rule if not mass_surveillance then require flagged
rule unless-rule if hr_abuse_risk unless mass_surveillance then require flagged
rule derived-rule if named_acme then require flagged
rule present-rule if mass_surveillance is present then require flagged
rule missing-rule if mass_surveillance is missing then require flagged
rule table-key-rule if eccn_paragraph[end_user.name] = "(a)(1)" then require flagged
rule table-has-rule if end_user.name in eccn_paragraph then require flagged
rule set-lookup-rule if not (country_groups[destination] includes D5) then require flagged
"""


@pytest.fixture
def kleene(write_policy: Callable[..., Path]) -> api.Policy:
    return engine.load(write_policy(KLEENE))


@pytest.mark.parametrize(
    ("risk", "expected"),
    [
        (
            False,
            {
                "and-rule": "not_fired",  # false and unknown = false
                "or-rule": "unknown",  # false or unknown = unknown
                "not-rule": "unknown",  # not unknown = unknown
                "unless-rule": "not_fired",  # the condition is false: the unless clause does not matter
            },
        ),
        (
            True,
            {
                "and-rule": "unknown",  # true and unknown = unknown
                "or-rule": "fired",  # true or unknown = true
                "not-rule": "unknown",
                "unless-rule": "unknown",  # true, unless unknown: cannot tell
            },
        ),
    ],
)
def test_kleene_logic(kleene: api.Policy, risk: bool, expected: dict[str, str]) -> None:
    decision = kleene.evaluate(case(hr_abuse_risk=risk), trace=True)
    got = statuses(decision)
    assert {rule: got[rule] for rule in expected} == expected
    for rule, status in expected.items():
        trace = rule_trace(decision, rule)
        assert trace.missing == (["mass_surveillance"] if status == "unknown" else [])


def test_unknowns_never_fire_and_are_reported(kleene: api.Policy) -> None:
    decision = kleene.evaluate(case(hr_abuse_risk=True), trace=True)
    assert set(decision.fired) == {"or-rule", "missing-rule", "set-lookup-rule"}
    assert set(decision.unknown) == {
        "and-rule",
        "not-rule",
        "unless-rule",
        "derived-rule",
        "table-key-rule",
        "table-has-rule",
    }
    assert [r.rule for r in decision.obligations[0].rules] == decision.fired


def test_a_known_value_settles_what_was_unknown(kleene: api.Policy) -> None:
    decision = kleene.evaluate(
        case(hr_abuse_risk=True, mass_surveillance=False, end_user={"type": "private", "name": "Acme"}),
        trace=True,
    )
    assert decision.unknown == ["table-key-rule"]  # `Acme` has no entry in the table
    assert statuses(decision) == {
        "and-rule": "not_fired",
        "or-rule": "fired",
        "not-rule": "fired",
        "unless-rule": "fired",
        "derived-rule": "fired",
        "present-rule": "fired",
        "missing-rule": "not_fired",
        "table-key-rule": "unknown",
        "table-has-rule": "not_fired",
        "set-lookup-rule": "fired",
    }


def test_unknown_through_a_derived_fact_names_the_missing_fact(kleene: api.Policy) -> None:
    decision = kleene.evaluate(BASE, trace=True)
    trace = rule_trace(decision, "derived-rule")
    assert trace.status == "unknown"
    assert trace.missing == ["end_user.name"]
    assert trace.condition.value is None
    # the values read include the facts behind a derived fact
    assert trace.condition.reads == {"named_acme": None, "end_user.name": None}
    assert decision.trace is not None
    assert decision.trace.derived["named_acme"] is None


def test_a_lookup_with_a_missing_key_is_unknown_not_empty(kleene: api.Policy) -> None:
    decision = kleene.evaluate(BASE, trace=True)
    for rule in ("table-key-rule", "table-has-rule"):
        trace = rule_trace(decision, rule)
        assert (trace.status, trace.missing, trace.condition.value) == ("unknown", ["end_user.name"], None)


def test_a_set_valued_lookup_of_a_key_without_entry_is_the_empty_set(kleene: api.Policy) -> None:
    decision = kleene.evaluate(case(destination="US"), trace=True)  # US has no Country Groups entry
    assert statuses(decision)["set-lookup-rule"] == "fired"


# ---------------------------------------------------------------------------
# Missing optional facts and undetermined decisions


def test_a_decision_hanging_on_a_missing_fact_says_which_rules_leave_it_open(
    write_policy: Callable[..., Path],
) -> None:
    policy = engine.load(
        write_policy(
            'use "vocab/trade.vocab"\n'
            "rule mass-surveillance-denied if mass_surveillance then decide license_review = denial\n"
        )
    )
    open_decision = policy.evaluate(BASE)
    value = open_decision.decisions["license_review"]
    assert (value.value, value.default) == ("not_applicable", True)
    assert [r.rule for r in value.undetermined_by] == ["mass-surveillance-denied"]
    assert open_decision.unknown == ["mass-surveillance-denied"]
    known = policy.evaluate(case(mass_surveillance=True)).decisions["license_review"]
    assert (known.value, known.default, known.undetermined_by) == ("denial", False, [])


def test_an_optional_record_may_be_left_out(write_policy: Callable[..., Path]) -> None:
    policy = engine.load(
        write_policy(
            'fact contact.email: optional string "e-mail"\nfact contact.phone: optional string "phone"\n'
            'enum R "r" = <yes, no>\ndecision d: R default no "d"\n'
            "rule has-email if contact.email is present then decide d = yes\n"
        )
    )
    assert policy.evaluate({}).value("d") == "no"
    assert policy.evaluate({"contact": {}}).value("d") == "no"
    assert policy.evaluate({"contact": {"email": "a@b"}}).value("d") == "yes"


# ---------------------------------------------------------------------------
# Precedence


@pytest.mark.parametrize(
    ("changes", "review", "fired", "overridden", "obligations", "recommendations"),
    [
        pytest.param(
            {"control_reason": ["CC"], "destination": "KE"},
            "favorable",
            ["general"],
            {},
            [],
            [],
            id="general",
        ),
        pytest.param(
            {"control_reason": ["CC"], "destination": "KE", "hr_abuse_risk": True},
            "not_favorable",
            ["exception"],
            {"general": ["exception"]},
            ["human-rights review"],
            [],
            id="exception",
        ),
        pytest.param(
            {"control_reason": ["CC"], "destination": "DE", "hr_abuse_risk": True},
            "favorable",
            ["general", "exception-to-exception"],
            {"exception": ["exception-to-exception"]},
            [],
            ["review-product-capabilities"],
            id="exception-to-exception-restores-the-general-rule",
        ),
        pytest.param(
            {"control_reason": ["NS"], "destination": "DE", "hr_abuse_risk": True},
            "not_applicable",
            ["exception-to-exception"],
            {},
            [],
            ["review-product-capabilities"],
            id="no-general-rule-to-restore",
        ),
        pytest.param(
            {"control_reason": ["CC"], "destination": "CN"},
            "denial",
            ["embargo"],
            {"general": ["embargo"]},
            ["end-use check"],
            [],
            id="embargo",
        ),
        pytest.param(
            {"control_reason": ["CC"], "destination": "CN", "hr_abuse_risk": True},
            "denial",
            ["embargo"],
            {"general": ["embargo"], "exception": ["embargo"]},
            ["end-use check"],
            [],
            id="embargo-over-both",
        ),
    ],
)
def test_precedence(
    changes: dict[str, Any],
    review: str,
    fired: list[str],
    overridden: dict[str, list[str]],
    obligations: list[str],
    recommendations: list[str],
) -> None:
    decision = load("precedence.policy").evaluate(case(**changes), trace=True)
    assert decision.value("license_review") == review
    assert decision.fired == fired
    assert decision.conflicts == []
    assert decision.obligation_names == obligations
    assert decision.recommendation_names == recommendations
    assert decision.trace is not None
    got = {r.rule: r.overridden_by for r in decision.trace.rules if r.status == "overridden"}
    assert got == overridden
    for rule in decision.trace.rules:
        assert (rule.status == "fired") == (rule.rule in fired)


def test_the_rules_behind_a_decision_are_the_effective_ones() -> None:
    decision = load("precedence.policy").evaluate(
        case(control_reason=["CC"], destination="KE", hr_abuse_risk=True)
    )
    (ref,) = decision.decisions["license_review"].rules
    assert (ref.rule, ref.citations, ref.description) == (
        "exception",
        ["exception"],
        "A human-rights risk removes the favourable presumption",
    )


def test_an_overridden_rule_that_hangs_on_an_unknown_is_not_reported_unknown(
    write_policy: Callable[..., Path],
) -> None:
    policy = engine.load(
        write_policy(
            'use "vocab/trade.vocab"\n'
            "rule open if mass_surveillance then decide license_review = favorable\n"
            "rule closed overrides open if hr_abuse_risk then decide license_review = denial\n"
        )
    )
    decision = policy.evaluate(case(hr_abuse_risk=True))
    assert decision.value("license_review") == "denial"
    assert decision.unknown == []
    assert decision.decisions["license_review"].undetermined_by == []


# ---------------------------------------------------------------------------
# Conflicts


CONFLICTING = case(end_user={"type": "government"}, hr_abuse_risk=True)


def test_a_conflict_is_reported_with_no_value() -> None:
    decision = load("conflict.policy").evaluate(CONFLICTING, trace=True)
    value = decision.decisions["license_review"]
    assert value.value is None
    assert value.default is False
    assert [r.rule for r in value.rules] == ["government-favorable", "risk-not-favorable"]
    (conflict,) = decision.conflicts
    assert conflict.decision == "license_review"
    assert [(c.rule, c.value, c.citations) for c in conflict.claims] == [
        ("government-favorable", "favorable", ["test (a)"]),
        ("risk-not-favorable", "not_favorable", ["test (b)"]),
    ]
    # other outcomes of the conflicting rules still count
    assert decision.obligation_names == ["human-rights review"]
    assert statuses(decision) == {"government-favorable": "fired", "risk-not-favorable": "fired"}


def test_a_conflict_is_never_settled_by_rule_order(tmp_path: Path) -> None:
    text = (LANGUAGE / "conflict.policy").read_text(encoding="utf-8")
    head, rules = text.split("\nrule government-favorable", 1)
    first, second = ("rule government-favorable" + rules).split("\n\n", 1)
    swapped = (
        head.replace('"vocab/trade.vocab"', f'"{LANGUAGE}/vocab/trade.vocab"')
        + "\n"
        + second
        + "\n\n"
        + first
    )
    path = tmp_path / "swapped.policy"
    path.write_text(swapped, encoding="utf-8")
    policy = engine.load(path)
    assert [r.id for r in policy.compiled.program.rules] == ["risk-not-favorable", "government-favorable"]
    decision = policy.evaluate(CONFLICTING)
    assert decision.value("license_review") is None
    assert {c.rule for c in decision.conflicts[0].claims} == {"government-favorable", "risk-not-favorable"}


def test_agreeing_rules_are_no_conflict(write_policy: Callable[..., Path]) -> None:
    policy = engine.load(
        write_policy(
            'use "vocab/trade.vocab"\n'
            "rule a if hr_abuse_risk then decide license_review = not_favorable\n"
            "rule b if civil_disorder then decide license_review = not_favorable\n"
        )
    )
    decision = policy.evaluate(case(hr_abuse_risk=True, civil_disorder=True))
    assert decision.value("license_review") == "not_favorable"
    assert [r.rule for r in decision.decisions["license_review"].rules] == ["a", "b"]
    assert decision.conflicts == []


def test_the_witness_of_policy_check_is_a_real_conflict(in_root: Path) -> None:
    (result,) = api.check(["fixtures/language/conflict.policy"])
    (diagnostic,) = result.diagnostics
    match = re.search(r"for example when (.*?);", diagnostic.help or "")
    assert match
    witness = case()
    for assignment in match.group(1).split(", "):
        name, value = assignment.split(" = ")
        parsed: Any = {"true": True, "false": False}.get(value, value.strip('"'))
        if "." in name:
            record, field = name.split(".")
            witness[record][field] = parsed
        else:
            witness[name] = parsed
    decision = load("conflict.policy").evaluate(witness)
    assert decision.value("license_review") is None
    assert len(decision.conflicts) == 1


# ---------------------------------------------------------------------------
# Dates: dated table entries, the evaluation date


@pytest.mark.parametrize(
    ("at", "groups", "review"),
    [
        (date(2020, 12, 22), ["B"], "favorable"),
        (date(2020, 12, 23), ["D1", "D5"], "denial"),
    ],
)
def test_dated_table_entries(at: date, groups: list[str], review: str) -> None:
    decision = load("precedence.policy").evaluate(
        case(control_reason=["CC"], destination="HK"), trace=True, at=at
    )
    assert decision.evaluated_at == at
    assert decision.trace is not None
    assert decision.trace.derived["destination_groups"] == groups
    assert decision.value("license_review") == review


@pytest.mark.parametrize(
    ("eccn", "at", "listed"),
    [
        ("0A977", date(2020, 10, 5), False),  # added on 2020-10-06
        ("0A977", date(2020, 10, 6), True),
        ("4A003", date(2020, 10, 5), True),  # removed after 2020-10-05 (ends is inclusive)
        ("4A003", date(2020, 10, 6), False),
        ("0A978", date(1990, 1, 1), True),  # undated: always in force
    ],
)
def test_key_in_table_follows_the_evaluation_date(eccn: str, at: date, listed: bool) -> None:
    decision = load("constructs.policy").evaluate(case(eccn=eccn), at=at)
    assert ("in-table" in decision.fired) is listed


def test_the_evaluation_date_defaults_to_the_version_effective_date() -> None:
    policy = load("constructs.policy")
    assert policy.evaluate(BASE).evaluated_at == date(2021, 1, 1)
    assert policy.evaluate(BASE, at=date(2030, 5, 1)).evaluated_at == date(2030, 5, 1)


# ---------------------------------------------------------------------------
# Derived facts


def test_derived_facts_are_computed_and_traced() -> None:
    decision = load("constructs.policy").evaluate(
        case(destination="MO", end_user={"type": "government_linked"}), trace=True
    )
    assert decision.trace is not None
    assert decision.trace.derived == {
        "destination_groups": ["D1"],
        "arms_embargoed": True,  # Macau, though not in D5
        "government_end_user": True,
        "crime_control_item": False,
        "named_acme": None,
    }
    trace = rule_trace(decision, "bare-derived")
    assert trace.condition.reads == {
        "arms_embargoed": True,
        "destination_groups": ["D1"],
        "destination": "MO",
    }


# ---------------------------------------------------------------------------
# The brief's sentence


SURVEILLANCE = {
    "fires with CC": ({"control_reason": ["CC"], "capability": ["surveillance"]}, "fired"),
    "fires with infosec": (
        {"control_reason": ["NS", "infosec"], "capability": ["surveillance", "sensors"]},
        "fired",
    ),
    "not without CC or infosec": ({"control_reason": ["NS"], "capability": ["surveillance"]}, "not_fired"),
    "not without surveillance": ({"control_reason": ["CC"], "capability": ["recording"]}, "not_fired"),
    "not for nothing": ({}, "not_fired"),
}


@pytest.mark.parametrize("name", list(SURVEILLANCE))
def test_the_brief_sentence(name: str) -> None:
    changes, status = SURVEILLANCE[name]
    facts = case(**changes)
    decision = load("surveillance.policy").evaluate(facts, trace=True)
    assert statuses(decision) == {"surveillance-review": status}
    assert decision.obligation_names == (["human-rights review"] if status == "fired" else [])
    # the trace shows why: both parts of the condition, their values, and what they read
    trace = rule_trace(decision, "surveillance-review")
    condition = trace.condition
    assert condition.condition == "control_reason in <CC, infosec> and capability includes surveillance"
    assert condition.kind == "and"
    reasons, capability = condition.children
    assert reasons == ConditionTrace(
        condition="control_reason in <CC, infosec>",
        value=bool({"CC", "infosec"} & set(facts["control_reason"])),
        reads={"control_reason": sorted(facts["control_reason"])},
    )
    assert capability == ConditionTrace(
        condition="capability includes surveillance",
        value="surveillance" in facts["capability"],
        reads={"capability": sorted(facts["capability"])},
    )
    assert condition.value is (status == "fired")


# ---------------------------------------------------------------------------
# Invalid cases


def test_an_invalid_case_lists_every_bad_field() -> None:
    bad = {
        "eccn": 3,
        "control_reason": ["CC", "XX"],
        "capability": "surveillance",
        "destination": "FR",
        "end_user": {"type": "government", "nickname": "x"},
        "hr_abuse_risk": "perhaps",
        "quantity": "many",
        "application_date": "2021-02-30",
        "tags": [],
        "colour": "red",
    }
    with pytest.raises(CaseError) as caught:
        load("constructs.policy").evaluate(bad)
    problems = dict(caught.value.problems)
    assert set(problems) == {
        "eccn",
        "control_reason[1]",
        "capability",
        "destination",
        "end_user.nickname",
        "hr_abuse_risk",
        "civil_disorder",
        "quantity",
        "application_date",
        "colour",
    }
    assert problems["civil_disorder"] == "is required but missing"
    assert problems["colour"].startswith("is not a fact of this policy")  # + a did-you-mean if one is close
    assert problems["end_user.nickname"] == "is not a fact of this policy; did you mean `name`?"
    assert problems["control_reason[1]"].startswith("'XX' is not one of the allowed values")
    assert problems["destination"].startswith("'FR' is not one of the allowed values")
    assert "invalid case:" in str(caught.value) and "  colour: is not a fact of this policy" in str(
        caught.value
    )


def test_a_missing_record_is_reported_by_its_name() -> None:
    bad = {k: v for k, v in BASE.items() if k != "end_user"}
    with pytest.raises(CaseError) as caught:
        load("constructs.policy").validate(bad)
    assert caught.value.problems == [("end_user", "is required but missing")]


@pytest.mark.parametrize("not_a_case", [[], "case", 3, None])
def test_a_case_must_be_an_object(not_a_case: Any) -> None:
    with pytest.raises(CaseError) as caught:
        load("constructs.policy").evaluate(not_a_case)
    ((path, reason),) = caught.value.problems
    assert path == "(case)" and reason.startswith("a case is a JSON object")


def test_validate_normalises_values() -> None:
    facts = load("constructs.policy").validate(
        case(quantity="12.50", unit_value=3, control_reason=["CC", "CC", "NS"], application_date="2020-10-06")
        | {"$comment": "ignored"}
    )
    assert facts["quantity"] == Decimal("12.50")
    assert facts["unit_value"] == Decimal(3)
    assert facts["control_reason"] == frozenset({"CC", "NS"})
    assert facts["application_date"] == date(2020, 10, 6)
    assert facts["end_user.name"] is None
    assert "$comment" not in facts


# ---------------------------------------------------------------------------
# Traced and untraced evaluation agree; one compiled policy serves many threads


def _fixture_cases() -> list[dict[str, Any]]:
    cases = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((LANGUAGE / "cases").glob("*.json"))]
    return (
        cases
        + [case(**fires) for _, fires, _ in CONSTRUCTS]
        + [case(**misses) for _, _, misses in CONSTRUCTS]
    )


def _bundled() -> list[tuple[Path, str]]:
    return [
        (folder, version.version)
        for folder in sorted((ROOT / "policies").iterdir())
        if folder.is_dir() and folder.name != "shared"
        for version in engine.read_versions(folder)
    ]


def _outcome(decision: Decision) -> dict[str, Any]:
    return decision.model_dump(mode="json", exclude={"trace"})


@pytest.mark.parametrize(
    "name", ["constructs.policy", "precedence.policy", "conflict.policy", "surveillance.policy", "demo"]
)
def test_traced_and_untraced_give_the_same_outcomes(name: str) -> None:
    policy = load(name) if name.endswith(".policy") else engine.load(LANGUAGE / name, at=date(2021, 1, 1))
    for facts in _fixture_cases():
        for at in (None, date(2020, 12, 22), date(2020, 12, 23)):
            traced = policy.evaluate(facts, trace=True, at=at)
            untraced = policy.evaluate(facts, at=at)
            assert untraced.trace is None and traced.trace is not None
            assert _outcome(traced) == _outcome(untraced)


@pytest.mark.parametrize(("folder", "version"), _bundled(), ids=lambda v: getattr(v, "name", v))
def test_traced_and_untraced_agree_on_the_bundled_cases(folder: Path, version: str) -> None:
    policy = engine.load(folder, version=version)
    own = ROOT / "fixtures" / "cases" / folder.name  # a policy with its own case contract
    for path in sorted((own if own.is_dir() else ROOT / "fixtures" / "cases").glob("*.json")):
        facts = json.loads(path.read_text(encoding="utf-8"))
        assert _outcome(policy.evaluate(facts, trace=True)) == _outcome(policy.evaluate(facts)), path.name


def test_one_compiled_policy_evaluated_from_many_threads_at_once() -> None:
    policy = load("precedence.policy")
    inputs = [
        (facts, trace, at)
        for facts in _fixture_cases()
        for trace in (False, True)
        for at in (date(2020, 12, 22), date(2020, 12, 23), date(2021, 6, 1))
    ] * 4
    expected = [_outcome(policy.evaluate(f, trace=t, at=a)) for f, t, a in inputs]
    fresh = engine.load(LANGUAGE / "precedence.policy")
    assert fresh is policy  # cached by path and content: the same compiled object
    # start from empty caches so the threads race to fill them
    fresh.compiled._resolutions.clear()
    fresh.compiled._tables_at.clear()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(lambda args: _outcome(fresh.evaluate(args[0], trace=args[1], at=args[2])), inputs)
        )
    assert results == expected
