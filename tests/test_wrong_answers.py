"""Defects that gave wrong answers (issue 11): each test pins the fix.

* what `evaluate` returns is read-only: a caller cannot edit the decision it got and so
  change the answers later calls get, in any thread (engine/frozen.py);
* case values have exactly the documented types (engine/models.py `StrictNumber`, `StrictDate`);
* a repeated JSON key is an error, not "last one wins" (engine/strictjson.py);
* version files that are broken, name another policy or overlap are errors (engine/versions_check.py).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import engine
from engine.cli import main

ROOT = Path(__file__).resolve().parent.parent
CASE = json.loads((ROOT / "fixtures" / "cases" / "aircraft-parts-burma-air-force.json").read_text("utf-8"))


def attempts(decision: engine.Decision) -> list[Callable[[], Any]]:
    """Everything a careless caller might do to the object it was given."""
    value = decision.decisions["license_review"]
    return [
        decision.obligations.clear,
        lambda: decision.obligations.append(decision.obligations[0]),
        lambda: decision.fired.pop(),
        lambda: decision.decisions.pop("license_review"),
        lambda: decision.decisions.__setitem__("license_review", value),
        value.rules.clear,
        lambda: value.rules[0].citations.append("x"),
        lambda: decision.obligations[0].rules.clear(),
        lambda: decision.unknown.extend(["x"]),
    ]


def vandalise(decision: engine.Decision) -> None:
    for attempt in attempts(decision):
        with pytest.raises(TypeError, match="cannot be changed"):
            attempt()


@pytest.fixture(scope="module")
def policy() -> engine.Policy:
    return engine.load(ROOT / "policies" / "ear-742.7", at=date(2021, 1, 1))


@pytest.mark.parametrize("trace", [False, True])
def test_a_returned_decision_cannot_be_changed(policy: engine.Policy, trace: bool) -> None:
    expected = policy.evaluate(CASE, trace=trace).model_dump(mode="json")
    assert expected["obligations"] and expected["decisions"]["license_review"]["rules"]
    vandalise(policy.evaluate(CASE, trace=trace))
    assert policy.evaluate(CASE, trace=trace).model_dump(mode="json") == expected
    copy = policy.evaluate(CASE).model_copy(deep=True)  # a deep copy is the caller's own, and mutable
    copy.obligations.clear()
    assert policy.evaluate(CASE).obligation_names == ["human-rights review"]


def test_mutation_attempts_in_threads_change_nothing(policy: engine.Policy) -> None:
    expected = policy.evaluate(CASE).model_dump(mode="json")
    seen: list[bool] = []

    def work() -> None:
        for _ in range(100):
            decision = policy.evaluate(CASE)
            seen.append(decision.model_dump(mode="json") == expected)
            vandalise(decision)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 400 and all(seen)


def test_the_trusted_resolution_is_read_only(policy: engine.Policy) -> None:
    facts = policy.compiled.validate(CASE)
    resolution = policy.compiled.resolve(tuple(policy.compiled.fired(facts, date(2021, 1, 1))))
    with pytest.raises(TypeError):
        resolution.decisions.pop("license_review")
    with pytest.raises(TypeError):
        resolution.decisions["license_review"].rules.clear()
    assert policy.evaluate(CASE).value("license_review") == "not_favorable"


# ---------------------------------------------------------------------------
# Input types are what docs/language.md says, no looser

TYPED = """policy "t"
  title "t"
  version "1"
  effective 2021-01-01
  status in-force
  source "s"

