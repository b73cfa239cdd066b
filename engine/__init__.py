"""Rules-as-code policy engine: parse, check, compile and explain versioned licensing policy.

The public API is small on purpose::

    import engine
    policy = engine.load("policies/ear-742.7", at=datetime.date(2021, 1, 1))
    decision = policy.evaluate({"eccn": "0A978", ...}, trace=True)
    print(engine.render_decision(decision, "text", explain=True))
"""

from engine.api import Policy, check, load
from engine.errors import CaseError, Diagnostic, PolicyError, Severity, UsageError
from engine.models import Decision, DecisionValue, OutcomeItem, RuleTrace, Trace
from engine.registry import VersionEntry, read_versions, select_version
from engine.render import render_decision
from engine.runtime import RawTrace, Resolution

__all__ = [
    "CaseError",
    "Decision",
    "DecisionValue",
    "Diagnostic",
    "OutcomeItem",
    "Policy",
    "PolicyError",
    "RawTrace",
    "Resolution",
    "RuleTrace",
    "Severity",
    "Trace",
    "UsageError",
    "VersionEntry",
    "check",
    "load",
    "read_versions",
    "render_decision",
    "select_version",
]
