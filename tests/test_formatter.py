"""`policy fmt`: golden layouts, idempotence, safety (same tree or refuse), bundled policies stay formatted.

Golden pairs live in fixtures/format: `x.policy` is the input, `x.policy.formatted` the
expected output. To accept a deliberate layout change, rewrite the `.formatted` files with
`policy fmt --diff` as the guide, never by pasting whatever the formatter printed.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import formatter
from engine.api import policy_files
from engine.cli import main
from engine.grammar import parser as lark_parser
from engine.parser import parse

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = sorted(p for p in (ROOT / "fixtures" / "format").iterdir() if p.suffix in (".policy", ".vocab"))
BUNDLED = policy_files([ROOT / "policies"])


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("source", GOLDEN, ids=_id)
def test_golden_layout(source: Path) -> None:
    expected = Path(f"{source}.formatted").read_text(encoding="utf-8")
    assert formatter.format_text(source.read_text(encoding="utf-8"), str(source)) == expected


@pytest.mark.parametrize("source", GOLDEN, ids=_id)
def test_golden_output_is_a_fixed_point(source: Path) -> None:
    expected = Path(f"{source}.formatted").read_text(encoding="utf-8")
    assert formatter.format_text(expected, str(source)) == expected


@pytest.mark.parametrize("source", GOLDEN, ids=_id)
def test_golden_output_parses_to_the_same_tree(source: Path) -> None:
    before = parse(source.read_text(encoding="utf-8"), str(source)).tree
    after = parse(Path(f"{source}.formatted").read_text(encoding="utf-8"), str(source)).tree
    assert before is not None and after is not None
    assert after.items == before.items
    assert [c.text for c in after.comments] == [c.text.rstrip() for c in before.comments]


@pytest.mark.parametrize("source", BUNDLED, ids=_id)
def test_bundled_policies_are_formatted(source: Path) -> None:
    text = source.read_text(encoding="utf-8")
    assert formatter.format_text(text, str(source)) == text, f"run `policy fmt {_id(source)}`"


def test_every_comment_survives_in_order() -> None:
    source = ROOT / "fixtures" / "format" / "comments.policy"
    text = source.read_text(encoding="utf-8")
    out = formatter.format_text(text, "comments.policy")
    comments = [line.split("#", 1)[1] for line in text.splitlines() if "#" in line]
    assert [line.split("#", 1)[1].rstrip() for line in out.splitlines() if "#" in line] == [
        c.rstrip() for c in comments
    ]


def test_trailing_whitespace_in_comments_is_dropped() -> None:
    text = 'vocabulary "v"   \n\n# note   \nfact a: boolean "a"  # why   \n'
    assert formatter.format_text(text) == 'vocabulary "v"\n\n# note\nfact a: boolean "a"  # why\n'


def test_syntax_errors_are_reported_not_formatted() -> None:
    with pytest.raises(formatter.FormatError) as info:
        formatter.format_text('policy "x"\n  title "t"\n\nrule r if then decide d = x\n', "bad.policy")
    assert info.value.diagnostics[0].code == "syntax"
    assert info.value.diagnostics[0].line == 4


def test_a_result_that_changes_the_tree_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    text = 'vocabulary "v"\n\nfact a: boolean "a"\nfact b: boolean "b"\n'
    monkeypatch.setattr(formatter._Printer, "file", lambda self: 'vocabulary "v"\n\nfact a: boolean "a"\n')
    with pytest.raises(formatter.UnsafeFormat) as info:
        formatter.format_text(text, "v.vocab")
    assert info.value.diagnostic.code == "format-unsafe"
    assert "number of declarations" in info.value.diagnostic.message


def test_a_result_that_moves_a_comment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    text = 'vocabulary "v"\n\n# one\nfact a: boolean "a"\n# two\nfact b: boolean "b"\n'
    swapped = 'vocabulary "v"\n\n# two\nfact a: boolean "a"\n# one\nfact b: boolean "b"\n'
    monkeypatch.setattr(formatter._Printer, "file", lambda self: swapped)
    with pytest.raises(formatter.UnsafeFormat, match="comment 1 would move"):
        formatter.format_text(text, "v.vocab")


# ---------------------------------------------------------------------------
# Layout does not depend on how the author spaced things


def _relayout(text: str, seed: int) -> str:
    """The same tokens with random spaces and line breaks between them (comment-free sources)."""
    rng = random.Random(seed)
    out: list[str] = []
    for token in lark_parser().lex(text):
        gap = rng.choice([" ", "  ", "\n", "\n    ", " \n\t"])
        out.append(str(token) + gap)
    return "".join(out)


def _without_comments(text: str) -> str:
    tree = parse(text).tree
    assert tree is not None
    rows = {c.span.line: c.span.col for c in tree.comments}
    lines = [line[: rows[n] - 1] if n in rows else line for n, line in enumerate(text.splitlines(), 1)]
    return "\n".join(lines) + "\n"


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), index=st.integers(0, len(BUNDLED) - 1))
def test_layout_is_independent_of_spacing(seed: int, index: int) -> None:
    """Reflowed sources format to the same lines (blank lines aside: one-line runs may regroup)."""
    source = _without_comments(BUNDLED[index].read_text(encoding="utf-8"))
    canonical = formatter.format_text(source)
    reflowed = formatter.format_text(_relayout(source, seed))
    assert [line for line in reflowed.splitlines() if line] == [
        line for line in canonical.splitlines() if line
    ]
    assert formatter.format_text(reflowed) == reflowed


# ---------------------------------------------------------------------------
# The command


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    path = tmp_path / "messy.policy"
    path.write_text((ROOT / "fixtures" / "format" / "layout.policy").read_text(encoding="utf-8"))
    return path


def test_fmt_check_reports_and_exits_1_without_writing(messy: Path) -> None:
    before = messy.read_text()
    result = CliRunner().invoke(main, ["fmt", "--check", str(messy)])
    assert result.exit_code == 1
    assert f"would reformat {messy}" in result.output
    assert messy.read_text() == before


def test_fmt_writes_then_check_passes(messy: Path) -> None:
    result = CliRunner().invoke(main, ["fmt", str(messy)])
    assert result.exit_code == 0, result.output
    assert messy.read_text() == (ROOT / "fixtures" / "format" / "layout.policy.formatted").read_text()
    assert not list(messy.parent.glob(".*.tmp")), "the temporary file is renamed, not left behind"
    again = CliRunner().invoke(main, ["fmt", "--check", str(messy)])
    assert again.exit_code == 0
    assert "0 file(s) would be reformatted, 1 file(s) left unchanged" in again.output


def test_fmt_keeps_file_permissions(messy: Path) -> None:
    messy.chmod(0o640)
    CliRunner().invoke(main, ["fmt", str(messy)])
    assert messy.stat().st_mode & 0o777 == 0o640


def test_fmt_diff_prints_a_unified_diff(tmp_path: Path, snapshot: object) -> None:
    path = tmp_path / "small.policy"
    path.write_text('vocabulary "v" title "t"\nfact a : boolean "a" fact b: optional  date "b"\n')
    result = CliRunner().invoke(main, ["fmt", "--diff", str(path)])
    assert result.exit_code == 0
    assert result.stdout.replace(str(tmp_path), "TMP") == snapshot


def test_fmt_refuses_a_file_with_syntax_errors_with_exit_123(tmp_path: Path, snapshot: object) -> None:
    path = tmp_path / "broken.policy"
    text = 'policy "x"\n  title "t"\n\nrule r "d"\n  if a and\n  then decide d = x\n'
    path.write_text(text)
    result = CliRunner().invoke(main, ["fmt", str(path)])
    assert result.exit_code == 123
    assert path.read_text() == text
    assert result.output.replace(str(tmp_path), "TMP") == snapshot


def test_fmt_reads_stdin_and_writes_stdout() -> None:
    result = CliRunner().invoke(main, ["fmt", "-"], input='vocabulary "v"\nfact a: boolean "a"')
    assert result.exit_code == 0
    assert result.stdout == 'vocabulary "v"\n\nfact a: boolean "a"\n'


def test_fmt_searches_folders_for_policy_and_vocabulary_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.policy").write_text('vocabulary "v"\nfact a: boolean "a"\n')
    (tmp_path / "two.vocab").write_text('vocabulary "w"\n\nfact b: boolean "b"\n')
    (tmp_path / "notes.txt").write_text("not a policy")
    result = CliRunner().invoke(main, ["fmt", "--check", str(tmp_path)])
    assert result.exit_code == 1
    assert "1 file(s) would be reformatted, 1 file(s) left unchanged" in result.output


# ---------------------------------------------------------------------------
# Documentation examples


def _policy_blocks(page: str) -> list[str]:
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    return [block.split("```", 1)[0] for block in text.split("```policy\n")[1:]]


@pytest.mark.parametrize("block", _policy_blocks("formatting.md"))
def test_formatting_guide_examples_are_in_the_layout(block: str) -> None:
    assert formatter.format_text(block) == block


@pytest.mark.parametrize("page", ["authoring.md", "linting.md", "formatting.md"])
def test_documented_policy_snippets_parse(page: str) -> None:
    for block in _policy_blocks(page):
        if block.lstrip().startswith(("policy", "vocabulary", "# Facts")):
            assert parse(block).diagnostics == [], block


# ---------------------------------------------------------------------------
# Comments anywhere: the result is always safe and a fixed point

SOURCES = [*BUNDLED, *GOLDEN]


def _with_comments(text: str, rng: random.Random) -> str:
    """Comments dropped at random: at line ends, on lines of their own, splitting a line in two."""
    lines = text.splitlines()
    for k in range(rng.randint(1, 10)):
        i = rng.randrange(len(lines))
        line, roll = lines[i], rng.random()
        if roll < 0.5 and "#" not in line:
            lines[i] = f"{line}  # t{k}"
        elif roll < 0.8:
            lines.insert(i, " " * rng.randint(0, 6) + f"# o{k}")
        elif "#" not in line and '"' not in line:
            spaces = [j for j, c in enumerate(line) if c == " " and j > 0]
            if spaces:
                j = rng.choice(spaces)
                lines[i : i + 1] = [f"{line[:j]} # s{k}", "   " + line[j:]]
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 1_000_000), index=st.integers(0, len(SOURCES) - 1))
def test_comments_anywhere_are_kept_and_formatting_is_idempotent(seed: int, index: int) -> None:
    source = _with_comments(SOURCES[index].read_text(encoding="utf-8"), random.Random(seed))
    try:
        once = formatter.format_text(source)
    except formatter.FormatError:
        return  # a comment that split a string or a keyword: not a valid file
    assert formatter.format_text(once) == once