enum R "r" = <yes, no>
decision d: R default no "d"
fact when: date "w"
fact n: number "n"
rule r "r" cite "c" if n > 5 and when >= 2020-01-01 then decide d = yes
"""


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ({"when": 0, "n": 9}, "when"),  # pydantic's lax mode read 1970-01-01
        ({"when": "2020-10-06T00:00:00Z", "n": 9}, "when"),
        ({"when": "２０２１-01-01", "n": 9}, "when"),
        ({"when": "2021-02-30", "n": 9}, "when"),
        ({"when": "2021-01-01", "n": "١٢"}, "n"),
        ({"when": "2021-01-01", "n": "1_000"}, "n"),
        ({"when": "2021-01-01", "n": "0x10"}, "n"),
        ({"when": "2021-01-01", "n": True}, "n"),
    ],
)
def test_loose_coercions_are_rejected(tmp_path: Path, case: dict[str, Any], field: str) -> None:
    (tmp_path / "t.policy").write_text(TYPED, encoding="utf-8")
    policy = engine.load(tmp_path / "t.policy")
    with pytest.raises(engine.CaseError) as caught:
        policy.evaluate(case)
    assert [path for path, _ in caught.value.problems] == [field]


def test_documented_inputs_still_work(tmp_path: Path) -> None:
    (tmp_path / "t.policy").write_text(TYPED, encoding="utf-8")
    policy = engine.load(tmp_path / "t.policy")
    for n in (12, "12.50", Decimal("12.5")):
        assert policy.evaluate({"when": "2021-01-01", "n": n}).value("d") == "yes"
    assert policy.evaluate({"when": date(2021, 1, 1), "n": 6}).value("d") == "yes"


def test_a_repeated_key_in_a_case_file_is_an_error_not_last_wins(tmp_path: Path) -> None:
    case = tmp_path / "case.json"
    text = json.dumps(CASE)
    case.write_text(text[:-1] + ', "hr_abuse_risk": false}', encoding="utf-8")
    result = CliRunner().invoke(main, ["eval", str(ROOT / "policies" / "ear-742.7"), str(case)])
    assert result.exit_code == 1
    assert "appears twice" in result.output and f"{case}:1:" in result.output


# ---------------------------------------------------------------------------
# Version files

VERSION = """policy "{id}"
  title "t"
  version "{v}"
  effective {v}
{ends}  status in-force
  source "s"

enum R "r" = <yes, no>
decision d: R default no "d"
fact cc: boolean "c"
rule r "r" cite "c" if cc then decide d = {o}
"""


def folder_with_two(tmp_path: Path, second: str | None = None, first_ends: bool = True) -> Path:
    folder = tmp_path / "mini"
    folder.mkdir(parents=True)
    ends = "  ends 2020-12-31\n" if first_ends else ""
    (folder / "2020-01-01.policy").write_text(
        VERSION.format(id="mini", v="2020-01-01", o="no", ends=ends), "utf-8"
    )
    text = VERSION.format(id="mini", v="2021-01-01", o="yes", ends="") if second is None else second
    (folder / "2021-01-01.policy").write_text(text, "utf-8")
    return folder


@pytest.mark.parametrize("broken", ["", 'policy "mini"\n  title "unclosed\n', "\xff"])
@pytest.mark.parametrize("at", [None, "2021-06-01"])
def test_a_broken_current_version_is_an_error_naming_the_file(
    tmp_path: Path, broken: str, at: str | None
) -> None:
    folder = folder_with_two(tmp_path, "")
    path = folder / "2021-01-01.policy"
    path.write_bytes(broken.encode("latin-1"))
    (tmp_path / "case.json").write_text('{"cc": true}', "utf-8")
    args = ["eval", str(folder), str(tmp_path / "case.json")] + (["--at", at] if at else [])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert f"{path}" in result.output and "cannot be read as a version" in result.output
    assert "Traceback" not in result.output
    check = CliRunner().invoke(main, ["check", str(folder)])
    assert check.exit_code == 1 and "Traceback" not in check.output
    named = CliRunner().invoke(main, [*args[:3], "--version", "2020-01-01"])
    assert named.exit_code == 0 and "d = no" in named.output  # naming a readable version still works


def test_a_version_naming_another_policy_fails_check(tmp_path: Path) -> None:
    folder = folder_with_two(tmp_path, VERSION.format(id="other", v="2021-01-01", o="yes", ends=""))
    result = CliRunner().invoke(main, ["check", str(folder)])
    assert result.exit_code == 1
    assert "error[wrong-policy]" in result.output and "2021-01-01.policy:1:1" in result.output


def test_check_rejects_overlapping_in_force_versions(tmp_path: Path) -> None:
    folder = folder_with_two(tmp_path, first_ends=False)
    result = CliRunner().invoke(main, ["check", str(folder)])
    assert result.exit_code == 1
    assert "error[overlapping-versions]" in result.output and "2021-01-01.policy:4:1" in result.output
    assert CliRunner().invoke(main, ["check", str(folder_with_two(tmp_path / "ok"))]).exit_code == 0
