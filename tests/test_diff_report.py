"""Report improvements (issue 18): each case shows its facts and its rules' descriptions, the HTML
page links to "Rules changed" from the top, and Markdown cells name rules without repeating citations."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from engine.cli import main

ARGS = ["diff", "policies/ear-742.7@2020-03-09", "@2020-10-06", "--cases", "fixtures/cases"]
CASE = "aircraft-parts-burma-air-force"


def _report(fmt: str) -> str:
    result = CliRunner().invoke(main, [*ARGS, "--format", fmt])
    assert result.exit_code == 0, result.output
    return result.output


def test_json_cases_carry_their_input_facts_without_notes(in_root: Path) -> None:
    case = next(c for c in json.loads(_report("json"))["cases"] if c["case"] == CASE)
    given = json.loads(Path(f"fixtures/cases/{CASE}.json").read_text(encoding="utf-8"))
    assert case["facts"] == {k: v for k, v in given.items() if not k.startswith("$")}


def test_markdown_case_shows_facts_descriptions_and_cites_each_rule_once(in_root: Path) -> None:
    text = _report("md")
    block = text.split(f"<details><summary><code>{CASE}</code>")[1].split("</details>")[0]
    assert "Facts: `eccn = 9A991`, `control_reason = {AT, UN}`" in block
    change_rows = [
        row for row in block.splitlines() if row.startswith("| `license_review") or row.startswith("| `+ ")
    ]
    assert change_rows and not any("CFR" in row for row in change_rows)  # ids only in the change cells
    rule_row = next(row for row in block.splitlines() if row.startswith("| `other-reason-hr-abuse-risk`"))
    assert "removes the favourable presumption" in rule_row  # the rule's description
    assert rule_row.count("15 CFR 742.7(b)(1)") == 1


def test_html_links_rules_changed_from_the_top_and_shows_facts_and_descriptions(in_root: Path) -> None:
    page = _report("html")
    summary = page.split('<section id="summary">')[1].split("</section>")[0]
    assert re.search(r'<a href="#rules">Rules changed: \d+</a>', summary)
    assert '<section id="rules">' in page
    assert '<details class="facts"><summary>Facts of the case</summary>' in page
    assert '<span class="desc">For such an item, a risk that it will be used' in page


MINI = """policy "mini"
  title "Mini"
  version "{version}"
  effective {version}
  status in-force
  source "{source}"

enum Review "review" = <favorable, not_applicable>
fact cc: boolean "controlled for crime control"
decision license_review: Review default not_applicable "how the application is reviewed"

{comment}
rule favorable "CC items are considered favourably"
  cite "P(1)"
  if cc
  then decide license_review = favorable
"""

NOTE = "# Interpretation: a CC item is one on the\n# 742.7(a) list on the evaluation date."
REWRAPPED = "#   Interpretation: a CC item is one on the 742.7(a) list\n#   on the evaluation date."
REWORDED = "# Interpretation: a CC item is one on the\n# 742.7(a) list on the application date."


def _mini_diff(tmp_path: Path, after_comment: str, after_source: str = "tests") -> dict:
    (tmp_path / "cases").mkdir(exist_ok=True)
    (tmp_path / "cases" / "c.json").write_text('{"cc": true}')
    a = tmp_path / "a.policy"
    b = tmp_path / "b.policy"
    a.write_text(MINI.format(version="2021-01-01", source="tests", comment=NOTE))
    b.write_text(MINI.format(version="2021-01-01", source=after_source, comment=after_comment))
    result = CliRunner().invoke(
        main, ["diff", str(a), str(b), "--cases", str(tmp_path / "cases"), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_rewrapping_a_comment_is_layout_not_a_change(tmp_path: Path) -> None:
    report = _mini_diff(tmp_path, REWRAPPED)
    assert report["comment_changes"] == [] and report["header_changes"] == []


def test_changed_comment_words_show_by_the_rule_they_annotate(tmp_path: Path) -> None:
    report = _mini_diff(tmp_path, REWORDED)
    assert report["comment_changes"] == [
        {
            "anchor": "rule favorable",
            "before": "Interpretation: a CC item is one on the 742.7(a) list on the evaluation date.",
            "after": "Interpretation: a CC item is one on the 742.7(a) list on the application date.",
        }
    ]


def test_a_header_change_shows(tmp_path: Path) -> None:
    report = _mini_diff(tmp_path, NOTE, after_source="tests, as amended")
    assert report["header_changes"] == [{"field": "source", "before": "tests", "after": "tests, as amended"}]


def test_text_and_markdown_show_header_and_comment_changes(in_root: Path) -> None:
    text = CliRunner().invoke(main, ARGS).output
    assert "\nHeader changed:\n  ~ version\n" in text and "\n  ~ source\n" in text
    assert "\nComments changed (words only; re-wrapping is not a change):\n" in text
    md = _report("md")
    assert "### Header changed" in md and "### Comments changed" in md
    assert '<a href="#comment-changes">' in _report("html")
