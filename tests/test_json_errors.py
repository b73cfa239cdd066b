"""`--format json` errors: one JSON document on stdout, `{"error": {"kind", "diagnostics"}}`.

docs/errors.md#errors-as-json is the contract: a kind (`case`, `policy`, `version`, `usage`),
coded diagnostics with every field present, the exit status unchanged (1 for a bad policy or
case, 2 for usage and version), and nothing on stderr. Without `--format json` the text
errors stay as they were.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from engine.cli import main
from engine.commands.options import JSON_DIAGNOSTIC_FIELDS
from tests.conftest import ROOT

DEMO = "fixtures/language/demo"
CASE = "fixtures/language/cases/surveillance-cameras-kenya-police.json"


@pytest.fixture(autouse=True)
def _from_root(in_root: Path) -> None:
    """Every command runs from the repository root, as the docs show them."""


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)


def error_of(result: Result, kind: str, exit_code: int) -> list[dict[str, Any]]:
    """The diagnostics of a JSON error document, after checking its envelope and every row's fields."""
    assert result.exit_code == exit_code, result.output
    assert result.stderr == ""
    document = json.loads(result.stdout)
    assert list(document) == ["error"]
    assert list(document["error"]) == ["kind", "diagnostics"]
    assert document["error"]["kind"] == kind
    rows: list[dict[str, Any]] = document["error"]["diagnostics"]
    assert rows, "an error document always holds at least one diagnostic"
    for row in rows:
        assert tuple(row) == JSON_DIAGNOSTIC_FIELDS
        assert row["severity"] == "error"
    return rows


def good_case() -> dict[str, Any]:
    case: dict[str, Any] = json.loads((ROOT / CASE).read_text(encoding="utf-8"))
    return case


def test_bad_case_json_is_a_located_case_error() -> None:
    result = run("eval", DEMO, "-", "--format", "json", stdin='{"eccn": "0A978",\n  "quantity": }\n')
    (row,) = error_of(result, "case", 1)
    assert (row["code"], row["file"], row["line"], row["column"]) == ("invalid-json", "<stdin>", 2, 15)
    assert row["message"] == "Expecting value"
    assert row["help"]


def test_a_case_that_is_not_an_object() -> None:
    (row,) = error_of(run("eval", DEMO, "-", "--format", "json", stdin="[]"), "case", 1)
    assert row["code"] == "invalid-case"


def test_an_unreadable_case_file() -> None:
    (row,) = error_of(run("eval", DEMO, "nowhere.json", "--format", "json"), "case", 1)
    assert (row["code"], row["file"]) == ("unreadable-case", "nowhere.json")


def test_missing_fact_and_invalid_value_are_coded_by_field() -> None:
    case = good_case()
    case["destination"] = "FR"
    del case["quantity"]
    result = run("eval", DEMO, "-", "--format", "json", stdin=json.dumps(case))
    rows = error_of(result, "case", 1)
    by_field = {row["field"]: row for row in rows}
    assert set(by_field) == {"destination", "quantity"}
    assert by_field["destination"]["code"] == "invalid-value"
    assert "'FR'" in by_field["destination"]["message"]
    assert by_field["quantity"]["code"] == "missing-fact"
    assert all(row["file"] == "<stdin>" for row in rows)


def test_a_case_file_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "case.json"
    case = good_case()
    del case["quantity"]
    path.write_text(json.dumps(case), encoding="utf-8")
    (row,) = error_of(run("eval", DEMO, str(path), "--format", "json"), "case", 1)
    assert (row["code"], row["field"], row["file"]) == ("missing-fact", "quantity", str(path))


def test_a_policy_with_a_check_error() -> None:
    result = run("eval", "fixtures/errors/unknown-fact.policy", CASE, "--format", "json")
    (row,) = error_of(result, "policy", 1)
    assert row == {
        "code": "unknown-fact",
        "severity": "error",
        "message": "unknown fact `hr_abuse_rsk`",
        "file": "fixtures/errors/unknown-fact.policy",
        "line": 14,
        "column": 6,
        "end_line": 14,
        "end_column": 18,
        "field": None,
        "help": "did you mean `hr_abuse_risk`?",
    }


