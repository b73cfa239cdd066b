"""`policy diff` and `policy versions`: the diff as data, the command line, and its edge cases.

Small self-contained policies are written to a temporary folder so each test controls
exactly what changes between the two versions; the bundled 742.7 versions are pinned by
the golden snapshots in test_diff_golden.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from engine import diff as d
from engine.cli import main

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "fixtures" / "cases"
EAR_742_7 = ROOT / "policies" / "ear-742.7"

MINI_HEADER = """policy "mini"
  title "A small policy for diff tests"
  version "{version}"
  effective {effective}
  status {status}
  source "tests"

enum Review "review" = <favorable, not_favorable, not_applicable>
fact cc: boolean "controlled for crime control"
fact risk: boolean "risk of abuse"
decision license_review: Review default not_applicable "how the application is reviewed"
obligation human-rights review "human rights are weighed"
"""

FAVORABLE = """
rule favorable "CC items are considered favourably"
  cite "P(1)"
  if cc
  then decide license_review = favorable
"""

RISK = """
rule risk "A risk removes the favourable presumption"
  cite "P(2)"
  overrides favorable
  if cc and risk
  then decide license_review = not_favorable and require human-rights review
"""

MiniWriter = Callable[..., Path]


@pytest.fixture
def mini(tmp_path: Path) -> MiniWriter:
    """Write a version of the `mini` policy into tmp_path/mini/<version>.policy."""

    def write(
        version: str, rules: str, effective: str = "", status: str = "in-force", extra: str = ""
    ) -> Path:
        folder = tmp_path / "mini"
        folder.mkdir(exist_ok=True)
        header = MINI_HEADER.format(version=version, effective=effective or version, status=status)
        path = folder / f"{version}.policy"
        path.write_text(header + extra + rules, encoding="utf-8")
        return path

    return write


@pytest.fixture
def cases(tmp_path: Path) -> Path:
    """Four cases covering every combination of the two facts."""
    folder = tmp_path / "cases"
    folder.mkdir()
    for cc in (True, False):
        for risk in (True, False):
            name = f"{'cc' if cc else 'nocc'}-{'risk' if risk else 'norisk'}.json"
            (folder / name).write_text(
                json.dumps({"$comment": name, "cc": cc, "risk": risk}), encoding="utf-8"
            )
    return folder


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def report_of(result: Result) -> d.DiffReport:
    """The JSON report parsed back into the model: the JSON is exactly the model's dump."""
    return d.DiffReport.model_validate(json.loads(result.output))


# ---------------------------------------------------------------------------
# Outcomes and transitions


def test_added_exception_changes_only_the_cases_it_covers(mini: MiniWriter, cases: Path) -> None:
    mini("2021-01-01", FAVORABLE)
    mini("2022-01-01", FAVORABLE + RISK)
    result = run("diff", mini("2021-01-01", FAVORABLE).parent, "--cases", cases, "--format", "json")
    assert result.exit_code == 0, result.output
    report = report_of(result)
    assert report.diff_version == d.DIFF_VERSION
    assert (report.summary.compared, report.summary.changed, report.summary.unchanged) == (4, 1, 3)
    assert [c.case for c in report.cases] == ["cc-risk"]
    labels = {t.label: t.count for t in report.summary.transitions}
    assert labels == {"license_review: favorable -> not_favorable": 1, "+ human-rights review": 1}
    change = report.cases[0].changes[0]
    assert [r.rule for r in change.rules_before] == ["favorable"]
    assert [(r.rule, r.citations) for r in change.rules_after] == [("risk", ["P(2)"])]


def test_trace_diff_aligns_rules_by_id_and_marks_status_changes(mini: MiniWriter, cases: Path) -> None:
    folder = mini("2021-01-01", FAVORABLE).parent
    mini("2022-01-01", FAVORABLE + RISK)
    report = report_of(run("diff", folder, "--cases", cases, "--format", "json"))
    rows = {r.rule: r for r in report.cases[0].rules}
    assert rows["favorable"].before is not None and rows["favorable"].before.status == "fired"
    assert rows["favorable"].after is not None and rows["favorable"].after.status == "overridden"
    assert rows["favorable"].after.overridden_by == ["risk"]
    assert rows["risk"].before is None and rows["risk"].after is not None
    assert rows["risk"].changed and rows["risk"].status_changed


def test_identical_versions_report_no_change_and_pass_the_gate(mini: MiniWriter, cases: Path) -> None:
    a = mini("2021-01-01", FAVORABLE + RISK)
    b = mini("2022-01-01", FAVORABLE + RISK)
    result = run("diff", a, b, "--cases", cases, "--fail-on-change")
    assert result.exit_code == 0, result.output
    assert "4 compared, 0 changed" in result.output
    assert "No rule changed" in result.output


