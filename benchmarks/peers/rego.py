"""regopy (rego-cpp): the rules as a Rego module, built once into a bundle with an entrypoint.

``obligations`` is a partial set rule (one body per obligation), ``license_review`` a default plus two
complete-rule bodies: R1's override is ``not short_supply`` in the other bodies, R4's "otherwise" is
``count(obligations) == 0``. The whole answer is the ``answer`` document.

Measured detail: ``Interpreter.query`` re-plans each time (~1.4 ms/decision here), while a bundle built
once with ``Interpreter.build`` and run with ``query_bundle_entrypoint`` does not (~140 us). The peer
uses the bundle. Input goes in through ``regopy.Input`` (a conversion in the C API).
"""

from __future__ import annotations

import json

from benchmarks.peers._common import Decide, rego_set
from benchmarks.workload import EDD, EDD_COUNTRIES, HR_CAPABILITIES, HR_REASONS, HR_REVIEW, Case, normalize

NAME = "regopy (Rego, bundle)"
PACKAGE = "regopy"
MODULE = "regopy"
ENTRYPOINT = "bench/answer"

MODULE_SOURCE = f"""package bench

import rego.v1

hr_reasons := {rego_set(HR_REASONS)}

hr_capabilities := {rego_set(HR_CAPABILITIES)}

edd_destinations := {rego_set(EDD_COUNTRIES)}

short_supply if "SS" in input.control_reason

obligations contains {json.dumps(HR_REVIEW)} if {{
    not short_supply
    some r in input.control_reason
    r in hr_reasons
    some c in input.capability
    c in hr_capabilities
}}

obligations contains {json.dumps(EDD)} if {{
    not short_supply
    input.end_user.type == "government"
    input.destination in edd_destinations
}}

default license_review := "case_by_case"

license_review := "not_applicable" if short_supply

license_review := "favorable" if {{
    not short_supply
    count(obligations) == 0
}}

answer := {{"license_review": license_review, "obligations": obligations}}
"""


def setup() -> Decide:
    from regopy import Input, Interpreter

    builder = Interpreter()
    builder.add_module("bench.rego", MODULE_SOURCE)
    bundle = builder.build(None, [ENTRYPOINT])
    if not bundle.ok():
        raise RuntimeError(f"rego bundle failed to build: {bundle.node()}")
    runner = Interpreter()

    def decide(case: Case) -> tuple[str, tuple[str, ...]]:
        runner.set_input(Input(case))
        output = runner.query_bundle_entrypoint(bundle, ENTRYPOINT)
        if not output.ok():
            raise RuntimeError(f"rego evaluation failed: {output}")
        answer = output[0][0]
        return normalize(answer["license_review"], answer["obligations"])

    return decide
