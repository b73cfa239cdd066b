"""The `policy` command line: exit codes, version choice, case input, output formats.

Exit codes (engine/cli.py): 0 success; 1 problems found (errors in a policy, an invalid case,
bad JSON); 2 usage mistakes (click's own, a date with no version in force, an unknown
version). Runs in-process with click's CliRunner, from the repository root.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from engine.cli import main
from tests.conftest import ROOT

DEMO = "fixtures/language/demo"
CASE = "fixtures/language/cases/surveillance-cameras-kenya-police.json"


@pytest.fixture(autouse=True)
def _from_root(in_root: Path) -> None:
    """Every command runs from the repository root, as the docs show them."""


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)


# ---------------------------------------------------------------------------
# policy check


def test_check_clean_exits_0() -> None:
    result = run("check", "fixtures/language/surveillance.policy", "fixtures/language/demo")
    assert result.exit_code == 0
    assert result.stdout == "checked 5 file(s): 0 error(s), 0 warning(s)\n"


def test_check_with_errors_exits_1_and_shows_every_problem() -> None:
    result = run("check", "fixtures/errors/unknown-fact.policy", "fixtures/errors/duplicate-value.policy")
    assert result.exit_code == 1
    assert "error[unknown-fact]: unknown fact `hr_abuse_rsk`" in result.stdout
    assert "  --> fixtures/errors/unknown-fact.policy:14:6" in result.stdout
    assert "error[duplicate-value]" in result.stdout
    assert result.stdout.endswith("checked 2 file(s): 2 error(s), 0 warning(s)\n")


def test_check_with_only_warnings_exits_0() -> None:
    result = run("check", "fixtures/errors/presence-of-required.policy")
    assert result.exit_code == 0
    assert "warning[presence-of-required]" in result.stdout
    assert result.stdout.endswith("checked 1 file(s): 0 error(s), 1 warning(s)\n")


def test_check_proves_conflicts() -> None:
    result = run("check", "fixtures/language/conflict.policy")
    assert result.exit_code == 1
    assert "error[conflict]" in result.stdout
    assert (
        "for example when destination = CN, end_user.type = government, hr_abuse_risk = true" in result.stdout
    )


def test_check_json_format() -> None:
    result = run("check", "--format", "json", "fixtures/errors/unknown-fact.policy")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == [
        {
            "code": "unknown-fact",
            "severity": "error",
            "message": "unknown fact `hr_abuse_rsk`",
            "file": "fixtures/errors/unknown-fact.policy",
            "line": 14,
            "column": 6,
            "end_line": 14,
            "end_column": 18,
            "help": "did you mean `hr_abuse_risk`?",
        }
    ]


def test_check_a_whole_folder() -> None:
    result = run("check", "fixtures/errors")
    assert result.exit_code == 1
    assert "error(s)" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check"], "Missing argument 'PATHS...'"),
        (["check", "nowhere.policy"], "Path 'nowhere.policy' does not exist"),
        (["check", "--format", "xml", DEMO], "Invalid value for '--format'"),
        (["eval", DEMO], "Missing argument 'CASE'"),
        (["eval", DEMO, CASE, "--at", "2021-13-01"], "`2021-13-01` is not a date; write YYYY-MM-DD"),
        (["eval", DEMO, CASE, "--format", "yaml"], "Invalid value for '--format'"),
        (["nosuchcommand"], "No such command"),
    ],
)
def test_usage_mistakes_exit_2(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.stderr


# ---------------------------------------------------------------------------
# policy eval: versions


def header(result: Result) -> str:
    return result.stdout.splitlines()[0]


@pytest.mark.parametrize(
    ("at", "version"),
    [
        ("2020-03-09", "2020-03-09"),
        ("2020-10-05", "2020-03-09"),  # `ends` is the last day in force
        ("2020-10-06", "2020-10-06"),
        ("2021-06-30", "2020-10-06"),
        ("2022-01-01", "2022-01-01"),
        ("2024-07-29", "2022-01-01"),  # the proposal takes effect that day, but is never picked by date
        ("2030-01-01", "2022-01-01"),
    ],
)
def test_at_picks_the_version_in_force(at: str, version: str) -> None:
    result = run("eval", DEMO, CASE, "--at", at)
    assert result.exit_code == 0, result.stderr
    assert header(result).startswith(f"demo @ {version} ")
    assert result.stdout.splitlines()[1] == f"evaluated at {at}"


def test_without_a_date_an_in_force_version_is_picked_never_a_proposal() -> None:
    result = run("eval", DEMO, CASE)
    assert result.exit_code == 0
    assert header(result).startswith("demo @ 2022-01-01 ")


def test_a_proposal_is_evaluated_only_when_named() -> None:
    result = run("eval", DEMO, CASE, "--version", "2024-07-29")
    assert result.exit_code == 0
    assert header(result) == "demo @ 2024-07-29 (89 FR 60998 (proposed))"
    assert "license_review = denial" in result.stdout


def test_a_date_before_the_first_version_is_a_clear_error() -> None:
    result = run("eval", DEMO, CASE, "--at", "2019-12-31")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "error: no version of `demo` is in force on 2019-12-31: the first takes effect on 2020-03-09 "
        "(2020-03-09 (2020-03-09 to 2020-10-05); 2020-10-06 (2020-10-06 to 2021-06-30); 2022-01-01 (2022-01-01 to open))\n"
        "  = help: name a date inside a window, or use --version\n"
    )


def test_a_date_in_a_gap_is_a_clear_error() -> None:
    result = run("eval", DEMO, CASE, "--at", "2021-08-01")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: no version of `demo` is in force on 2021-08-01 (in-force versions: "
    )
    assert "2020-10-06 (2020-10-06 to 2021-06-30)" in result.stderr


def test_an_unknown_version_is_a_usage_error() -> None:
    result = run("eval", DEMO, CASE, "--version", "2023-01-01")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: `demo` has no version `2023-01-01`\n"
        "  = help: its versions are 2020-03-09, 2020-10-06, 2022-01-01, 2024-07-29\n"
    )


def test_version_and_at_together_name_the_version_and_date_the_tables() -> None:
    result = run("eval", DEMO, CASE, "--version", "2020-10-06", "--at", "2025-01-01")
    assert result.exit_code == 0
    assert header(result).startswith("demo @ 2020-10-06 ")
    assert "evaluated at 2025-01-01" in result.stdout


def test_a_policy_file_can_be_given_directly() -> None:
    result = run("eval", "fixtures/language/surveillance.policy", CASE)
    assert result.exit_code == 0
    assert "require human-rights review" in result.stdout


# ---------------------------------------------------------------------------
# policy eval: cases and formats


def test_eval_decides_and_exits_0() -> None:
    result = run("eval", "fixtures/language/precedence.policy", CASE, "--explain")
    assert result.exit_code == 0
    assert result.stderr == ""
    assert (
        "license_review = not_favorable\n  because rule exception [exception], an exception to general"
        in result.stdout
    )
    assert "overridden: general [general rule], overridden by exception" in result.stdout


def test_case_from_stdin() -> None:
    text = (ROOT / CASE).read_text(encoding="utf-8")
    from_stdin = run("eval", "fixtures/language/precedence.policy", "-", stdin=text)
    from_file = run("eval", "fixtures/language/precedence.policy", CASE)
    assert from_stdin.exit_code == 0
    assert from_stdin.stdout == from_file.stdout


def test_bad_json_is_located() -> None:
    result = run("eval", DEMO, "-", stdin='{"eccn": "0A978",\n  "quantity": }\n')
    assert result.exit_code == 1
    assert result.stderr == "error[invalid-json]: <stdin>:2:15: Expecting value\n"


def test_bad_json_in_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "case.json"
    path.write_text("[1, 2", encoding="utf-8")
    result = run("eval", DEMO, str(path))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error[invalid-json]: {path}:1:")


def test_a_case_must_be_an_object() -> None:
    result = run("eval", DEMO, "-", stdin="[]")
    assert result.exit_code == 1
    assert result.stderr == "error[invalid-case]: <stdin>: a case is a JSON object of facts\n"


def test_a_missing_case_file_exits_1() -> None:
    result = run("eval", DEMO, "nowhere.json")
    assert result.exit_code == 1
    assert result.stderr == "error: cannot read case `nowhere.json`: No such file or directory\n"


def test_an_invalid_case_lists_each_bad_field_and_exits_1() -> None:
    case = json.loads((ROOT / CASE).read_text(encoding="utf-8"))
    case["destination"] = "FR"
    case["end_user"]["type"] = "alien"
    del case["quantity"]
    case["colour"] = "red"
    result = run("eval", DEMO, "-", stdin=json.dumps(case))
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "error[invalid-case]: <stdin> does not match the policy's facts"
    assert [line.split(":")[0].strip() for line in lines[1:-1]] == [
        "destination",
        "end_user.type",
        "quantity",
        "colour",
    ]
    assert lines[-1] == "  = help: `policy schema POLICY` prints the expected input"


def test_an_invalid_policy_exits_1_with_its_diagnostics() -> None:
    result = run("eval", "fixtures/errors/unknown-fact.policy", CASE)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "error[unknown-fact]: unknown fact `hr_abuse_rsk`" in result.stderr


def test_json_format_has_no_trace_unless_explained() -> None:
    plain = json.loads(run("eval", DEMO, CASE, "--format", "json", "--at", "2021-01-01").stdout)
    assert plain["trace"] is None
    assert plain["policy"] == "demo" and plain["version"] == "2020-10-06"
    assert plain["decisions"]["license_review"]["value"] == "not_favorable"
    explained = json.loads(
        run("eval", DEMO, CASE, "--format", "json", "--explain", "--at", "2021-01-01").stdout
    )
    assert explained["trace"]["trace_version"] == 1
    assert [r["rule"] for r in explained["trace"]["rules"]] == ["cc-favorable", "hr-risk"]
    assert {k: v for k, v in explained.items() if k != "trace"} == {
        k: v for k, v in plain.items() if k != "trace"
    }


def test_markdown_format() -> None:
    result = run("eval", DEMO, CASE, "--format", "md", "--at", "2021-01-01")
    assert result.exit_code == 0
    assert result.stdout.startswith("### demo @ 2020-10-06\n")
    assert "| `license_review = not_favorable` | `hr-risk` | 15 CFR 742.7(b)(1) |" in result.stdout


# ---------------------------------------------------------------------------
# policy schema, parse, compile; python -m engine


def test_schema_describes_the_case() -> None:
    result = run("schema", DEMO, "--version", "2020-10-06")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "Case for demo 2020-10-06"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {
        "eccn",
        "control_reason",
        "capability",
        "destination",
        "end_user",
        "hr_abuse_risk",
        "civil_disorder",
        "quantity",
        "tags",
    }
    props = schema["properties"]
    assert props["control_reason"]["items"]["enum"] == ["NS", "CC", "AT", "SS", "infosec"]
    assert props["control_reason"]["description"] == "reasons for control of the item"
    assert props["destination"]["enum"] == ["CN", "HK", "MO", "DE", "IN", "US", "KE"]
    record = schema["$defs"][props["end_user"]["$ref"].split("/")[-1]]
    assert record["required"] == ["type"]
    assert set(record["properties"]) == {"type", "name"}


def test_schema_accepts_what_eval_accepts() -> None:
    schema = json.loads(run("schema", DEMO, "--version", "2020-10-06").stdout)
    case = json.loads((ROOT / CASE).read_text(encoding="utf-8"))
    assert set(case) - {"$comment"} <= set(schema["properties"])
    assert set(schema["required"]) <= set(case)


def test_parse_prints_the_syntax_tree() -> None:
    result = run("parse", "fixtures/language/surveillance.policy")
    assert result.exit_code == 0
    tree = json.loads(result.stdout)
    assert tree["node"] == "SourceFile"
    (rule,) = [i for i in tree["items"] if i["node"] == "RuleDecl"]
    assert rule["id"]["name"] == "surveillance-review"
    assert rule["condition"]["node"] == "And"


def test_parse_reports_syntax_errors_and_exits_1() -> None:
    result = run("parse", "fixtures/errors/syntax.policy")
    assert result.exit_code == 1
    assert "error[syntax]: expected a condition after `and`, found `then`" in result.stderr


def test_compile_shows_the_generated_python() -> None:
    result = run("compile", "fixtures/language/surveillance.policy")
    assert result.exit_code == 0
    assert "def decide(f, t):" in result.stdout
    assert "def explain(f, t):" in result.stdout


def test_python_dash_m_engine_is_the_policy_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "engine", "check", "fixtures/language/surveillance.policy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "checked 1 file(s): 0 error(s), 0 warning(s)\n"
    failed = subprocess.run(
        [sys.executable, "-m", "engine", "eval", DEMO, CASE, "--at", "2019-01-01"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert failed.returncode == 2
    assert failed.stderr.startswith("error: no version of `demo` is in force on 2019-01-01")


# ---------------------------------------------------------------------------
# policy --version


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith(f"policy {version('policy-engine')} (Python ")
