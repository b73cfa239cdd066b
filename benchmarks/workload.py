"""The reference workload: vocabulary values, the seeded case generator and the hand-written floor.

Every engine in the benchmark maps the same case dicts to the same normalized :data:`Answer`:
``(license_review, sorted obligations)``. The rules (see ``benchmarks/README.md``):

* R1: ``SS`` in ``control_reason`` -> ``license_review = not_applicable``, overriding R2, R3 and R4
  (so an SS case carries no obligations).
* R2: ``control_reason`` meets {CC, NS, RS} and ``capability`` meets the human-rights capabilities
  -> require ``human-rights review``.
* R3: government end user and destination in :data:`EDD_COUNTRIES` -> require ``enhanced due-diligence``.
* R4: otherwise (none of R1-R3 fires) -> ``license_review = favorable``.

When R2 or R3 fires (and R1 does not), no rule decides ``license_review`` and it takes the declared
default, ``case_by_case``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

Case = dict[str, Any]
Answer = tuple[str, tuple[str, ...]]

HERE = Path(__file__).resolve().parent
POLICY_PATH = HERE / "workload" / "policy.policy"
VOCAB_PATH = HERE / "workload" / "bench.vocab"

DEFAULT_SEED = 20201006
DEFAULT_CASES = 10_000

# Enumerations of the vocabulary (benchmarks/workload/bench.vocab), with the probability that a
# generated case has each reason / capability.
REASON_WEIGHTS: dict[str, float] = {
    "NS": 0.35,
    "CC": 0.30,
    "RS": 0.20,
    "SS": 0.07,
    "AT": 0.30,
    "MT": 0.10,
    "NP": 0.05,
    "CB": 0.05,
    "EI": 0.05,
    "FC": 0.05,
}
CAPABILITY_WEIGHTS: dict[str, float] = {
    "surveillance": 0.15,
    "biometric_identification": 0.10,
    "location_tracking": 0.10,
    "interception": 0.08,
    "recording": 0.20,
    "sensors": 0.20,
    "encryption": 0.25,
    "navigation": 0.15,
    "imaging": 0.15,
}
END_USER_WEIGHTS: dict[str, float] = {
    "government": 0.25,
    "government_linked": 0.15,
    "private": 0.40,
    "reseller": 0.10,
    "individual": 0.10,
}
REASONS: tuple[str, ...] = tuple(REASON_WEIGHTS)
CAPABILITIES: tuple[str, ...] = tuple(CAPABILITY_WEIGHTS)
END_USER_TYPES: tuple[str, ...] = tuple(END_USER_WEIGHTS)
REVIEWS: tuple[str, ...] = ("favorable", "case_by_case", "not_applicable")

HR_REASONS: frozenset[str] = frozenset({"CC", "NS", "RS"})
HR_CAPABILITIES: frozenset[str] = frozenset(
    {"surveillance", "biometric_identification", "location_tracking", "interception"}
)
# The fixed 25-country set of R3 (enhanced due diligence for government end users).
EDD_COUNTRIES: frozenset[str] = frozenset(
    {
        "AF", "BY", "CD", "CF", "CN", "CU", "ER", "ET", "HK", "HT", "IQ", "IR", "KH",
        "KP", "LB", "LY", "MM", "MO", "NI", "RU", "SD", "SO", "SY", "VE", "ZW",
    }
)  # fmt: skip
OTHER_COUNTRIES: tuple[str, ...] = (
    "AE", "AR", "AT", "AU", "BE", "BR", "CA", "CH", "CL", "CZ", "DE", "DK", "EG", "ES", "FI",
    "FR", "GB", "GR", "IE", "IL", "IN", "IT", "JP", "KR", "MX", "NL", "NO", "NZ", "PL", "PT",
    "SA", "SE", "SG", "TR", "ZA",
)  # fmt: skip
COUNTRIES: tuple[str, ...] = tuple(sorted(EDD_COUNTRIES)) + OTHER_COUNTRIES

HR_REVIEW = "human-rights review"
EDD = "enhanced due-diligence"
OBLIGATIONS: tuple[str, ...] = (EDD, HR_REVIEW)  # sorted

NOT_APPLICABLE: Answer = ("not_applicable", ())
FAVORABLE: Answer = ("favorable", ())
HR_ONLY: Answer = ("case_by_case", (HR_REVIEW,))
EDD_ONLY: Answer = ("case_by_case", (EDD,))
BOTH: Answer = ("case_by_case", (EDD, HR_REVIEW))

assert len(EDD_COUNTRIES) == 25 and len(set(COUNTRIES)) == len(COUNTRIES)


def normalize(license_review: str, obligations: Any) -> Answer:
    """The normalized answer every engine is compared on: the decision and the sorted obligation names.

    No conversion: an engine that answers with something other than strings shows up as a mismatch.
    """
    return (license_review, tuple(sorted(set(obligations))))


def _subset(rng: random.Random, weights: dict[str, float]) -> list[str]:
    chosen = [value for value, p in weights.items() if rng.random() < p]
    rng.shuffle(chosen)
    return chosen


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def generate_cases(n: int = DEFAULT_CASES, seed: int = DEFAULT_SEED) -> list[Case]:
    """``n`` cases in the policy's case-JSON shape, the same for the same ``(n, seed)``.

    Sets are JSON lists in random order (order and repeats carry no meaning); ``end_user`` is a record.
    """
    rng = random.Random(seed)
    cases: list[Case] = []
    for _ in range(n):
        cases.append(
            {
                "control_reason": _subset(rng, REASON_WEIGHTS),
                "capability": _subset(rng, CAPABILITY_WEIGHTS),
                "destination": rng.choice(COUNTRIES),
                "end_user": {"type": _pick(rng, END_USER_WEIGHTS)},
            }
        )
    return cases


def decide_floor(case: Case) -> Answer:
    """The floor: the workload hand-written in plain Python, no engine at all."""
    reasons = case["control_reason"]
    if "SS" in reasons:
        return NOT_APPLICABLE
    hr = not HR_REASONS.isdisjoint(reasons) and not HR_CAPABILITIES.isdisjoint(case["capability"])
    edd = case["end_user"]["type"] == "government" and case["destination"] in EDD_COUNTRIES
    if hr:
        return BOTH if edd else HR_ONLY
    if edd:
        return EDD_ONLY
    return FAVORABLE


def answer_mix(answers: list[Answer]) -> dict[Answer, int]:
    """How many cases end in each distinct answer (to show the workload exercises every rule)."""
    mix: dict[Answer, int] = {}
    for a in answers:
        mix[a] = mix.get(a, 0) + 1
    return dict(sorted(mix.items(), key=lambda kv: -kv[1]))
