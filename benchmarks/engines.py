"""The ONE module that knows this project's engine API (adapt it here when the API changes).

The engine entries, each from the same case dict to the same normalized answer. "Facts" are the flat,
validated facts the compiled code reads; below they come from :func:`facts_reader`: the engine's
``FastValidator`` (``engine.batch``: exactly-typed JSON accepted without pydantic, anything else
deferred to pydantic, so it accepts and rejects what ``validate`` does).

* ``raw, no trace``: facts, then ``compiled.resolve(tuple(compiled.fired(facts)))``; no pydantic in or
  out (the ``Resolution`` is cached per set of fired rules).
* ``fired-rule list``: facts, then ``compiled.decide_facts(facts)``: a pydantic ``Decision`` (cached per
  fired set and date) with its ``fired`` list, no trace.
* ``raw trace``: facts, then ``compiled.explain_raw(facts)``: every condition's value recorded and
  precedence applied, no pydantic trace models built.
* ``full trace``: facts, then ``compiled.decide_facts(facts, trace=True)``: the pydantic trace.
* ``public API, validated dict``: ``engine.load(path).evaluate(case)``: the case validated by the
  pydantic case model, a ``Decision`` out; what an application calling the library does.
* ``public API, validated dict, full trace``: the same with ``trace=True``.

An entry whose API is not there raises :class:`Pending`; the runner lists it as pending, not failed.
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from benchmarks.workload import POLICY_PATH, Answer, Case, normalize

Decide = Callable[[Case], Answer]
DECISION = "license_review"


class Pending(Exception):
    """The engine API this entry needs is not there (yet)."""


def _engine_module() -> Any:
    try:
        import engine
    except ImportError as exc:  # pragma: no cover - the project is installed in its venvs
        raise Pending(f"cannot import engine: {exc}") from exc
    return engine


def _need(obj: Any, name: str, what: str) -> Any:
    found = getattr(obj, name, None)
    if found is None:
        raise Pending(f"{what} is not there yet")
    return found


def load_policy(path: Path | str = POLICY_PATH) -> Any:
    """Parse, check and compile a policy file with the public API (``engine.load``)."""
    engine = _engine_module()
    load: Any = getattr(engine, "load", None)
    if load is None:
        try:
            api = importlib.import_module("engine.api")
        except ImportError:
            raise Pending("engine.load is not there yet") from None
        load = _need(api, "load", "engine.load")
    return load(str(path))


def _text(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    return value if type(value) is str else str(value)


def answer_of(decision: Any, decision_name: str = DECISION) -> Answer:
    """Normalize a ``Decision`` (or a runtime ``Resolution``): the decision's value, sorted obligations."""
    return normalize(_text(decision.decisions[decision_name].value), [o.name for o in decision.obligations])


def facts_reader(policy: Any) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A case dict -> validated flat facts, by the engine's fast validator (pydantic when it defers)."""
    compiled = _need(policy, "compiled", "Policy.compiled")
    try:
        batch = importlib.import_module("engine.batch")
    except ImportError:
        raise Pending("engine.batch (FastValidator) is not there yet") from None
    fast = _need(batch, "FastValidator", "engine.batch.FastValidator")(compiled.program)
    validate_case = _need(batch, "validate_case", "engine.batch.validate_case")

    def read(case: Mapping[str, Any]) -> dict[str, Any]:
        facts: dict[str, Any] = validate_case(compiled, fast, case)
        return facts

    return read


def raw_decider(policy: Any, decision_name: str = DECISION) -> Decide:
    """The compiled fast path: fired rules, then precedence; no pydantic in or out."""
    compiled = _need(policy, "compiled", "Policy.compiled")
    fired = _need(compiled, "fired", "CompiledPolicy.fired")
    resolve = _need(compiled, "resolve", "CompiledPolicy.resolve")
    to_facts = facts_reader(policy)
    when = compiled.info.effective

    def decide(case: Case) -> Answer:
        return answer_of(resolve(tuple(fired(to_facts(case), when))), decision_name)

    return decide


def _facts_decider(policy: Any, trace: bool) -> Decide:
    decide_facts = _need(_need(policy, "compiled", "Policy.compiled"), "decide_facts", "decide_facts")
    to_facts = facts_reader(policy)

    def decide(case: Case) -> Answer:
        decision = decide_facts(to_facts(case), trace=trace)
        if trace and decision.trace is None:
            raise AssertionError("asked for a trace, got none")
        return answer_of(decision)

    return decide


def _raw_trace_decider(policy: Any) -> Decide:
    explain_raw = _need(
        _need(policy, "compiled", "Policy.compiled"), "explain_raw", "CompiledPolicy.explain_raw"
    )
    to_facts = facts_reader(policy)

    def decide(case: Case) -> Answer:
        return answer_of(explain_raw(to_facts(case)).resolution)

    return decide


def _public_decider(policy: Any, trace: bool) -> Decide:
    def decide(case: Case) -> Answer:
        decision = policy.evaluate(case, trace=trace)
        if trace and decision.trace is None:
            raise AssertionError("asked for a trace, got none")
        return answer_of(decision)

    return decide


def setup_raw() -> Decide:
    return raw_decider(load_policy())


def setup_fired_rules() -> Decide:
    return _facts_decider(load_policy(), trace=False)


def setup_raw_trace() -> Decide:
    return _raw_trace_decider(load_policy())


def setup_facts_full_trace() -> Decide:
    return _facts_decider(load_policy(), trace=True)


def setup_public_api() -> Decide:
    return _public_decider(load_policy(), trace=False)


def setup_public_api_trace() -> Decide:
    return _public_decider(load_policy(), trace=True)


# (name, setup) in the order the table shows them.
ENGINE_ENTRIES: list[tuple[str, Callable[[], Decide]]] = [
    ("this engine: raw, no trace", setup_raw),
    ("this engine: fired-rule list", setup_fired_rules),
    ("this engine: raw trace (no models)", setup_raw_trace),
    ("this engine: full trace", setup_facts_full_trace),
    ("this engine: public API, validated dict", setup_public_api),
    ("this engine: public API, validated dict, full trace", setup_public_api_trace),
]


def fast_decider(policy: Any, decision_name: str) -> Decide:
    """For the scale benchmark: the fastest no-trace path for an already loaded policy."""
    return raw_decider(policy, decision_name)


def public_decider(policy: Any, decision_name: str) -> Decide:
    """For the scale benchmark: the public API (validated dict) for an already loaded policy."""

    def decide(case: Case) -> Answer:
        return answer_of(policy.evaluate(case), decision_name)

    return decide
