"""The generated input readers agree with pydantic, and the trusted path with the validated one."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import engine
from engine.errors import CaseError

ROOT = Path(__file__).resolve().parent.parent
CASES = sorted((ROOT / "fixtures" / "cases").glob("*.json"))
VERSIONS = ["2020-03-09", "2020-10-06", "2024-07-29"]


def _pydantic_facts(policy: engine.Policy, case: dict[str, Any]) -> dict[str, Any] | None:
    compiled = policy.compiled
    data = {k: v for k, v in case.items() if not k.startswith("$")}
    try:
        model = compiled.case_model.model_validate(data)
    except Exception:
        return None
    return compiled._flatten(model.model_dump(by_alias=True))


def _mutations(case: dict[str, Any]) -> list[dict[str, Any]]:
    """Cases that are wrong, or right but not in exact JSON form, in the ways integrators slip."""
    out = []
    for key in [k for k in case if not k.startswith("$")]:
        dropped = copy.deepcopy(case)
        del dropped[key]
        out.append(dropped)
        for bad in (None, "true", 1, [], {}, ["nonsense"], "XX"):
            changed = copy.deepcopy(case)
            changed[key] = bad
            out.append(changed)
    extra = copy.deepcopy(case)
    extra["unexpected"] = 1
    out.append(extra)
    nested = copy.deepcopy(case)
    nested["end_user"]["$note"] = "metadata is only allowed at the top level"
    out.append(nested)
    return out


@pytest.mark.parametrize("version", VERSIONS)
def test_accept_matches_pydantic_on_valid_and_broken_cases(version: str) -> None:
    policy = engine.load(ROOT / "policies" / "ear-742.7", version=version)
    checked = 0
    for path in CASES:
        case = json.loads(path.read_text(encoding="utf-8"))
        for candidate in [case, *_mutations(case)]:
            fast = policy.compiled._accept(candidate)
            slow = _pydantic_facts(policy, candidate)
            if fast is not None:  # accepted without pydantic: must be exactly what pydantic gives
                assert fast == slow, (path.name, candidate)
                assert list(fast) == list(slow or {})
            checked += 1
        assert policy.compiled._accept(case) is not None, f"{path.name} should take the fast path"
    assert checked > len(CASES) * 10


@pytest.mark.parametrize("version", VERSIONS)
def test_trusted_path_decides_like_the_validated_path(version: str) -> None:
    policy = engine.load(ROOT / "policies" / "ear-742.7", version=version)
    for path in CASES:
        case = json.loads(path.read_text(encoding="utf-8"))
        validated = policy.evaluate(case)
        resolution = policy.compiled.decide_trusted(case)
        assert list(resolution.fired_ids) == validated.fired, path.name
        assert resolution.decisions == validated.decisions, path.name


def test_trusted_path_refuses_a_case_of_the_wrong_shape() -> None:
    policy = engine.load(ROOT / "policies" / "ear-742.7", version="2020-10-06")
    with pytest.raises(CaseError):
        policy.compiled.decide_trusted({"eccn": "0A978"})