def test_fail_on_change_exits_1_when_a_decision_changes(mini: MiniWriter, cases: Path) -> None:
    a = mini("2021-01-01", FAVORABLE)
    b = mini("2022-01-01", FAVORABLE + RISK)
    assert run("diff", a, b, "--cases", cases).exit_code == 0
    assert run("diff", a, b, "--cases", cases, "--fail-on-change").exit_code == 1


def test_same_outcome_for_other_reasons_is_listed_but_not_a_change(mini: MiniWriter, cases: Path) -> None:
    renamed = RISK.replace("rule risk ", "rule abuse-risk ")
    a = mini("2021-01-01", FAVORABLE + RISK)
    b = mini("2022-01-01", FAVORABLE + renamed)
    result = run("diff", a, b, "--cases", cases, "--format", "json", "--fail-on-change")
    assert result.exit_code == 0
    report = report_of(result)
    assert report.summary.changed == 0 and report.summary.reasons_changed == 1
    assert [(c.case, c.status) for c in report.cases] == [("cc-risk", "reasons_changed")]


def test_conditions_are_aligned_by_text_across_depths(mini: MiniWriter, cases: Path) -> None:
    a = mini("2021-01-01", FAVORABLE + RISK)
    b = mini("2022-01-01", FAVORABLE + RISK.replace("if cc and risk", "if risk"))
    report = report_of(run("diff", a, b, "--cases", cases, "--format", "json"))
    nocc = next(c for c in report.cases if c.case == "nocc-risk")
    row = next(r for r in nocc.rules if r.rule == "risk")
    texts = [
        (c.before and c.before.condition, c.after and c.after.condition, c.changed) for c in row.conditions
    ]
    # `risk` is matched across depths: a root now, a child of `cc and risk` before
    assert texts == [("cc and risk", None, True), ("cc", None, True), ("risk", "risk", False)]
    assert row.before is not None and row.before.status == "not_fired"
    assert row.after is not None and row.after.status == "fired"
    assert nocc.changes[0].transition == "license_review--not_applicable--to--not_favorable"


# ---------------------------------------------------------------------------
# Rule changes (syntax trees, spans ignored)


def test_layout_and_comments_are_not_rule_changes(mini: MiniWriter, cases: Path) -> None:
    relaid = '\n# a comment\nrule favorable   "CC items are considered favourably" cite "P(1)"\n if cc then decide license_review = favorable\n'
    a = mini("2021-01-01", FAVORABLE)
    b = mini("2022-01-01", relaid)
    report = report_of(run("diff", a, b, "--cases", cases, "--format", "json"))
    assert report.rule_changes == []
    assert report.summary.changed == 0


@pytest.mark.parametrize(
    ("edit", "aspects", "wording_only"),
    [
        (lambda t: t.replace("favourably", "favorably"), ["wording"], True),
        (lambda t: t.replace('"P(1)"', '"P(1)(a)"'), ["citations"], True),
        (lambda t: t.replace("if cc", "if cc and not risk"), ["condition"], False),
        (lambda t: t.replace("= favorable", "= not_favorable"), ["outcome"], False),
    ],
)
def test_rule_changes_are_told_apart(
    mini: MiniWriter, cases: Path, edit: Callable[[str], str], aspects: list[str], wording_only: bool
) -> None:
    a = mini("2021-01-01", FAVORABLE)
    b = mini("2022-01-01", edit(FAVORABLE))
    report = report_of(run("diff", a, b, "--cases", cases, "--format", "json"))
    [change] = report.rule_changes
    assert (change.rule, change.change, change.aspects, change.wording_only) == (
        "favorable",
        "changed",
        aspects,
        wording_only,
    )


def test_added_and_removed_rules_carry_their_text_and_citations(mini: MiniWriter, cases: Path) -> None:
    a = mini("2021-01-01", FAVORABLE + RISK)
    b = mini("2022-01-01", FAVORABLE + RISK.replace("rule risk ", "rule abuse-risk "))
    report = report_of(run("diff", a, b, "--cases", cases, "--format", "json"))
    kinds = {c.rule: c.change for c in report.rule_changes}
    assert kinds == {"risk": "removed", "abuse-risk": "added"}
    added = next(c for c in report.rule_changes if c.change == "added")
    assert added.after is not None and added.after.condition == "cc and risk"
    assert added.citations == ["P(2)"] and added.after.overrides == ["favorable"]


