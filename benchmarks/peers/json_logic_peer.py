"""panzi-json-logic (JsonLogic): the whole workload as one JsonLogic document.

The result is a flat list ``[review, obligation...]``: R1's override is the outer ``if``; R4's
"otherwise" is ``{"if": [hr or edd, "case_by_case", "favorable"]}``; ``merge`` collects the obligation
lists. JsonLogic has no variables, so the R2 and R3 conditions appear twice. Pure Python interpreter.
"""

from __future__ import annotations

from typing import Any

from benchmarks.peers._common import Decide
from benchmarks.workload import EDD, EDD_COUNTRIES, HR_CAPABILITIES, HR_REASONS, HR_REVIEW, Case, normalize

NAME = "panzi-json-logic (JsonLogic)"
PACKAGE = "panzi-json-logic"
MODULE = "json_logic"


def _meets(var: str, values: frozenset[str]) -> dict[str, Any]:
    return {"some": [{"var": var}, {"in": [{"var": ""}, sorted(values)]}]}


HR_COND = {"and": [_meets("control_reason", HR_REASONS), _meets("capability", HR_CAPABILITIES)]}
EDD_COND = {
    "and": [
        {"==": [{"var": "end_user.type"}, "government"]},
        {"in": [{"var": "destination"}, sorted(EDD_COUNTRIES)]},
    ]
}
LOGIC: dict[str, Any] = {
    "if": [
        {"in": ["SS", {"var": "control_reason"}]},
        ["not_applicable"],
        {
            "merge": [
                {"if": [{"or": [HR_COND, EDD_COND]}, "case_by_case", "favorable"]},
                {"if": [HR_COND, [HR_REVIEW], []]},
                {"if": [EDD_COND, [EDD], []]},
            ]
        },
    ]
}


def setup() -> Decide:
    from json_logic import jsonLogic

    def decide(case: Case) -> tuple[str, tuple[str, ...]]:
        result = jsonLogic(LOGIC, case)
        return normalize(result[0], result[1:])

    return decide
