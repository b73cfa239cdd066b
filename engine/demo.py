"""`make demo`: decide a few telling cases under both 742.7 versions and explain each decision.

It runs the same path a user does (`engine.load` on the policy folder, `evaluate` with a
trace, the text renderer), from a source checkout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import engine

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "policies" / "ear-742.7"
CASES = ROOT / "fixtures" / "cases"
TELLING_CASES = (
    "police-batons-indonesia-police",  # a CC item with no trigger: favourable under both versions
    "water-cannon-hong-kong-police",  # water cannon became CC items on 6 Oct 2020 (85 FR 63009)
    "spyware-state-security-bureau",  # (b)(2): a non-CC item now gets the human-rights review
)
VERSIONS = ("2020-03-09", "2020-10-06")


def main() -> int:
    """Print the explained decisions; exit 1 if the bundled pack is missing or broken."""
    if not POLICY.is_dir():
        print(f"demo: {POLICY} not found (run from a source checkout)", file=sys.stderr)
        return 1
    for name in TELLING_CASES:
        case = json.loads((CASES / f"{name}.json").read_text(encoding="utf-8"))
        print("=" * 100)
        print(f"case {name}: {case.get('$comment', '')}")
        for version in VERSIONS:
            policy = engine.load(POLICY, version=version)
            decision = policy.evaluate(case, trace=True)
            print("-" * 100)
            print(engine.render_decision(decision, "text", explain=True), end="")
    print("=" * 100)
    print(
        "Compare all cases between the versions: policy diff policies/ear-742.7@2020-03-09 "
        "policies/ear-742.7@2020-10-06 --cases fixtures/cases"
    )
    return _service_demo()


def _service_demo() -> int:
    """One decision served over loopback HTTP and its log verified (needs the `service` extra)."""
    print("=" * 100)
    try:
        from engine.service.demo import show
    except ImportError as exc:
        print(f"service demo skipped: {exc.name} is not installed (pip install '.[service]')")
        return 0
    return show()


if __name__ == "__main__":
    sys.exit(main())