def test_changed_derived_facts_are_reported(mini: MiniWriter, cases: Path) -> None:
    rules = 'define flagged "flagged" = risk\n' + FAVORABLE
    a = mini("2021-01-01", rules)
    b = mini("2022-01-01", rules.replace("= risk", "= risk and cc"))
    report = report_of(run("diff", a, b, "--cases", cases, "--format", "json"))
    assert [(c.name, c.before, c.after) for c in report.definition_changes] == [
        ("flagged", "risk", "risk and cc")
    ]
    assert report.cases == []  # `flagged` changed value for two cases, but no rule reads it


# ---------------------------------------------------------------------------
# Bad input: reported per case, the other cases still compared


def test_a_case_invalid_under_one_version_is_reported_and_others_compared(
    mini: MiniWriter, cases: Path
) -> None:
    a = mini("2021-01-01", FAVORABLE)
    b = mini("2022-01-01", FAVORABLE, extra='fact quantity: number "units"\n')
    (cases / "broken.json").write_text("{not json", encoding="utf-8")
    result = run("diff", a, b, "--cases", cases, "--format", "json")
    assert result.exit_code == 1
    report = report_of(result)
    assert report.summary.failed == 5 and report.summary.compared == 0
    failed = {c.case: c.errors for c in report.cases}
    assert failed["cc-risk"][0].side == "after"
    assert failed["cc-risk"][0].problems == ["quantity: is required but missing"]
    assert failed["broken"][0].side == "case" and "not JSON" in failed["broken"][0].problems[0]


def test_only_the_bad_case_fails(mini: MiniWriter, cases: Path) -> None:
    a = mini("2021-01-01", FAVORABLE)
    b = mini("2022-01-01", FAVORABLE + RISK)
    (cases / "typo.json").write_text(json.dumps({"cc": "yes please", "risk": False}), encoding="utf-8")
    result = run("diff", a, b, "--cases", cases)
    assert result.exit_code == 1
    assert "4 compared, 1 changed" in result.output
    assert f"cannot decide under {a} (before)" in result.output
    assert "cc: must be true or false, not 'yes please'" in result.output


def test_unknown_version_is_a_usage_error_naming_the_versions(mini: MiniWriter, cases: Path) -> None:
    folder = mini("2021-01-01", FAVORABLE).parent
    mini("2022-01-01", FAVORABLE)
    result = run("diff", f"{folder}@2021-01-01", "@2022-01-O1", "--cases", cases)
    assert result.exit_code == 2
    assert "has no version `2022-01-O1`" in result.output
    assert "its versions are 2021-01-01, 2022-01-01" in result.output
    assert "Traceback" not in result.output


def test_missing_cases_is_a_usage_error(mini: MiniWriter) -> None:
    a = mini("2021-01-01", FAVORABLE)
    b = mini("2022-01-01", FAVORABLE)
    result = run("diff", a, b)
    assert result.exit_code == 2
    assert "give --cases DIR" in result.output


# ---------------------------------------------------------------------------
# Choosing the sides


def test_without_versions_the_two_latest_are_compared(mini: MiniWriter, cases: Path) -> None:
    mini("2020-01-01", FAVORABLE)
    mini("2021-01-01", FAVORABLE)
    folder = mini("2022-01-01", FAVORABLE + RISK, status="proposed").parent
    report = report_of(run("diff", folder, "--cases", cases, "--format", "json"))
    assert (report.before.version, report.after.version) == ("2021-01-01", "2022-01-01")
    assert report.after.status == "proposed"


def test_a_date_picks_the_version_in_force_and_is_the_evaluation_date(mini: MiniWriter, cases: Path) -> None:
    folder = mini("2021-01-01", FAVORABLE).parent
    mini("2022-01-01", FAVORABLE + RISK)
    report = report_of(
        run("diff", f"{folder}@2021-06-30", "@2022-01-01", "--cases", cases, "--format", "json")
    )
    assert report.before.version == "2021-01-01"
    assert report.before.label == "2021-01-01"  # the version the date picked, not the date
    assert str(report.before.evaluated_at) == "2021-06-30"
    assert str(report.after.evaluated_at) == "2022-01-01"


