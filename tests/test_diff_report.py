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
