"""Decisions and traces as integrators and reviewers see them: JSON, text and Markdown.

Snapshots hold the three renderings of every fixture policy on every fixture case
(fixtures/language/cases/), with the full trace. Updating one is a decision about the
output format: say in the commit which behaviour changed and why. The intent tests below
pin what docs/trace-format.md promises: the fields, statuses and ordering guarantees.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel
from syrupy.assertion import SnapshotAssertion

import engine
from engine.models import (
    TRACE_VERSION,
    ConditionTrace,
    Conflict,
    ConflictClaim,
    Decision,
    DecisionValue,
    OutcomeItem,
    RuleRef,
    RuleStatus,
    RuleTrace,
    Trace,
)
from engine.render import format_value, render_decision, verdict
from tests.conftest import LANGUAGE

POLICIES = ["constructs.policy", "precedence.policy", "conflict.policy", "surveillance.policy"]
CASES = sorted(p.stem for p in (LANGUAGE / "cases").glob("*.json"))
AT = date(2021, 3, 1)


def facts(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((LANGUAGE / "cases" / f"{name}.json").read_text(encoding="utf-8"))
    return data


def decide(policy: str, name: str) -> Decision:
    return engine.load(LANGUAGE / policy).evaluate(facts(name), trace=True, at=AT)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("fmt", ["json", "text", "md"])
def test_rendering_snapshot(policy: str, case: str, fmt: str, snapshot: SnapshotAssertion) -> None:
    assert render_decision(decide(policy, case), fmt, explain=True) == snapshot


@pytest.mark.parametrize("fmt", ["text", "md"])
def test_rendering_without_explanation_snapshot(fmt: str, snapshot: SnapshotAssertion) -> None:
    decision = decide("precedence.policy", "biometrics-germany-ministry")
    assert render_decision(decision, fmt, explain=False) == snapshot


# ---------------------------------------------------------------------------
# The JSON contract (docs/trace-format.md)


def test_json_fields_in_order() -> None:
    data = json.loads(render_decision(decide("precedence.policy", "water-cannon-hong-kong"), "json"))
    assert list(data) == [
        "policy",
        "version",
        "title",
        "source",
        "content_hash",
        "evaluated_at",
        "decisions",
        "obligations",
        "recommendations",
        "conflicts",
        "fired",
        "unknown",
        "trace",
    ]
    assert list(data["trace"]) == ["trace_version", "facts", "derived", "rules"]
    assert data["trace"]["trace_version"] == TRACE_VERSION == 1
    assert list(data["trace"]["rules"][0]) == [
        "rule",
        "description",
        "citations",
        "status",
        "overridden_by",
        "overrides",
        "condition",
        "unless",
        "outcomes",
        "missing",
    ]
    assert list(data["trace"]["rules"][0]["condition"]) == ["condition", "kind", "value", "reads", "children"]
    assert list(data["decisions"]["license_review"]) == ["value", "default", "rules", "undetermined_by"]
    assert len(data["content_hash"]) == 64 and data["evaluated_at"] == "2021-03-01"


def test_rules_are_traced_in_policy_order_with_every_status() -> None:
    decision = decide("precedence.policy", "water-cannon-hong-kong")
    assert decision.trace is not None
    assert [r.rule for r in decision.trace.rules] == [
        "general",
        "exception",
        "exception-to-exception",
        "embargo",
    ]
    assert {r.rule: r.status for r in decision.trace.rules} == {
        "general": "overridden",
        "exception": "overridden",
        "exception-to-exception": "not_fired",
        "embargo": "fired",
    }


def test_facts_and_derived_facts_are_in_declaration_and_dependency_order() -> None:
    decision = decide("constructs.policy", "water-cannon-hong-kong")
    assert decision.trace is not None
    assert list(decision.trace.facts) == [
        "eccn",
        "control_reason",
        "capability",
        "destination",
        "end_user.type",
        "end_user.name",
        "hr_abuse_risk",
        "civil_disorder",
        "quantity",
        "unit_value",
        "application_date",
        "tags",
        "mass_surveillance",
    ]
    derived = list(decision.trace.derived)
    assert derived.index("destination_groups") < derived.index("arms_embargoed")
    # JSON values: sets are sorted lists, numbers and dates strings
    assert decision.trace.facts["control_reason"] == ["CC"]
    assert decision.trace.facts["unit_value"] == "350000.00"
    assert decision.trace.facts["application_date"] == "2020-11-02"


def test_condition_children_follow_the_source() -> None:
    decision = decide("constructs.policy", "surveillance-cameras-kenya-police")
    assert decision.trace is not None
    (logic,) = [r for r in decision.trace.rules if r.rule == "logic"]
    cond = logic.condition
    assert cond.condition == "hr_abuse_risk and (civil_disorder or not government_end_user)"
    assert cond.kind == "and"
    assert [c.condition for c in cond.children] == [
        "hr_abuse_risk",
        "civil_disorder or not government_end_user",
    ]
    inner = cond.children[1]
    assert inner.kind == "or"
    assert [(c.condition, c.kind, c.value) for c in inner.children] == [
        ("civil_disorder", "test", False),
        ("not government_end_user", "not", False),
    ]
    assert inner.children[1].children[0].reads == {"government_end_user": True, "end_user.type": "government"}
    # only leaves carry the values they read
    assert cond.reads == {} and inner.reads == {}


def test_json_round_trips_through_the_model() -> None:
    decision = decide("conflict.policy", "surveillance-cameras-kenya-police")
    again = Decision.model_validate_json(render_decision(decision, "json"))
    assert again == decision


def test_evaluation_is_deterministic() -> None:
    first = render_decision(decide("constructs.policy", "water-cannon-hong-kong"), "json")
    again = render_decision(decide("constructs.policy", "water-cannon-hong-kong"), "json")
    assert first == again


# ---------------------------------------------------------------------------
# Human formats say why


def test_text_says_why_a_decision_was_taken_and_what_was_overridden() -> None:
    text = render_decision(decide("precedence.policy", "biometrics-germany-ministry"), "text", explain=True)
    assert "license_review = favorable\n  because rule general [general rule]\n" in text
    assert "overridden: exception [exception], overridden by exception-to-exception\n" in text
    assert "an exception to exception" in text


def test_text_reports_a_conflict() -> None:
    text = render_decision(decide("conflict.policy", "surveillance-cameras-kenya-police"), "text")
    assert "license_review = (conflict)" in text
    assert (
        "CONFLICT on license_review: government-favorable says favorable, "
        "risk-not-favorable says not_favorable (no precedence between them)"
    ) in text


def test_text_names_the_missing_facts_of_unknown_rules() -> None:
    text = render_decision(
        decide("constructs.policy", "surveillance-cameras-kenya-police"), "text", explain=True
    )
    assert "unknown: string-equal [§8.1 = on strings], missing end_user.name\n" in text
    assert "unknown: decimal-more [§8.1 >], missing unit_value\n" in text


def test_markdown_has_an_outcome_table() -> None:
    md = render_decision(
        decide("surveillance.policy", "surveillance-cameras-kenya-police"), "md", explain=True
    )
    assert "| `require human-rights review` | `surveillance-review` |  |" in md
    assert "- **yes** `capability includes surveillance` — capability = {recording, surveillance}" in md


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "missing"),
        (True, "true"),
        (False, "false"),
        (["a", "b"], "{a, b}"),
        ([], "{}"),
        ("12.50", "12.50"),
    ],
)
def test_format_value(value: Any, shown: str) -> None:
    assert format_value(value) == shown


def test_verdicts() -> None:
    assert [verdict(v) for v in (True, False, None)] == ["yes", "no", "unknown"]


def test_hostile_text_is_rendered_as_text(tmp_path: Path) -> None:
    """Descriptions and citations reach the templates as data: jinja syntax in them is not run."""
    vocab = (LANGUAGE / "vocab" / "trade.vocab").read_text(encoding="utf-8")
    (tmp_path / "vocab").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "vocab" / "trade.vocab").write_text(vocab, encoding="utf-8")
    for data in ("country-groups.json", "eccn-paragraphs.json"):
        (tmp_path / "data" / data).write_text((LANGUAGE / "data" / data).read_text(encoding="utf-8"))
    (tmp_path / "p.policy").write_text(
        'policy "{{ 7*7 }}"\n  title "{% raw %}"\n  version "{{ config }}"\n  effective 2021-01-01\n'
        '  status in-force\n  source "{{ self.__init__.__globals__ }}"\n'
        'use "vocab/trade.vocab"\n'
        'rule r "{{ 6*7 }}" cite "{% for x in range(3) %}x{% endfor %}" if hr_abuse_risk then require human-rights review\n',
        encoding="utf-8",
    )
    decision = engine.load(tmp_path / "p.policy").evaluate(
        {**facts("surveillance-cameras-kenya-police"), "hr_abuse_risk": True}, trace=True
    )
    for fmt in ("text", "md", "json"):
        out = render_decision(decision, fmt, explain=True)
        assert "{{ 7*7 }}" in out  # printed as written, not evaluated
        assert "{% for x in range(3) %}x{% endfor %}" in out


# ---------------------------------------------------------------------------
# docs/trace-format.md stays true

TRACE_DOC = LANGUAGE.parent.parent / "docs" / "trace-format.md"


def _doc_json_blocks() -> list[str]:
    return re.findall(r"```json\n(.*?)```", TRACE_DOC.read_text(encoding="utf-8"), re.S)


def test_the_documented_example_is_what_the_engine_prints() -> None:
    example, unknown_rule = _doc_json_blocks()
    decision = decide("precedence.policy", "water-cannon-hong-kong")
    assert example == render_decision(decision, "json", explain=True)
    constructs = decide("constructs.policy", "surveillance-cameras-kenya-police")
    assert constructs.trace is not None
    (rule,) = [r for r in constructs.trace.rules if r.rule == "decimal-more"]
    assert json.loads(unknown_rule) == rule.model_dump(mode="json")
    assert "decimal-more" in constructs.unknown


@pytest.mark.parametrize(
    "model",
    [
        Decision,
        DecisionValue,
        RuleRef,
        OutcomeItem,
        Conflict,
        ConflictClaim,
        Trace,
        RuleTrace,
        ConditionTrace,
    ],
)
def test_every_field_is_documented(model: type[BaseModel]) -> None:
    text = TRACE_DOC.read_text(encoding="utf-8")
    for name in model.model_fields:
        assert f"`{name}`" in text, f"docs/trace-format.md does not describe `{model.__name__}.{name}`"


def test_every_status_is_documented() -> None:
    text = TRACE_DOC.read_text(encoding="utf-8")
    for status in get_args(RuleStatus):
        assert f"- `{status}`:" in text


def test_markdown_lists_each_citation_once_per_outcome(in_root: Path) -> None:
    """Two rules citing the same paragraph: the Citations cell names it once (issue 18)."""
    import json

    import engine

    policy = engine.load("policies/ear-742.7", version="2020-10-06")
    case = json.loads(Path("fixtures/cases/water-cannon-hong-kong-police.json").read_text(encoding="utf-8"))
    text = engine.render_decision(policy.evaluate(case, trace=True), "md", explain=False)
    row = next(line for line in text.splitlines() if line.startswith("| `license_review"))
    assert row.count("15 CFR 742.7(b)(1)") == 1
