"""Fuzzing in the suite (issue 11): generated policies, random bytes and mutated cases go through
the parser, checker, compiler, evaluator, formatter, linter and every renderer; the only
acceptable failures are the engine's own typed errors. Any other exception fails the test.

The suite runs a small number of examples (about 10 s in all); `FUZZ_LONG=1 pytest
tests/test_fuzz.py` runs 50 times more for local hunting. Inputs worth keeping go into
`tests/data/fuzz_corpus/`, which every run replays.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine
from engine import cases, strictjson
from engine.checker import check_text
from engine.diff import diff_decisions, render_markdown, render_text
from engine.errors import CaseError, PolicyError, UsageError
from engine.formatter import format_text
from engine.render import render_decision

ROOT = Path(__file__).resolve().parent.parent
CORPUS = sorted((ROOT / "tests" / "data" / "fuzz_corpus").glob("*.policy"))
LONG = os.environ.get("FUZZ_LONG") == "1"
EXAMPLES = 2_000 if LONG else 40
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\ud800-\udfff]")
EXPECTED = (PolicyError, CaseError, UsageError, strictjson.JsonError)

# ---------------------------------------------------------------------------
# A grammar-aware policy generator

HOSTILE = st.sampled_from(
    ["", "\x1b[2J", "<script>", "</details>", "\x00", "\u202e", "`", "|", "\\\\", "é字"]
)
WORD = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
TEXT = st.lists(
    st.one_of(HOSTILE, st.text(alphabet=st.characters(blacklist_characters='"\\\n\r'), max_size=8)),
    max_size=4,
).map("".join)


def condition(depth: int = 0) -> st.SearchStrategy[str]:
    leaf = st.sampled_from(
        ["a", "b", "n > 5", "n <= 2", 's = "x"', "present n", "k in <yes, no>", "tags includes any <yes>"]
    )
    if depth > 3:
        return leaf
    sub = st.deferred(lambda: condition(depth + 1))
    return st.one_of(
        leaf,
        sub.map(lambda c: f"not {c}"),
        st.tuples(sub, st.sampled_from(["and", "or"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
    )


@st.composite
def policies(draw: Any) -> str:
    header = (
        f'policy "fuzz"\n  title "{draw(TEXT)}"\n  version "2021-01-01"\n  effective 2021-01-01\n'
        f'  status in-force\n  source "{draw(TEXT)}"\n  description "{draw(TEXT)}"\n\n'
        'enum R "r" = <yes, no>\ndecision d: R default no "d"\nobligation review "review"\n'
        'fact a: boolean "a"\nfact b: boolean "b"\nfact n: optional number "n"\nfact s: optional string "s"\n'
        'fact k: optional R "k"\nfact tags: set of R "t"\n'
    )
    rules = []
    count = draw(st.integers(1, 5))
    for i in range(count):
        overrides = f"  overrides r{i - 1}\n" if i and draw(st.booleans()) else ""
        outcome = draw(
            st.sampled_from(
                ["decide d = yes", "decide d = no", "require review", "decide d = yes and require review"]
            )
        )
        rules.append(
            f'rule r{i} "{draw(TEXT)}"\n  cite "{draw(TEXT)}"\n{overrides}  if {draw(condition())}\n  then {outcome}\n'
        )
    text = header + "\n".join(rules)
    if draw(st.integers(0, 9)) == 0:  # sometimes break it: cut, or splice a random character in
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["", '"', "(", "\t", "then", "\ufeff", "\x00"])) + text[at:]
    return text


CASES = st.fixed_dictionaries(
    {"a": st.booleans(), "b": st.booleans(), "tags": st.lists(st.sampled_from(["yes", "no"]), max_size=2)},
    optional={
        "n": st.one_of(st.integers(-10, 10), st.sampled_from(["1.5", "1_000", "١٢", True, None, 10**30])),
        "s": st.one_of(st.text(max_size=10), HOSTILE),
        "k": st.sampled_from(["yes", "no", "maybe", 3]),
        "$comment": st.one_of(HOSTILE, st.text(max_size=10)),
        "": st.integers(),
    },
)


def assert_printable(text: str, markdown: bool = False) -> None:
    assert not RAW.search(text), repr(text[max(RAW.search(text).start() - 20, 0) :][:60])  # type: ignore[union-attr]
    text.encode("utf-8")
    if markdown:
        assert "<script" not in text.replace("`<script>`", "")


def every_path(text: str, case: dict[str, Any], tmp_path: Path) -> None:
    """Parse, check, format, compile, evaluate, and render one policy with one case."""
    result = check_text(text, "fuzz.policy")
    assert all(d.line >= 0 for d in result.diagnostics)
    from engine.errors import render_all

    assert_printable(render_all(result.diagnostics, result.sources))
    try:
        format_text(text, "fuzz.policy")
    except Exception as exc:  # the formatter refuses broken or unsafe input with its own errors
        assert type(exc).__name__ in ("FormatError", "UnsafeFormat"), repr(exc)
    path = tmp_path / "fuzz.policy"
    path.write_text(text, "utf-8", errors="surrogatepass")
    try:
        policy = engine.load(path)
    except EXPECTED:
        return
    try:
        decision = policy.evaluate(case, trace=True)
    except CaseError:
        return
    for fmt in ("text", "md", "json"):
        assert_printable(render_decision(decision, fmt, explain=True), markdown=fmt == "md")
    case_file = cases.CaseFile(
        "fuzz", "fuzz.json", case, case.get("$comment") if isinstance(case.get("$comment"), str) else None
    )
    other = policy.evaluate({**case, "a": not case["a"]}, trace=True)
    from engine.diff import DiffReport  # noqa: F401 - the report model the renderers take

    diff = diff_decisions(case_file, decision, other)
    assert diff is not None


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_the_saved_corpus(path: Path, tmp_path: Path) -> None:
    every_path(path.read_text("utf-8"), {"a": True, "b": False, "tags": [], "s": "\x1b[2J"}, tmp_path)


@FUZZ
@given(text=policies(), case=CASES)
def test_generated_policies_and_cases(
    text: str, case: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    every_path(text, case, tmp_path_factory.mktemp("fuzz"))


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_through_the_parser_and_checker(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    result = check_text(text, "bytes.policy")
    from engine.errors import render_all

    assert_printable(render_all(result.diagnostics, result.sources))


FIXTURE = json.loads((ROOT / "fixtures/cases/aircraft-parts-burma-air-force.json").read_text("utf-8"))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6) | HOSTILE,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@FUZZ
@given(
    key=st.sampled_from([*FIXTURE, "extra", ""]),
    value=JSON,
    cut=st.integers(0, 400),
    junk=st.binary(max_size=4),
)
def test_mutated_case_json_through_eval_and_renderers(key: str, value: Any, cut: int, junk: bytes) -> None:
    policy = engine.load(ROOT / "policies" / "ear-742.7")
    data = json.dumps({**FIXTURE, key: value}).encode()
    for candidate in (data, data[:cut] + junk + data[cut:]):
        try:
            case = cases.parse_case(candidate, "fuzz.json")
            decision = policy.evaluate(case, trace=True)
        except CaseError as exc:
            for problem in exc.case_diagnostics:
                assert_printable(f"{problem.field}: {problem.message}")
            continue
        for fmt in ("text", "md", "json"):
            assert_printable(render_decision(decision, fmt, explain=True), markdown=fmt == "md")
        case_file = cases.CaseFile("fuzz", "fuzz.json", case, None)
        report_case = diff_decisions(case_file, decision, decision)
        assert report_case.status == "unchanged"


def test_the_renderers_of_the_diff_on_hostile_cases(tmp_path: Path) -> None:
    """Diff reports as a whole (text and Markdown), from the CLI, on hostile case files."""
    from click.testing import CliRunner

    from engine.cli import main

    folder = tmp_path / "cases"
    folder.mkdir()
    for i, value in enumerate(["\x1b[2J", "</details><script>", "\ud800", "\u202e"]):
        case = {**FIXTURE, "$comment": value, "eccn": FIXTURE["eccn"] + value}
        (folder / f"c{i}.json").write_text(json.dumps(case), "utf-8")
    for fmt in ("text", "md"):
        result = CliRunner().invoke(
            main,
            [
                "diff",
                str(ROOT / "policies/ear-742.7") + "@2020-03-09",
                str(ROOT / "policies/ear-742.7") + "@2020-10-06",
                "--cases",
                str(folder),
                "--format",
                fmt,
            ],
        )
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        assert_printable(result.output, markdown=fmt == "md")
    assert render_text and render_markdown
