"""`policy test`: every bundled intent expectation as its own test, and the runner's reports.

The parametrized test below is the same check as `policy test` (one test id per
`policy/case@version`), so a failure shows in pytest with the same report the CLI prints.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.intent import Runner, failure_text, load_expectations

ROOT = Path(__file__).resolve().parent.parent
INTENT = ROOT / "fixtures" / "intent"
EXPECTATIONS, PROBLEMS = load_expectations([INTENT])
RUNNER = Runner(ROOT / "policies", ROOT / "fixtures" / "cases")


def test_intent_files_are_well_formed() -> None:
    assert PROBLEMS == []
    assert EXPECTATIONS, "fixtures/intent holds expectations"


@pytest.mark.parametrize("expectation", EXPECTATIONS, ids=lambda e: e.id)
def test_intent(expectation: Any) -> None:
    result = RUNNER.run(expectation)
    assert result.status == "pass", failure_text(result)


# ---------------------------------------------------------------------------
# The runner on a small project: fixtures/lint's policies, cases and intent written here

CASE = {"color": "red", "colors": ["red"], "flag": False, "size": 1, "beta_only": True, "unused_fact": False}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """policies/ (beta and alpha from fixtures/lint), cases/ and intent/ in a temporary folder."""
    for folder in ("shared", "beta", "alpha"):
        shutil.copytree(ROOT / "fixtures" / "lint" / folder, tmp_path / "policies" / folder)
    (tmp_path / "cases").mkdir()
    (tmp_path / "intent").mkdir()
    (tmp_path / "cases" / "flagged.json").write_text(json.dumps({"$comment": "beta flag", **CASE}))
    (tmp_path / "cases" / "plain.json").write_text(json.dumps({**CASE, "beta_only": False, "color": "blue"}))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _intent(project: Path, name: str, text: str) -> Path:
    path = project / "intent" / f"{name}.toml"
    path.write_text(text)
    return path


def _run(*args: str) -> Any:
    return CliRunner().invoke(
        main, ["test", "--policies", "policies", "--cases", "cases", *args], catch_exceptions=False
    )


BETA_OK = """
[[expect]]
case = "flagged"
version = "2020-01-01"
outcome = "denied"
obligations = []
recommendations = []
why = "The beta flag denies."

[[expect]]
case = "plain"
version = "2020-01-01"
outcome = "none"
obligations = []
why = "Nothing applies."
"""


def test_passing_expectations_exit_0(project: Path) -> None:
    _intent(project, "beta", BETA_OK)
    result = _run("intent")
    assert result.exit_code == 0, result.output
    assert result.output.endswith("2 expectation(s) over 1 policy(ies): 2 passed, 0 failed, 0 error(s)\n")


def test_a_failure_shows_expected_actual_and_the_deciding_rules(project: Path, snapshot: Any) -> None:
    _intent(project, "beta", BETA_OK.replace('outcome = "denied"', 'outcome = "approved"', 1))
    result = _run("intent")
    assert result.exit_code == 1
    assert result.output == snapshot


def test_a_wrong_obligation_list_names_the_rule_that_would_give_it(project: Path) -> None:
    _intent(project, "beta", BETA_OK.replace("obligations = []", 'obligations = ["review"]', 1))
    result = _run("intent")
    assert result.exit_code == 1
    assert "obligations: expected [review], got []" in result.output
    assert "no rule of this version gives or removes the differing outcomes" in result.output


@pytest.mark.parametrize(
    "change, message",
    [
        (('case = "flagged"', 'case = "missing"'), "no case file `cases/missing.json`"),
        (('version = "2020-01-01"', 'version = "1999-01-01"'), "`beta` has no version `1999-01-01`"),
        (('case = "flagged"', 'case = "bad"'), "the case does not fit the policy's facts: size:"),
    ],
)
def test_errors_are_reported_per_expectation(project: Path, change: tuple[str, str], message: str) -> None:
    (project / "cases" / "bad.json").write_text(json.dumps({**CASE, "size": "big"}))
    _intent(project, "beta", BETA_OK.replace(*change, 1))
    result = _run("intent")
    assert result.exit_code == 1
    assert "ERROR beta/" in result.output
    assert message in result.output


def test_an_intent_file_for_an_unknown_policy(project: Path) -> None:
    _intent(project, "gamma", BETA_OK)
    result = _run("intent")
    assert result.exit_code == 1
    assert "no policy folder `policies/gamma`" in result.output


@pytest.mark.parametrize(
    "text, message",
    [
        (
            '[[expect]]\ncase = "flagged"\n',
            "`version` is missing or not a string\n  --> intent/beta.toml:1:1",
        ),
        ('[[expect]]\ncase = "flagged"\nversion = "1"\nobligations = "x"\n', "must be a list of names"),
        ('[[expect]]\ncase = "flagged"\nversion = "1"\noutcome = 3\n', "decision `outcome` must be a string"),
        ("[[expect]\n", "not valid TOML"),
        (BETA_OK + BETA_OK, "`flagged` under `2020-01-01` is expected twice"),
    ],
)
def test_malformed_intent_is_a_usage_error(project: Path, text: str, message: str) -> None:
    _intent(project, "beta", text)
    result = CliRunner().invoke(main, ["test", "--policies", "policies", "--cases", "cases", "intent"])
    assert result.exit_code == 2
    assert message in result.output


def test_json_report(project: Path) -> None:
    _intent(project, "beta", BETA_OK.replace('outcome = "denied"', 'outcome = "approved"', 1))
    data = json.loads(_run("intent", "--format", "json").output)
    assert data["summary"] == {"pass": 1, "fail": 1, "error": 0}
    failed = next(r for r in data["results"] if r["status"] == "fail")
    assert failed["id"] == "beta/flagged@2020-01-01"
    assert failed["mismatches"] == [{"what": "outcome", "expected": "approved", "actual": "denied"}]
    assert [r["trace"]["rule"] for r in failed["rules"]] == ["beta-deny"]
    assert "coverage" not in data


def test_default_intent_folder_is_fixtures_intent(in_root: Path) -> None:
    result = CliRunner().invoke(main, ["test"])
    assert result.exit_code == 0, result.output[-2000:]
    assert f"{len(EXPECTATIONS)} expectation(s)" in result.output


@pytest.mark.parametrize("header", ["[[ expect ]]", '[["expect"]]', "  [[expect]]  # the second case"])
def test_a_failure_points_at_its_own_table_however_the_header_is_spaced(project: Path, header: str) -> None:
    """TOML allows spaces, quotes and a comment in a table header; the reported line is still that table's."""
    text = BETA_OK.replace('outcome = "none"', 'outcome = "denied"').replace("[[expect]]", header)
    _intent(project, "beta", text)
    result = _run("intent")
    assert result.exit_code == 1
    second = text.splitlines().index(header, 2) + 1
    assert f"expectation at intent/beta.toml:{second}\n" in result.output


