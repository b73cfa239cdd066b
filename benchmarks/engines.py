"""The ONE module that knows this project's engine API (adapt it here when the API changes).

The engine entries, each from the same case dict to the same normalized answer:

* ``raw, no trace``: ``Policy.decide_trusted(case)``: the generated code reads the case dict as it
  is (trusted input, no validation) and returns the cached ``Resolution``; no pydantic in or out.
* ``fired-rule list``: the same, reading the ids of the rules that fired.
* ``full trace (recorded, no models)``: ``Policy.explain_trusted(case)``: every rule's verdict and
  every condition's truth value recorded (the facts they read are the case's own), precedence
  applied; the pydantic ``Trace`` is not built.
* ``public API, validated dict``: ``engine.load(path).evaluate(case)``: the case validated (generated
  exact-JSON check, pydantic for anything else), a ``Decision`` out; what an application does.
* ``public API, validated dict, full trace as pydantic models``: the same with ``trace=True``.

An entry whose API is not there raises :class:`Pending`; the runner lists it as pending, not failed.
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Callable
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


def _normalize(decision: Any, decision_name: str) -> Answer:
    return normalize(_text(decision.decisions[decision_name].value), [o.name for o in decision.obligations])


# The engine hands back shared, immutable resolutions and (untraced) decisions, one per set of
# fired rules; their normalized answer is remembered per object so the timing measures the engine,
# not this adapter (the floor returns ready-made answers too). The object is kept alive beside its
# answer so its id cannot be reused.
_answers: dict[int, tuple[Any, Answer]] = {}


def answer_of(decision: Any, decision_name: str = DECISION) -> Answer:
    """Normalize a ``Decision`` or ``Resolution``: the decision's value, sorted obligation names."""
    known = _answers.get(id(decision))
    if known is not None and known[0] is decision:
        return known[1]
    answer = _normalize(decision, decision_name)
    if decision_name == DECISION and (decision.trace if hasattr(decision, "trace") else None) is None:
        _answers[id(decision)] = (decision, answer)
    return answer


def raw_decider(policy: Any, decision_name: str = DECISION) -> Decide:
    """The compiled fast path on a trusted case dict: no validation, no pydantic in or out."""
    decide_trusted = _need(policy, "decide_trusted", "Policy.decide_trusted")

    def decide(case: Case) -> Answer:
        return answer_of(decide_trusted(case), decision_name)

    return decide


def _fired_list_decider(policy: Any) -> Decide:
    """The fast path, also reading the ids of the rules that fired (kept in the cached resolution)."""
    decide_trusted = _need(policy, "decide_trusted", "Policy.decide_trusted")

    def decide(case: Case) -> Answer:
        resolution = decide_trusted(case)
        if resolution.fired_ids is None:  # read them, as a caller logging them would
            raise AssertionError("no fired-rule list")
        return answer_of(resolution)

    return decide


def _raw_trace_decider(policy: Any) -> Decide:
    """Every rule's verdict and every condition's value recorded, no pydantic models built."""
    explain_trusted = _need(policy, "explain_trusted", "Policy.explain_trusted")

    def decide(case: Case) -> Answer:
        return answer_of(explain_trusted(case).resolution)

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
    return _fired_list_decider(load_policy())


def setup_raw_trace() -> Decide:
    return _raw_trace_decider(load_policy())


def setup_public_api() -> Decide:
    return _public_decider(load_policy(), trace=False)


def setup_public_api_trace() -> Decide:
    return _public_decider(load_policy(), trace=True)


# (name, setup) in the order the table shows them.
ENGINE_ENTRIES: list[tuple[str, Callable[[], Decide]]] = [
    ("this engine: raw, no trace", setup_raw),
    ("this engine: fired-rule list", setup_fired_rules),
    ("this engine: full trace (recorded, no models)", setup_raw_trace),
    ("this engine: public API, validated dict", setup_public_api),
    ("this engine: public API, validated dict, full trace as pydantic models", setup_public_api_trace),
]


def fast_decider(policy: Any, decision_name: str) -> Decide:
    """For the scale benchmark: the fastest no-trace path for an already loaded policy."""
    return raw_decider(policy, decision_name)


def public_decider(policy: Any, decision_name: str) -> Decide:
    """For the scale benchmark: the public API (validated dict) for an already loaded policy."""

    def decide(case: Case) -> Answer:
        return answer_of(policy.evaluate(case), decision_name)

    return decide
