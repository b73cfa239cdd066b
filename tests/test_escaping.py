"""Nothing a policy author or a case supplier writes reaches a terminal as control codes or a
Markdown report as HTML (engine/escape.py is the one policy; docs/security.md).

Each test plants hostile text (an ESC sequence that clears the screen and prints a fake
line, a bidi override, a NUL, `<script>`, `<img onerror>`, `</details>`) in every place a
renderer copies text from: case values and `$comment`s, descriptions, titles, citations,
file names, and the source lines `check` quotes. Then no output may carry it raw.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from engine import escape
from engine.cli import main
from engine.errors import Diagnostic, render

CLEAR = "\x1b[2J\x1b[H"
FAKE = CLEAR + "license_review = favorable\r\n\u202e"
INLINE = CLEAR + "license_review = favorable\u202e\x07"  # what a one-line policy string can hold
HTML = "<script>alert(1)</script><img src=x onerror=alert(1)></details>\x00"

#: Raw characters that must never reach a terminal or a report from input.
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
RAW_HTML = re.compile(r"<(script|img|iframe)", re.IGNORECASE)  # `</details>`: counted, see below


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def hostile_policy(version: str, rule_text: str, outcome: str = "favorable") -> str:
    return f'''policy "mini"
  title "Mini {HTML}"
  version "{version}"
  effective {version}
  status in-force
  source "tests {HTML}"
  description "{HTML} {INLINE}"

enum Review "review" = <favorable, not_favorable, not_applicable>
fact eccn: string "the ECCN {HTML}"
fact cc: boolean "controlled {HTML}"
decision license_review: Review default not_applicable "how {HTML}"
obligation human-rights review "weighed {HTML}"

rule favorable "{rule_text} {HTML} {INLINE}"
  cite "P(1) {HTML} {INLINE}"
  if cc and eccn = "0A978"
  then decide license_review = {outcome}
'''


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    mini = tmp_path / "mini"
    mini.mkdir()
    (mini / "2021-01-01.policy").write_text(hostile_policy("2021-01-01", "before"), encoding="utf-8")
    (mini / "2022-01-01.policy").write_text(
        hostile_policy("2022-01-01", "after", "not_favorable"), encoding="utf-8"
    )
    return mini


@pytest.fixture
def case_dir(tmp_path: Path) -> Path:
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "hostile.json").write_text(
        json.dumps({"$comment": HTML + FAKE, "cc": True, "eccn": "0A978" + FAKE}), encoding="utf-8"
    )
    (cases / "plain.json").write_text(json.dumps({"cc": True, "eccn": "0A978"}), encoding="utf-8")
    return cases


FENCE = re.compile(r"^ *```.*?^ *```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)")


def outside_code(markdown: str) -> str:
    """The Markdown a renderer interprets: fenced blocks and code spans (shown verbatim) taken out."""
    return CODE_SPAN.sub("", FENCE.sub("", markdown))


def assert_inert(text: str, markdown: bool) -> None:
    assert not RAW_CONTROL.search(text), repr(RAW_CONTROL.search(text))
    if markdown:
        prose = outside_code(text)
        found = RAW_HTML.search(prose)
        assert not found, prose[max(found.start() - 60, 0) :][:160] if found else ""


def test_the_policy_itself() -> None:
    assert escape.terminal("a\x1b[2Jb\r\n\u202e\x00\ud800") == "a\\x1b[2Jb\\r\\n\\u202e\\x00\\ud800"
    assert escape.terminal("plain text, é, 字") == "plain text, é, 字"
    assert escape.markdown("</details><b>x</b> a < b, c <= 2, <!-- x") == (
        "&lt;/details>&lt;b>x&lt;/b> a < b, c <= 2, &lt;!-- x"
    )
    assert escape.code("a`b") == "``a`b``"
    assert escape.code("`x") == "`` `x ``"
    assert escape.excerpt("x" * 10_000, 10) == "xxxxxxxxxx... (10000 characters)"


@pytest.mark.parametrize("fmt", ["text", "md", "json"])
def test_eval_explain_escapes_case_values_and_policy_text(folder: Path, case_dir: Path, fmt: str) -> None:
    result = run(
        "eval", folder / "2022-01-01.policy", case_dir / "hostile.json", "--explain", "--format", fmt
    )
    assert result.exit_code == 0, result.output
    assert_inert(result.output, markdown=fmt == "md")
    if fmt == "text":
        assert "\\x1b[2J" in result.output  # shown, visibly, not dropped


@pytest.mark.parametrize("fmt", ["text", "md"])
def test_diff_reports_escape_everything_they_copy(folder: Path, case_dir: Path, fmt: str) -> None:
    result = run(
        "diff",
        folder / "2021-01-01.policy",
        folder / "2022-01-01.policy",
        "--cases",
        case_dir,
        "--format",
        fmt,
    )
    assert result.exit_code in (0, 1), result.output
    assert_inert(result.output, markdown=fmt == "md")
    if fmt == "md":
        assert "&lt;/details>" in result.output
        prose = outside_code(result.output)
        assert prose.count("<details>") == prose.count("</details>") >= 1


def test_single_case_diff_escapes(folder: Path, case_dir: Path) -> None:
    result = run(
        "diff", folder / "2021-01-01.policy", folder / "2022-01-01.policy", case_dir / "hostile.json"
    )
    assert result.exit_code in (0, 1), result.output
    assert_inert(result.output, markdown=False)


def test_policy_docs_escape_titles_descriptions_citations(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    result = run("docs", folder.parent, "--output", out)
    assert result.exit_code == 0, result.output
    pages = list(out.rglob("*.md"))
    assert pages
    for page in pages:
        assert_inert(page.read_text(encoding="utf-8"), markdown=True)


def test_check_quotes_source_lines_escaped(tmp_path: Path) -> None:
    bad = tmp_path / "bad.policy"
    bad.write_text(f'policy "x"\n  title "t"\nrule r "{CLEAR}fake" cite "c" if nope then\n', encoding="utf-8")
    result = run("check", bad)
    assert result.exit_code == 1
    assert_inert(result.output, markdown=False)


def test_a_tab_does_not_misalign_the_underline(tmp_path: Path) -> None:
    source = "\tif\tbad_name then"
    file = tmp_path / "t.policy"
    diagnostic = Diagnostic(
        code="x", message="m", file=str(file), line=1, column=5, end_line=1, end_column=13
    )
    lines = render(diagnostic, {str(file): source}).splitlines()
    shown, underline = lines[3], lines[4]
    start = underline.index("^")
    assert shown[start : start + underline.count("^")] == "bad_name"


def test_case_errors_do_not_echo_huge_or_raw_values(folder: Path, tmp_path: Path) -> None:
    case = tmp_path / "bad.json"
    case.write_text(json.dumps({"cc": "x" * 1_000_000 + CLEAR, "eccn": "0A978", CLEAR: 1}), encoding="utf-8")
    result = run("eval", folder / "2022-01-01.policy", case)
    assert result.exit_code == 1
    assert len(result.output) < 2_000
    assert_inert(result.output, markdown=False)