def test_junit_report(project: Path) -> None:
    """`--junit FILE` writes one testcase per expectation, a failure with the text report, and a count."""
    import xml.etree.ElementTree as ET

    _intent(project, "beta", BETA_OK.replace('outcome = "denied"', 'outcome = "approved"', 1))
    result = _run("intent", "--junit", "report.xml")
    assert result.exit_code == 1
    root = ET.parse(project / "report.xml").getroot()
    assert (root.tag, root.get("tests"), root.get("failures"), root.get("errors")) == (
        "testsuites",
        "2",
        "1",
        "0",
    )
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == "beta"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"flagged@2020-01-01", "plain@2020-01-01"}
    failure = cases["flagged@2020-01-01"].find("failure")
    assert failure is not None
    assert failure.get("message") == "outcome: expected approved, got denied"
    assert "FAIL beta/flagged@2020-01-01" in (failure.text or "")
    assert cases["flagged@2020-01-01"].get("line") == "2"
    assert cases["plain@2020-01-01"].find("failure") is None
    assert not list(project.glob(".report.xml.*"))


def test_junit_into_a_missing_folder_is_a_usage_error(project: Path) -> None:
    _intent(project, "beta", BETA_OK)
    result = _run("intent", "--junit", "no/such/folder/report.xml")
    assert result.exit_code == 2
    assert "cannot write `no/such/folder/report.xml`" in result.output


INLINE = """
[[expect]]
case = "inline-flagged"
version = "2020-01-01"
outcome = "denied"
why = "The beta flag denies."

[expect.input]
color = "red"
colors = ["red"]
flag = false
size = 1
beta_only = true
unused_fact = false
"""


def test_a_case_can_be_written_inline(project: Path) -> None:
    """OpenFisca-style: the facts in the expectation itself, no case file."""
    _intent(project, "beta", INLINE)
    result = _run("intent")
    assert result.exit_code == 0, result.output
    assert result.output.endswith("1 expectation(s) over 1 policy(ies): 1 passed, 0 failed, 0 error(s)\n")


def test_an_inline_case_is_validated_like_a_case_file(project: Path) -> None:
    _intent(project, "beta", INLINE.replace("size = 1", 'size = "big"'))
    result = _run("intent")
    assert result.exit_code == 1
    assert "ERROR beta/inline-flagged@2020-01-01" in result.output
    assert "the case does not fit the policy's facts: size:" in result.output


def test_inline_toml_dates_read_as_iso_strings() -> None:
    from datetime import date

    from engine.intent import _json_facts

    assert _json_facts({"on": date(2021, 1, 2), "r": {"d": [date(2020, 3, 9)]}}) == {
        "on": "2021-01-02",
        "r": {"d": ["2020-03-09"]},
    }


def test_inline_input_and_a_case_file_of_the_same_name_is_an_error(project: Path) -> None:
    (project / "cases" / "inline-flagged.json").write_text(json.dumps(CASE))
    _intent(project, "beta", INLINE)
    result = _run("intent")
    assert result.exit_code == 1
    assert "has inline `input` and a case file `cases/inline-flagged.json`: keep one" in result.output


def test_input_must_be_a_table(project: Path) -> None:
    _intent(project, "beta", '[[expect]]\ncase = "x"\nversion = "2020-01-01"\ninput = "flagged"\n')
    result = _run("intent")
    assert result.exit_code == 2
    assert "`input` must be a table of facts" in result.output
