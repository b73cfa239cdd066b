"""cedarpy (Cedar): the rules as Cedar policies over the request context, parsed once into a PolicySet.

Cedar answers allow/deny, and names the policies that determined the answer. The mapping:

* R1 is a ``forbid``: in Cedar a satisfied forbid beats every permit, which is exactly "overriding
  everything" -> Deny whose reasons name R1 -> ``not_applicable``, no obligations.
* R2 and R3 are ``permit`` policies; the determining permits of an Allow are the obligations.
* R4 is Cedar's default deny with no determining policy -> ``favorable``.

The case goes in as the request ``context`` (cedarpy serializes it to JSON on each call); the entity
store is empty and parsed once. Python maps the determining policy ids (``@id``) to names.
"""

from __future__ import annotations

from benchmarks.peers._common import Decide, json_list
from benchmarks.workload import (
    EDD,
    EDD_COUNTRIES,
    FAVORABLE,
    HR_CAPABILITIES,
    HR_REASONS,
    HR_REVIEW,
    NOT_APPLICABLE,
    Case,
    normalize,
)

NAME = "cedarpy (Cedar)"
PACKAGE = "cedarpy"
MODULE = "cedarpy"

POLICIES = f"""
@id("r1-short-supply")
forbid (principal, action == Action::"review", resource)
when {{ context.control_reason.contains("SS") }};

@id("r2-human-rights")
permit (principal, action == Action::"review", resource)
when {{
  context.control_reason.containsAny({json_list(HR_REASONS)}) &&
  context.capability.containsAny({json_list(HR_CAPABILITIES)})
}};

@id("r3-due-diligence")
permit (principal, action == Action::"review", resource)
when {{
  context.end_user.type == "government" &&
  {json_list(EDD_COUNTRIES)}.contains(context.destination)
}};
"""

OBLIGATION_OF = {"r2-human-rights": HR_REVIEW, "r3-due-diligence": EDD}


def setup() -> Decide:
    import cedarpy

    policies = cedarpy.PolicySet.from_str(POLICIES)
    entities = cedarpy.Entities.from_json_str("[]")
    allow = cedarpy.Decision.Allow
    principal, action, resource = 'Applicant::"a"', 'Action::"review"', 'Application::"a"'

    def decide(case: Case) -> tuple[str, tuple[str, ...]]:
        request = {"principal": principal, "action": action, "resource": resource, "context": case}
        result = cedarpy.is_authorized(request, policies, entities)
        diagnostics = result.diagnostics
        if diagnostics.errors:
            raise RuntimeError(f"cedar evaluation errors: {diagnostics.errors}")
        ids = diagnostics.id_annotations_by_reason
        if result.decision != allow:
            return NOT_APPLICABLE if ids else FAVORABLE
        return normalize("case_by_case", [OBLIGATION_OF[ids[r]] for r in diagnostics.reasons])

    return decide
