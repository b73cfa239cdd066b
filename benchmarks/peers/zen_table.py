"""zen-engine, decision table (JDM): input node -> decision table (hit policy ``first``) -> output node.

A decision table enumerates combinations, so the four rules become five rows, tried in order:
R1 (SS) first, then R2 and R3 together, R2 alone, R3 alone, and the catch-all R4 (empty cells match
anything). Cells are zen unary expressions over the column's field (``$``).

Measured detail that matters: ``ZenDecision.evaluate`` (from ``create_decision``) re-prepares the graph
on every call (~200 us here), while ``ZenEngine.evaluate(key, ...)`` with a static loader caches it
(~13 us). The peer uses the engine with a loader, the fast way.
"""

from __future__ import annotations

import json
from typing import Any

from benchmarks.peers._common import Decide, json_list
from benchmarks.workload import EDD, EDD_COUNTRIES, HR_CAPABILITIES, HR_REASONS, HR_REVIEW, Case, normalize

NAME = "zen-engine (decision table JDM)"
PACKAGE = "zen-engine"
MODULE = "zen"
KEY = "license-review.json"

_HR_REASONS = f"some($, # in {json_list(HR_REASONS)})"
_HR_CAPS = f"some($, # in {json_list(HR_CAPABILITIES)})"
_GOV = '"government"'
_EDD_DEST = json_list(EDD_COUNTRIES)


def _row(
    n: int, cr: str, cap: str, eu: str, dest: str, review: str, obligations: list[str]
) -> dict[str, str]:
    return {
        "_id": f"row-{n}",
        "cr": cr,
        "cap": cap,
        "eu": eu,
        "dest": dest,
        "review": json.dumps(review),
        "obl": json.dumps(obligations),
    }


def decision_graph() -> dict[str, Any]:
    """The JDM document (what the GoRules editor would save)."""
    table = {
        "hitPolicy": "first",
        "inputs": [
            {"id": "cr", "name": "control reason", "field": "control_reason"},
            {"id": "cap", "name": "capability", "field": "capability"},
            {"id": "eu", "name": "end-user type", "field": "end_user.type"},
            {"id": "dest", "name": "destination", "field": "destination"},
        ],
        "outputs": [
            {"id": "review", "name": "license review", "field": "license_review"},
            {"id": "obl", "name": "obligations", "field": "obligations"},
        ],
        "rules": [
            _row(1, 'contains($, "SS")', "", "", "", "not_applicable", []),
            _row(2, _HR_REASONS, _HR_CAPS, _GOV, _EDD_DEST, "case_by_case", [EDD, HR_REVIEW]),
            _row(3, _HR_REASONS, _HR_CAPS, "", "", "case_by_case", [HR_REVIEW]),
            _row(4, "", "", _GOV, _EDD_DEST, "case_by_case", [EDD]),
            _row(5, "", "", "", "", "favorable", []),
        ],
    }
    return {
        "nodes": [
            {"id": "in", "type": "inputNode", "name": "request", "position": {"x": 0, "y": 0}},
            {
                "id": "table",
                "type": "decisionTableNode",
                "name": "license review",
                "position": {"x": 300, "y": 0},
                "content": table,
            },
            {"id": "out", "type": "outputNode", "name": "response", "position": {"x": 600, "y": 0}},
        ],
        "edges": [
            {"id": "e1", "sourceId": "in", "targetId": "table", "type": "edge"},
            {"id": "e2", "sourceId": "table", "targetId": "out", "type": "edge"},
        ],
    }


def setup() -> Decide:
    import zen

    engine = zen.ZenEngine({"loader": {"type": "static", "content": {KEY: decision_graph()}}})
    engine.get_decision(KEY).validate()

    def decide(case: Case) -> tuple[str, tuple[str, ...]]:
        result = engine.evaluate(KEY, case)["result"]
        return normalize(result["license_review"], result["obligations"])

    return decide