def git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        check=True,
        capture_output=True,
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_working_copy_against_git_head(mini: MiniWriter, cases: Path) -> None:
    path = mini("2021-01-01", FAVORABLE)
    git(path.parent, "init", "-q")
    git(path.parent, "add", path.name)
    git(path.parent, "commit", "-q", "-m", "first")
    path.write_text(path.read_text(encoding="utf-8") + RISK, encoding="utf-8")
    before_files = sorted(p.name for p in path.parent.iterdir())
    result = run(
        "diff", path, "--against", "git:HEAD", "--cases", cases, "--format", "json", "--fail-on-change"
    )
    assert result.exit_code == 1, result.output
    report = report_of(result)
    assert report.before.label == "git:HEAD" and report.before.path == f"git:HEAD:{path}"
    assert report.after.label == "working copy"
    assert report.summary.changed == 1
    assert sorted(p.name for p in path.parent.iterdir()) == before_files  # the temporary copy is gone


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_uncommitted_file_against_git_is_a_clear_error(mini: MiniWriter, cases: Path) -> None:
    path = mini("2021-01-01", FAVORABLE)
    git(path.parent, "init", "-q")
    result = run("diff", path, "--against", "git:HEAD", "--cases", cases)
    assert result.exit_code == 2
    assert "`HEAD` is not a commit" in result.output  # a repository with no commit yet


def test_against_needs_a_git_revision(mini: MiniWriter, cases: Path) -> None:
    result = run("diff", mini("2021-01-01", FAVORABLE), "--against", "HEAD", "--cases", cases)
    assert result.exit_code == 2
    assert "write --against git:HEAD" in result.output


# ---------------------------------------------------------------------------
# Formats


def test_single_case_prints_both_traces_side_by_side(mini: MiniWriter, cases: Path) -> None:
    a = mini("2021-01-01", FAVORABLE)
    b = mini("2022-01-01", FAVORABLE + RISK)
    result = run("diff", a, b, cases / "cc-risk.json")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert any(line.startswith("! license_review") and "| not_favorable" in line for line in lines)
    assert any(line.startswith("! rule risk") for line in lines)
    assert any(line.startswith("  recommendations") for line in lines)  # same on both sides: unmarked


def test_single_unchanged_case_is_still_shown(mini: MiniWriter, cases: Path) -> None:
    a = mini("2021-01-01", FAVORABLE)
    b = mini("2022-01-01", FAVORABLE + RISK)
    report = report_of(run("diff", a, b, cases / "nocc-norisk.json", "--format", "json"))
    assert report.mode == "case" and [c.status for c in report.cases] == ["unchanged"]


def test_text_has_colour_only_when_asked(mini: MiniWriter, cases: Path) -> None:
    a = mini("2021-01-01", FAVORABLE)
    b = mini("2022-01-01", FAVORABLE + RISK)
    plain = run("diff", a, b, "--cases", cases)
    assert "\x1b[" not in plain.output  # CliRunner's stdout is not a terminal
    report = report_of(run("diff", a, b, "--cases", cases, "--format", "json"))
    assert "\x1b[33m" in d.render_text(report, color=True)


def test_markdown_and_html_carry_the_same_transitions(mini: MiniWriter, cases: Path, tmp_path: Path) -> None:
    a = mini("2021-01-01", FAVORABLE)
    b = mini("2022-01-01", FAVORABLE + RISK)
    md = run("diff", a, b, "--cases", cases, "--format", "md").output
    assert "| `license_review: favorable -> not_favorable` | 1 |" in md
    out = tmp_path / "report.html"
    result = run("diff", a, b, "--cases", cases, "--format", "html", "-o", out)
    assert result.exit_code == 0
    html = out.read_text(encoding="utf-8")
    assert (
        'data-transitions="license_review--favorable--to--not_favorable obligation--added--human-rights-review"'
        in html
    )
    assert "http://" not in html and "https://" not in html and "<link" not in html


def test_html_escapes_case_text(mini: MiniWriter, cases: Path) -> None:
    a = mini("2021-01-01", FAVORABLE)
    b = mini("2022-01-01", FAVORABLE + RISK)
    (cases / "cc-risk.json").write_text(
        json.dumps({"$comment": "<script>alert(1)</script>", "cc": True, "risk": True}), encoding="utf-8"
    )
    html = run("diff", a, b, "--cases", cases, "--format", "html").output
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# ---------------------------------------------------------------------------
# policy versions


def test_versions_lists_dates_status_and_hash(in_root: Path) -> None:
    result = run("versions", "policies/ear-742.7")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["version", "effective", "ends", "status", "content", "hash"]
    assert lines[1].split()[:4] == ["2020-03-09", "2020-03-09", "2020-10-05", "in-force"]
    assert lines[3].split()[:4] == ["2024-07-29", "2024-07-29", "open", "proposed"]
    data = json.loads(run("versions", "policies/ear-742.7", "--format", "json").output)
    diff_json = report_of(run("diff", "policies/ear-742.7", "--cases", "fixtures/cases", "--format", "json"))
    assert data[2]["content_hash"] == diff_json.after.content_hash
    assert len(data[2]["content_hash"]) == 64


