"""Defects that gave wrong answers (issue 11): each test pins the fix.

* what `evaluate` returns is read-only: a caller cannot edit the decision it got and so
  change the answers later calls get, in any thread (engine/frozen.py);
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import engine

ROOT = Path(__file__).resolve().parent.parent
CASE = json.loads((ROOT / "fixtures" / "cases" / "aircraft-parts-burma-air-force.json").read_text("utf-8"))


def attempts(decision: engine.Decision) -> list[Callable[[], Any]]:
    """Everything a careless caller might do to the object it was given."""
    value = decision.decisions["license_review"]
    return [
        decision.obligations.clear,
        lambda: decision.obligations.append(decision.obligations[0]),
        lambda: decision.fired.pop(),
        lambda: decision.decisions.pop("license_review"),
        lambda: decision.decisions.__setitem__("license_review", value),
        value.rules.clear,
        lambda: value.rules[0].citations.append("x"),
        lambda: decision.obligations[0].rules.clear(),
        lambda: decision.unknown.extend(["x"]),
    ]


def vandalise(decision: engine.Decision) -> None:
    for attempt in attempts(decision):
        with pytest.raises(TypeError, match="cannot be changed"):
            attempt()


@pytest.fixture(scope="module")
def policy() -> engine.Policy:
    return engine.load(ROOT / "policies" / "ear-742.7", at=date(2021, 1, 1))


@pytest.mark.parametrize("trace", [False, True])
def test_a_returned_decision_cannot_be_changed(policy: engine.Policy, trace: bool) -> None:
    expected = policy.evaluate(CASE, trace=trace).model_dump(mode="json")
    assert expected["obligations"] and expected["decisions"]["license_review"]["rules"]
    vandalise(policy.evaluate(CASE, trace=trace))
    assert policy.evaluate(CASE, trace=trace).model_dump(mode="json") == expected
    copy = policy.evaluate(CASE).model_copy(deep=True)  # a deep copy is the caller's own, and mutable
    copy.obligations.clear()
    assert policy.evaluate(CASE).obligation_names == ["human-rights review"]


def test_mutation_attempts_in_threads_change_nothing(policy: engine.Policy) -> None:
    expected = policy.evaluate(CASE).model_dump(mode="json")
    seen: list[bool] = []

    def work() -> None:
        for _ in range(100):
            decision = policy.evaluate(CASE)
            seen.append(decision.model_dump(mode="json") == expected)
            vandalise(decision)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 400 and all(seen)


def test_the_trusted_resolution_is_read_only(policy: engine.Policy) -> None:
    facts = policy.compiled.validate(CASE)
    resolution = policy.compiled.resolve(tuple(policy.compiled.fired(facts, date(2021, 1, 1))))
    with pytest.raises(TypeError):
        resolution.decisions.pop("license_review")
    with pytest.raises(TypeError):
        resolution.decisions["license_review"].rules.clear()
    assert policy.evaluate(CASE).value("license_review") == "not_favorable"
