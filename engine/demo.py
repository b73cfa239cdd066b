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
    print(next_step())
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


def policy_command() -> str:
    """How to run `policy` from here: by its path in the demo's venv, since `make demo` activates nothing.

    `make demo` installs into `.venv/` and runs this module with `.venv/bin/python`; the
    `policy` script sits beside that interpreter, not on the reader's PATH.
    """
    script = Path(sys.executable).parent / "policy"
    if not script.exists():
        return "policy"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def next_step() -> str:
    """The demo's last lines: the command to compare every case, exactly as it can be typed here."""
    command = policy_command()
    lines = [
        "Compare all cases between the versions:",
        f"  {command} diff policies/ear-742.7@2020-03-09 @2020-10-06 --cases fixtures/cases",
    ]
    if command != "policy":
        folder = Path(command).parent
        lines.append(f"(or `source {folder}/activate` once, to type `policy ...` in this shell)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