def test_versions_of_an_invalid_version_exit_1(mini: MiniWriter) -> None:
    folder = mini("2021-01-01", FAVORABLE).parent
    mini("2022-01-01", FAVORABLE.replace("= favorable", "= splendid"))
    result = run("versions", folder)
    assert result.exit_code == 1
    assert "(invalid: 1 error(s))" in result.output


def test_a_rewritten_condition_that_decides_alike_is_not_a_trace_change(
    mini: MiniWriter, cases: Path
) -> None:
    a = mini("2021-01-01", FAVORABLE + RISK)
    b = mini("2022-01-01", FAVORABLE + RISK.replace("if cc and risk", "if risk and cc"))
    report = report_of(run("diff", a, b, "--cases", cases, "--format", "json"))
    assert report.cases == []
    assert [(c.rule, c.aspects) for c in report.rule_changes] == [("risk", ["condition"])]


def test_every_json_field_is_documented() -> None:
    """docs/diff-format.md is the contract: a field added to the model must be described there."""
    text = (ROOT / "docs" / "diff-format.md").read_text(encoding="utf-8")
    models = [
        d.DiffReport,
        d.VersionInfo,
        d.Summary,
        d.Transition,
        d.CaseDiff,
        d.OutcomeSummary,
        d.OutcomeChange,
        d.ValueChange,
        d.CaseProblem,
        d.RuleRow,
        d.RuleSide,
        d.ConditionRow,
        d.ConditionSide,
        d.RuleChange,
        d.RuleText,
        d.DefinitionChange,
    ]
    missing = [
        f"{model.__name__}.{name}"
        for model in models
        for name in model.model_fields
        if f"`{name}`" not in text and f'"{name}"' not in text
    ]
    assert missing == []
    assert f"`diff_version` {d.DIFF_VERSION}" in text or f"(`diff_version` {d.DIFF_VERSION})" in text


def console_blocks(text: str) -> list[tuple[str, list[str]]]:
    """(command, output lines) for each `$ policy ...` in the ```console blocks of a page."""
    found: list[tuple[str, list[str]]] = []
    for block in text.split("```console\n")[1:]:
        for line in block.split("\n```")[0].splitlines():
            if line.startswith("$ "):
                found.append((line[2:], []))
            elif found:
                found[-1][1].append(line)
    return [(command, lines) for command, lines in found if command.startswith("policy ")]


def unhashed(line: str) -> str:
    """A report line with its short content hashes replaced by `<hash>`."""
    return re.sub(r"\b[0-9a-f]{12}\b", "<hash>", line.rstrip())


def test_reviewing_guide_shows_real_output(in_root: Path) -> None:
    """Every output line pasted in docs/reviewing.md is still what the command prints, in order.

    Lines `[...]` mark cuts. Content hashes are compared as `<hash>`: they change with any
    edit to the pack (comments included) without the walkthrough becoming wrong. The
    `--against git:HEAD` example ran on a deliberately edited scratch clone and is not
    replayed here (test_working_copy_against_git_head covers it).
    """
    text = (ROOT / "docs" / "reviewing.md").read_text(encoding="utf-8")
    blocks = [(c, lines) for c, lines in console_blocks(text) if "--against" not in c]
    assert len(blocks) >= 5
    for command, lines in blocks:
        result = CliRunner().invoke(main, command.split()[1:])
        printed = iter(unhashed(line) for line in result.output.splitlines())
        for line in lines:
            if line.startswith("[...") or line.startswith("$ "):
                continue
            assert any(out == unhashed(line) for out in printed), f"{command!r} no longer prints {line!r}"
    full = CliRunner().invoke(
        main, ["diff", "policies/ear-742.7@2020-03-09", "@2020-10-06", "--cases", "fixtures/cases"]
    )
    report_lines = {unhashed(line) for line in full.output.splitlines()}
    for block in text.split("```text\n")[1:]:
        for line in block.split("\n```")[0].splitlines():
            assert unhashed(line) in report_lines, (
                f"the 2020-03-09..2020-10-06 report no longer prints {line!r}"
            )


def test_a_date_selector_labels_the_version_it_picked(in_root: Path) -> None:
    """`@2099-01-01` picks 2020-10-06: the report names that version, and decides on 2099-01-01."""
    result = run("diff", "policies/ear-742.7@2020-03-09", "@2099-01-01", "--cases", "fixtures/cases")
    assert result.output.startswith("policy diff: ear-742.7 2020-03-09 -> 2020-10-06\n")
    assert "cases decided on 2099-01-01" in result.output
    assert "2099-01-01" not in result.output.replace("cases decided on 2099-01-01", "")
