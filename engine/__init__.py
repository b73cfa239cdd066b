"""Rules-as-code policy engine: parse, check, compile and explain versioned licensing policy.

The public API is small on purpose::

    import engine
    policy = engine.load("policies/ear-742.7", at="2021-01-01")
    decision = policy.evaluate({"eccn": "0A978", ...}, trace=True)
    print(engine.render_decision(decision, "text", explain=True))

`engine.Environment` is the configured entry object (one loader, one cache of compiled
policies) an application or tool holds; `load` and `check` are its methods on a default one.

Every error the engine raises for a user's mistake is an `engine.Error` carrying coded
`Diagnostic`s: `PolicyError` (the policy does not check), `CaseError` (the case does not fit
the fact declarations), `UsageError` and its `VersionError` (the request cannot be met).
Runtime internals (`engine.runtime.RawTrace`, `Resolution`) stay importable from their
modules but are not part of this surface.
"""

from engine.api import Environment, Policy, check, load
from engine.errors import (
    CaseDiagnostic,
    CaseError,
    Diagnostic,
    Error,
    PolicyError,
    Severity,
    UsageError,
    VersionError,
)
from engine.models import Decision, DecisionValue, OutcomeItem, RuleTrace, Trace
from engine.registry import VersionEntry, read_versions, select_version
from engine.render import render_decision

__all__ = [
    "CaseDiagnostic",
    "CaseError",
    "Decision",
    "DecisionValue",
    "Diagnostic",
    "Environment",
    "Error",
    "OutcomeItem",
    "Policy",
    "PolicyError",
    "RuleTrace",
    "Severity",
    "Trace",
    "UsageError",
    "VersionEntry",
    "VersionError",
    "check",
    "load",
    "read_versions",
    "render_decision",
    "select_version",
]
