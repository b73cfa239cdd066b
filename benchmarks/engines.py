"""The ONE module that knows this project's engine API (adapt it here when the API changes).

Four entries measure the engine, each from the same case dict to the same normalized answer:

* ``raw, no trace``: the lowest compiled path the engine exposes, no trace, no pydantic output.
* ``fired-rule list``: evaluation that records which rules fired/were effective, nothing more.
* ``full trace``: evaluation with the full explanation trace.
* ``public API``: ``engine.load(path).evaluate(case_dict)``, the case validated from a plain dict and a
  pydantic ``Decision`` returned; what an application calling the library does.

An entry whose API has not landed raises :class:`Pending`; the runner shows it as pending, not as a
failure.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.workload import POLICY_PATH, Answer, Case, normalize

Decide = Callable[[Case], Answer]


class Pending(Exception):
    """The engine API this entry needs is not there (yet)."""


def _engine_module() -> Any:
    try:
        import engine
    except ImportError as exc:  # pragma: no cover - the project is installed in its venvs
        raise Pending(f"cannot import engine: {exc}") from exc
    return engine


def load_policy(path: Path | str = POLICY_PATH) -> Any:
    """Parse, check and compile a policy file with the public API (``engine.load``)."""
    engine = _engine_module()
    load = getattr(engine, "load", None)
    if load is None:
        raise Pending("engine.load is not there yet")
    return load(str(path))


def _text(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    return str(value)


def answer_of(decision: Any, decision_name: str = "license_review") -> Answer:
    """Normalize a public-API ``Decision`` to ``(value of decision_name, sorted obligation names)``."""
    value = decision.decisions[decision_name].value
    return normalize(_text(value), [_text(o.name) for o in decision.obligations])


def setup_public_api(path: Path | str = POLICY_PATH) -> Decide:
    policy = load_policy(path)

    def decide(case: Case) -> Answer:
        return answer_of(policy.evaluate(case, trace=False))

    return decide


def setup_full_trace(path: Path | str = POLICY_PATH) -> Decide:
    policy = load_policy(path)

    def decide(case: Case) -> Answer:
        return answer_of(policy.evaluate(case, trace=True))

    return decide


def setup_raw(path: Path | str = POLICY_PATH) -> Decide:
    load_policy(path)
    raise Pending("no raw compiled path (without pydantic in or out) exposed yet")


def setup_fired_rules(path: Path | str = POLICY_PATH) -> Decide:
    load_policy(path)
    raise Pending("no fired-rule-list evaluation mode exposed yet")


# (name, setup) in the order the table shows them.
ENGINE_ENTRIES: list[tuple[str, Callable[[], Decide]]] = [
    ("this engine: raw, no trace", setup_raw),
    ("this engine: fired-rule list", setup_fired_rules),
    ("this engine: full trace", setup_full_trace),
    ("this engine: public API, validated dict", setup_public_api),
]


def fast_decider(policy: Any, decision_name: str) -> Decide:
    """For the scale benchmark: the fastest available no-trace path for an already loaded policy.

    The public API until a raw compiled path exists.
    """

    def decide(case: Case) -> Answer:
        return answer_of(policy.evaluate(case, trace=False), decision_name)

    return decide
