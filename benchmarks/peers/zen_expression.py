"""zen-engine, compiled expression path: the whole workload as ONE zen expression, compiled once.

The expression returns ``{r: review, o: [obligations]}``; R1's override is the outer ternary and R4's
"otherwise" is ``(hr or edd) ? "case_by_case" : "favorable"``. Zen expressions have no ``let``, so the
R2 and R3 conditions are written twice (zen evaluates the copies again). Python only sorts the list.
"""

from __future__ import annotations

from benchmarks.peers._common import Decide, json_list
from benchmarks.workload import EDD, EDD_COUNTRIES, HR_CAPABILITIES, HR_REASONS, HR_REVIEW, Case, normalize

NAME = "zen-engine (compiled expression)"
PACKAGE = "zen-engine"
MODULE = "zen"

HR = (
    f"(some(control_reason, # in {json_list(HR_REASONS)})"
    f" and some(capability, # in {json_list(HR_CAPABILITIES)}))"
)
EDD_COND = f'(end_user.type == "government" and destination in {json_list(EDD_COUNTRIES)})'
EXPRESSION = (
    'contains(control_reason, "SS") ? {r: "not_applicable", o: []}'
    f' : {{r: ({HR} or {EDD_COND}) ? "case_by_case" : "favorable",'
    f' o: filter([{HR} ? "{HR_REVIEW}" : "", {EDD_COND} ? "{EDD}" : ""], # != "")}}'
)


def setup() -> Decide:
    import zen

    expression = zen.compile_expression(EXPRESSION)

    def decide(case: Case) -> tuple[str, tuple[str, ...]]:
        out = expression.evaluate(case)
        return normalize(out["r"], out["o"])

    return decide