def test_an_unknown_version() -> None:
    result = run("eval", DEMO, CASE, "--version", "1999-01-01", "--format", "json")
    (row,) = error_of(result, "version", 2)
    assert row["code"] == "version"
    assert row["message"] == "`demo` has no version `1999-01-01`"
    assert row["help"].startswith("its versions are ")


def test_no_version_in_force_has_its_own_code() -> None:
    result = run("eval", DEMO, CASE, "--at", "2019-12-31", "--format", "json")
    (row,) = error_of(result, "version", 2)
    assert row["code"] == "no-version-in-force"
    assert "no version of `demo` is in force on 2019-12-31" in row["message"]


def test_no_version_in_force_is_coded_in_the_api() -> None:
    from engine import VersionError, load

    with pytest.raises(VersionError) as caught:
        load(DEMO, at="2019-12-31")
    assert caught.value.code == "no-version-in-force"
    assert [d.code for d in caught.value.diagnostics] == ["no-version-in-force"]
    with pytest.raises(VersionError) as unknown:
        load(DEMO, version="1999-01-01")
    assert unknown.value.code == "version"


@pytest.mark.parametrize(
    "args",
    [
        ["eval", DEMO, CASE, "--format", "json", "--at", "2021-13-01"],
        ["eval", DEMO, "--format=json"],
        ["check", "nowhere.policy", "--format", "json"],
        ["lint", "--format", "json"],
    ],
    ids=["bad-date", "missing-argument", "missing-path", "lint-no-path"],
)
def test_usage_errors(args: list[str]) -> None:
    (row,) = error_of(run(*args), "usage", 2)
    assert row["code"] == "usage"
    assert row["message"]


def test_success_is_unchanged() -> None:
    result = run("eval", DEMO, CASE, "--format", "json")
    assert result.exit_code == 0
    assert "error" not in json.loads(result.stdout)
    checked = run("check", "fixtures/errors/unknown-fact.policy", "--format", "json")
    assert checked.exit_code == 1
    assert [d["code"] for d in json.loads(checked.stdout)] == ["unknown-fact"]


@pytest.mark.parametrize(
    ("args", "stdin", "stderr", "exit_code"),
    [
        (["eval", DEMO, "-"], "[]", "error[invalid-case]: <stdin>: a case is a JSON object of facts\n", 1),
        (
            ["eval", DEMO, "nowhere.json"],
            None,
            "error: cannot read case `nowhere.json`: No such file or directory\n",
            1,
        ),
        (
            ["eval", DEMO, CASE, "--version", "1999-01-01"],
            None,
            "error: `demo` has no version `1999-01-01`\n",
            2,
        ),
    ],
    ids=["not-an-object", "unreadable", "unknown-version"],
)
def test_text_errors_are_unchanged_without_json(
    args: list[str], stdin: str | None, stderr: str, exit_code: int
) -> None:
    result = run(*args, stdin=stdin)
    assert result.exit_code == exit_code
    assert result.stdout == ""
    assert result.stderr.startswith(stderr)


def test_text_policy_and_case_errors_are_unchanged_without_json() -> None:
    policy = run("eval", "fixtures/errors/unknown-fact.policy", CASE)
    assert policy.exit_code == 1
    assert policy.stderr.startswith("error[unknown-fact]: unknown fact `hr_abuse_rsk`\n")
    case = good_case()
    del case["quantity"]
    bad = run("eval", DEMO, "-", stdin=json.dumps(case))
    assert bad.exit_code == 1
    assert bad.stderr.splitlines()[0] == "error[invalid-case]: <stdin> does not match the policy's facts"
    usage = run("eval", DEMO, CASE, "--at", "2021-13-01")
    assert usage.exit_code == 2
    assert "`2021-13-01` is not a date; write YYYY-MM-DD" in usage.stderr
