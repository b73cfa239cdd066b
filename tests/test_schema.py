"""`policy schema` accepts exactly what the engine accepts: the same verdict on every case.

Checked with a JSON Schema validator (jsonschema, draft 2020-12, format checking on) against
`Policy.validate` over every fixture case under every bundled policy version, and over
random cases built from a policy whose facts use every type (hypothesis).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine
from engine.cli import main
from engine.errors import CaseError
from tests.conftest import LANGUAGE, ROOT

VERSIONS = sorted((ROOT / "policies").glob("*/*.policy"))
CASE_FILES = sorted((ROOT / "fixtures" / "cases").glob("*.json")) + sorted(
    (LANGUAGE / "cases").glob("*.json")
)
ALL_TYPES = LANGUAGE / "surveillance.policy"  # its vocabulary has booleans, numbers, dates, sets, records


def _validator(policy: engine.Policy) -> jsonschema.protocols.Validator:
    schema = policy.schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _engine_accepts(policy: engine.Policy, case: Any) -> bool:
    try:
        policy.validate(case)
    except CaseError:
        return False
    return True


def _verdicts(policy: engine.Policy, validator: Any, case: Any) -> tuple[bool, bool]:
    return validator.is_valid(case), _engine_accepts(policy, case)


@pytest.mark.parametrize("version", VERSIONS, ids=lambda p: f"{p.parent.name}@{p.stem}")
def test_every_fixture_case_gets_the_same_verdict(version: Path) -> None:
    policy = engine.load(version)
    validator = _validator(policy)
    accepted = 0
    for file in CASE_FILES:
        case = json.loads(file.read_text(encoding="utf-8"))
        schema_says, engine_says = _verdicts(policy, validator, case)
        assert schema_says == engine_says, f"{file.name}: schema {schema_says}, engine {engine_says}"
        accepted += engine_says
    if version.parent.name == "ear-742.7":
        assert accepted >= 52  # every bundled case, `$comment` and all


def test_the_bundled_cases_with_comments_are_valid(in_root: Path) -> None:
    policy = engine.load("policies/ear-742.7", version="2020-10-06")
    validator = _validator(policy)
    case = json.loads((ROOT / "fixtures/cases/water-cannon-hong-kong-police.json").read_text())
    assert "$comment" in case
    assert validator.is_valid(case)


@pytest.mark.parametrize(
    ("fact", "value", "valid"),
    [
        ("quantity", "abc", False),
        ("quantity", "12.50", True),
        ("quantity", 12, True),
        ("quantity", 1.5, True),
        ("quantity", True, False),
        ("quantity", " 12", False),
        ("quantity", "12\n", False),
        ("quantity", "1_000", False),
        ("quantity", "١٢", False),
        ("application_date", "2021-01-01", True),
        ("application_date", "2021-02-30", False),
        ("application_date", 1609459200, False),
        ("application_date", "2021-01-01T00:00:00", False),
        ("application_date", "20210101", False),
        ("application_date", None, True),
    ],
)
def test_numbers_and_dates(fact: str, value: Any, valid: bool) -> None:
    policy = engine.load(ALL_TYPES)
    case = {**_base_case(policy), fact: value}
    assert _verdicts(policy, _validator(policy), case) == (valid, valid)


def test_policy_schema_command_prints_the_same_schema(in_root: Path) -> None:
    result = CliRunner().invoke(main, ["schema", "policies/ear-742.7", "--version", "2020-10-06"])
    assert result.exit_code == 0
    printed = json.loads(result.output)
    assert printed == engine.load("policies/ear-742.7", version="2020-10-06").schema()
    assert printed["patternProperties"] == {"^[$]": {}}


# ---------------------------------------------------------------------------
# Random cases


def _facts(policy: engine.Policy) -> dict[str, Any]:
    return policy.compiled.program.facts


def _base_case(policy: engine.Policy) -> dict[str, Any]:
    """A valid case: the first value of every enum, false, 1, a date, an empty set."""
    case: dict[str, Any] = {}
    for fact in _facts(policy).values():
        node = case
        *parents, leaf = fact.path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _valid_values(policy, fact)[0]
    return case


def _valid_values(policy: engine.Policy, fact: Any) -> list[Any]:
    element = fact.type.element
    if element.base == "enum":
        values: list[Any] = list(policy.compiled.program.enums[element.enum])[:3]
    else:
        values = {
            "boolean": [False, True],
            "number": [1, 0, -3, 2.5, "12.50", "1e3", ".5"],
            "string": ["x", ""],
            "date": ["2021-01-01", "1999-12-31"],
        }[element.base]
    if fact.type.is_set:
        values = [[], values[:1], values[:2]]
    if fact.optional:
        values = [*values, None]
    return values


JUNK = st.sampled_from(
    [
        "abc",
        "",
        " 1",
        "1 ",
        "1\n",
        "1,5",
        "NaN",
        "inf",
        "0x10",
        "1_0",
        "２",
        "2021-1-1",
        "2021-02-30",
        "2021-01-01\n",
        "2021-01-01T00:00",
        0,
        1,
        -1,
        1.5,
        True,
        False,
        None,
        [],
        ["x"],
        [1],
        {},
        {"a": 1},
        "government",
        "NS",
        "CN",
        "yes",
        "true",
    ]
)


def _slot(case: dict[str, Any], path: str) -> tuple[dict[str, Any], str] | None:
    """The record holding a fact and its key, or None when a corruption replaced the record."""
    *parents, leaf = path.split(".")
    node: Any = case
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    return (node, leaf) if isinstance(node, dict) else None


@st.composite
def cases(draw: Any, policy: engine.Policy) -> dict[str, Any]:
    """A valid case with random values, then up to three corruptions (junk value, missing, extra key)."""
    case = _base_case(policy)
    facts = list(_facts(policy).values())
    for fact in facts:
        slot = _slot(case, fact.path)
        assert slot is not None
        slot[0][slot[1]] = draw(st.sampled_from(_valid_values(policy, fact)))
    for _ in range(draw(st.integers(0, 3))):
        fact = draw(st.sampled_from(facts))
        slot = _slot(case, fact.path)
        if slot is None:
            continue
        node, leaf = slot
        how = draw(st.sampled_from(["junk", "junk-element", "missing", "extra", "record"]))
        if how == "junk":
            node[leaf] = draw(JUNK)
        elif how == "junk-element":
            node[leaf] = [draw(JUNK)]
        elif how == "missing":
            node.pop(leaf, None)
        elif how == "extra":
            node[draw(st.sampled_from(["$comment", "$", "unknown_fact", "$source"]))] = "note"
        elif "." in fact.path:
            case[fact.path.split(".")[0]] = draw(st.sampled_from([None, "x", {}, []]))
    if draw(st.booleans()):
        case["$comment"] = "a note"
    return case


@pytest.mark.parametrize(
    "source", [ALL_TYPES, ROOT / "policies/ear-742.7/2020-10-06.policy"], ids=lambda p: p.stem
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_cases_get_the_same_verdict(source: Path, data: Any) -> None:
    policy = engine.load(source)
    case = data.draw(cases(policy))
    schema_says, engine_says = _verdicts(policy, _validator(policy), case)
    assert schema_says == engine_says, f"schema {schema_says}, engine {engine_says}: {case!r}"
