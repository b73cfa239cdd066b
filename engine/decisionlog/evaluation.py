"""One home for what a logged decision is made of, so the service and replay compute it alike.

The record keeps the decision JSON (as `policy eval --format json` prints it, without the
trace) and a hash of the evaluation's trace. The hash is taken over the *raw* trace the
compiled policy records (every condition's truth value in compile order, every derived
value, the effective, unknown and overridden rules), not over the rendered trace JSON:
the two are functions of the same inputs, and building the pydantic trace costs twenty
times more than the decision itself. The rendered trace is built only when a caller asks
for it (`?explain=true`). `policy replay` recomputes the hash the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from engine import api
from engine.decisionlog.records import compact
from engine.models import to_json_value

__all__ = ["TRACE_HASH_VERSION", "Evaluation", "evaluate_for_log", "raw_trace_bytes"]

#: Bumped if what the trace hash covers ever changes (it is part of the hashed bytes).
TRACE_HASH_VERSION = 1


@dataclass(frozen=True)
class Evaluation:
    output: dict[str, Any]  # the decision JSON, "trace": null
    trace: dict[str, Any] | None  # the trace JSON, when asked for
    raw_trace: bytes  # what the trace hash is taken over


def raw_trace_bytes(raw: Any) -> bytes:
    """The canonical bytes of a raw trace (`CompiledPolicy.explain_raw`)."""
    resolution = raw.resolution
    return compact(
        {
            "trace_hash_version": TRACE_HASH_VERSION,
            "conditions": [to_json_value(v) for v in raw.values],
            "derived": [to_json_value(v) for v in raw.derived],
            "effective": list(resolution.fired_ids),
            "unknown": list(resolution.unknown),
            "overridden_by": sorted([k, list(v)] for k, v in resolution.overridden_by.items()),
            "evaluated_at": raw.when.isoformat(),
        }
    )


def evaluate_for_log(
    policy: api.Policy, case: Mapping[str, Any], when: date, *, explain: bool = False
) -> Evaluation:
    """Validate (raises `CaseError`), decide, and record the raw trace; the full trace only if asked."""
    compiled = policy.compiled
    facts = compiled.validate(case)
    raw = compiled.explain_raw(facts, at=when)
    decision = compiled.decide_facts(facts, at=when)
    output = decision.model_dump(mode="json")
    trace = compiled.trace_of(raw).model_dump(mode="json") if explain else None
    return Evaluation(output, trace, raw_trace_bytes(raw))
