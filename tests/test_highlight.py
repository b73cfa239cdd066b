"""Syntax highlighting stays in step with the language.

The Pygments lexer (engine/highlight.py) and the VS Code TextMate grammar
(editors/vscode/) are written by hand beside the Lark grammar, so these tests tie
them to it: every keyword the grammar knows is highlighted by both, every bundled
policy and documented example lexes without an error token, and the lexer agrees
with Lark's own tokenizer on what is a keyword, a name, a string, a date or a number.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
import tomllib
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from lark import Lark
from lark.exceptions import LarkError
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename  # type: ignore[import-untyped]
from pygments.token import (  # type: ignore[import-untyped]
    Comment,
    Error,
    Keyword,
    Literal,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
)

from engine.highlight import BUILTIN_TYPES, KEYWORDS, PolicyLexer

ROOT = Path(__file__).resolve().parent.parent
GRAMMAR = ROOT / "grammar" / "policy.lark"
VSCODE = ROOT / "editors" / "vscode"
TM_GRAMMAR = VSCODE / "syntaxes" / "policy.tmLanguage.json"
FIXTURES = Path(__file__).resolve().parent / "data" / "highlight"
# Markdown pages whose ```policy blocks are examples of the language.
DOC_PAGES = ("docs/language.md", "docs/highlighting.md")
# Folders whose .policy/.vocab files are shipped policy source.
SOURCE_DIRS = ("policies", "benchmarks")
# TextMate scopes that count as keyword highlighting.
TM_KEYWORD_SCOPES = ("keyword.", "storage.", "constant.language.")


def grammar_keywords() -> set[str]:
    """The quoted lowercase words of the Lark grammar: the language's keywords."""
    text = "\n".join(line.split("//", 1)[0] for line in GRAMMAR.read_text().splitlines())
    return set(re.findall(r'"([a-z]+)"', text))


def policy_blocks(page: Path) -> Iterator[tuple[str, str]]:
    """The ```policy code blocks of a Markdown page, with an id naming where each is."""
    text = page.read_text()
    for match in re.finditer(r"^```policy[ \t]*\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        line = text.count("\n", 0, match.start()) + 1
        yield f"{page.relative_to(ROOT)}:{line}", match.group(1)


def policy_sources() -> list[Any]:
    """Every bundled policy source, doc example and lexer fixture, as pytest params."""
    params = []
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".policy", ".vocab") and path.is_file():
                params.append(pytest.param(path.read_text(), id=str(path.relative_to(ROOT))))
    for path in sorted(FIXTURES.glob("*")):
        params.append(pytest.param(path.read_text(), id=str(path.relative_to(ROOT))))
    for page in DOC_PAGES:
        if (ROOT / page).exists():
            params.extend(pytest.param(code, id=where) for where, code in policy_blocks(ROOT / page))
    return params


def significant(source: str) -> list[tuple[Any, str]]:
    """The lexer's tokens without whitespace, each string literal's plain parts merged for comparison."""
    tokens: list[tuple[Any, str]] = []
    for token, value in PolicyLexer().get_tokens(source):
        if tokens and token is String.Double and tokens[-1][0] is String.Double:
            tokens[-1] = (token, tokens[-1][1] + value)
        else:
            tokens.append((token, value))
    return [(token, value) for token, value in tokens if token not in Whitespace and value.strip()]


# ---------------------------------------------------------------------------
# Pygments lexer


@pytest.mark.parametrize("source", policy_sources())
def test_sources_lex_without_error_tokens(source: str) -> None:
    """A bundled policy or documented example that shows an error token would be shown broken."""
    errors = [
        (index, value)
        for index, token, value in PolicyLexer().get_tokens_unprocessed(source)
        if token in Error
    ]
    assert errors == [], f"error tokens at offsets {errors}"


def test_sources_were_found() -> None:
    """The fixtures and the language reference's examples, at least, are lexed."""
    ids = [param.id for param in policy_sources()]
    assert any(i.startswith("tests/data/highlight/") for i in ids)
    assert any(i.startswith("docs/language.md:") for i in ids)


@functools.cache
def lark_lexer() -> Lark:
    """Lark's basic lexer for the grammar file, the reference for what each token is."""
    try:
        return Lark(GRAMMAR.read_text(), parser="lalr", lexer="basic")
    except LarkError as error:  # pragma: no cover - only if the grammar needs its contextual lexer
        pytest.skip(f"grammar/policy.lark cannot be lexed without its parser: {error}")


LARK_TO_PYGMENTS = {"NAME": Name, "STRING": String, "DATE": Literal.Date, "NUMBER": Number}


@pytest.mark.parametrize("source", policy_sources())
def test_lexer_agrees_with_lark_tokens(source: str) -> None:
    """Keyword, name, string, date and number tokens start where Lark's do and are of the same kind."""
    ours = {index: token for index, token, _ in PolicyLexer().get_tokens_unprocessed(source)}
    keyword_types = (Keyword, Operator.Word)
    for tok in lark_lexer().lex(source):
        assert tok.start_pos in ours, f"Lark token {tok!r} at {tok.start_pos} starts inside one of ours"
        token = ours[tok.start_pos]
        if tok.type in LARK_TO_PYGMENTS:
            assert token in LARK_TO_PYGMENTS[tok.type], f"{tok!r} at {tok.start_pos} lexed as {token}"
        elif str(tok) in KEYWORDS:
            assert any(token in kind for kind in keyword_types), f"keyword {tok!r} lexed as {token}"
    lark_keywords = {tok.start_pos for tok in lark_lexer().lex(source) if tok.type not in LARK_TO_PYGMENTS}
    for index, token in ours.items():
        if token in Keyword or token in Operator.Word:
            assert index in lark_keywords, f"{token} at {index} is a name or literal for Lark"


def test_sample_token_types() -> None:
    """Each kind of construct gets the token type docs/highlighting.md promises."""
    source = (
        "# note\n"
        'policy "demo"\n'
        "  effective 2020-10-06\n"
        "  status in-force\n"
        'enum Reason "reasons" = <CC, NS>\n'
        'fact end_user.name: optional string "name"\n'
        'table groups: Country -> set of Group "g" from "g.json"\n'
        'rule hr-risk "say \\"why\\""\n'
        "  overrides cc-favorable\n"
        "  if reason in <CC> and not q < -2.5 and groups[c] includes any x and flag = true\n"
        "  then decide review = denied and require human-rights review\n"
    )
    assert significant(source) == [
        (Comment.Single, "# note"),
        (Keyword.Declaration, "policy"),
        (String.Double, '"demo"'),
        (Keyword.Reserved, "effective"),
        (Literal.Date, "2020-10-06"),
        (Keyword.Reserved, "status"),
        (Name.Constant, "in-force"),
        (Keyword.Declaration, "enum"),
        (Name.Class, "Reason"),
        (String.Double, '"reasons"'),
        (Operator, "="),
        (Punctuation, "<"),
        (Name.Constant, "CC"),
        (Punctuation, ","),
        (Name.Constant, "NS"),
        (Punctuation, ">"),
        (Keyword.Declaration, "fact"),
        (Name.Variable, "end_user"),
        (Punctuation, "."),
        (Name.Variable, "name"),
        (Punctuation, ":"),
        (Keyword.Type, "optional"),
        (Name.Builtin, "string"),
        (String.Double, '"name"'),
        (Keyword.Declaration, "table"),
        (Name.Namespace, "groups"),
        (Punctuation, ":"),
        (Name.Class, "Country"),
        (Punctuation, "->"),
        (Keyword.Type, "set"),
        (Keyword.Type, "of"),
        (Name.Class, "Group"),
        (String.Double, '"g"'),
        (Keyword.Reserved, "from"),
        (String.Double, '"g.json"'),
        (Keyword.Declaration, "rule"),
        (Name.Function, "hr-risk"),
        (String.Double, '"say '),
        (String.Escape, '\\"'),
        (String.Double, "why"),
        (String.Escape, '\\"'),
        (String.Double, '"'),
        (Keyword.Reserved, "overrides"),
        (Name.Function, "cc-favorable"),
        (Keyword.Reserved, "if"),
        (Name, "reason"),
        (Operator.Word, "in"),
        (Punctuation, "<"),
        (Name.Constant, "CC"),
        (Punctuation, ">"),
        (Operator.Word, "and"),
        (Operator.Word, "not"),
        (Name, "q"),
        (Operator, "<"),
        (Number.Float, "-2.5"),
        (Operator.Word, "and"),
        (Name.Namespace, "groups"),
        (Punctuation, "["),
        (Name, "c"),
        (Punctuation, "]"),
        (Operator.Word, "includes"),
        (Operator.Word, "any"),
        (Name, "x"),
        (Operator.Word, "and"),
        (Name, "flag"),
        (Operator, "="),
        (Keyword.Constant, "true"),
        (Keyword.Reserved, "then"),
        (Keyword.Reserved, "decide"),
        (Name.Label, "review"),
        (Operator, "="),
        (Name.Constant, "denied"),
        (Operator.Word, "and"),
        (Keyword.Reserved, "require"),
        (Name.Label, "human-rights"),
        (Name.Label, "review"),
    ]


@pytest.mark.parametrize(
    "name", ["in-force", "ifx", "order", "IN", "information", "is_done", "not-favorable"]
)
def test_names_that_start_with_a_keyword_are_names(name: str) -> None:
    """Lark reads the longest NAME first, so a keyword inside a name does not split it."""
    assert significant(f"if {name} then") == [
        (Keyword.Reserved, "if"),
        (Name, name),
        (Keyword.Reserved, "then"),
    ]


def test_comparator_and_set_literal_angle_brackets_differ() -> None:
    """`<` opens a set literal only when a well-formed element list and `>` follow."""
    assert significant("a < 5 and b > 3")[1] == (Operator, "<")
    assert significant("a < b and c > d")[1] == (Operator, "<")
    tokens = significant("a in <\n  x,  # why\n  y\n>")
    assert tokens[2] == (Punctuation, "<")
    assert (Comment.Single, "# why") in tokens
    assert tokens[-1] == (Punctuation, ">")
    assert significant("a in <>")[2:] == [(Punctuation, "<"), (Punctuation, ">")]


@pytest.mark.parametrize("source", ['title "no end\nrule x', "a @ b", "a ! b"])
def test_malformed_input_shows_error_tokens(source: str) -> None:
    """The error-free test above means something: bad input does produce Error tokens."""
    assert any(token in Error for token, _ in PolicyLexer().get_tokens(source))


@pytest.mark.parametrize("keyword", sorted(grammar_keywords()))
def test_every_grammar_keyword_is_a_lexer_keyword(keyword: str) -> None:
    """Adding a keyword to grammar/policy.lark without highlighting it fails here."""
    assert keyword in KEYWORDS, f"add {keyword!r} to a keyword class in engine/highlight.py"
    [(token, value)] = significant(keyword)
    assert value == keyword
    assert token in Keyword or token in Operator.Word


def test_lexer_has_no_keyword_the_grammar_lacks() -> None:
    """A keyword dropped from the grammar is a name again, and must be highlighted as one."""
    assert grammar_keywords(), "no keywords extracted from grammar/policy.lark"
    assert KEYWORDS - grammar_keywords() == set()


def test_builtin_types_are_builtins_only_where_a_type_is_expected() -> None:
    """`date` is a type after `:` but may be an ordinary name in a condition."""
    for builtin in BUILTIN_TYPES:
        assert (Name.Builtin, builtin) in significant(f'fact x: {builtin} "d"')
    assert significant("if date = 1 then")[1] == (Name, "date")


def test_analyse_text_recognises_a_header() -> None:
    """`pygmentize -g` can pick the lexer from a file's header."""
    assert PolicyLexer.analyse_text('# comment\n\npolicy "x"\n') > 0.5
    assert PolicyLexer.analyse_text('vocabulary "x"\n') > 0.5
    assert PolicyLexer.analyse_text("def f():\n    pass\n") == 0.0


def declared_entry_point() -> str:
    """The `pygments.lexers` entry point pyproject.toml declares (what a fresh install registers)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return str(project["entry-points"]["pygments.lexers"]["policy"])


def test_the_declared_entry_point_names_the_lexer() -> None:
    module, _, attribute = declared_entry_point().partition(":")
    assert getattr(importlib.import_module(module), attribute) is PolicyLexer


def test_entry_point_resolves() -> None:
    """Pygments (and so pygmentize and Markdown renderers) finds the lexer by name and file name."""
    installed = [ep for ep in entry_points(group="pygments.lexers") if ep.name == "policy"]
    if not installed:
        pytest.skip("package metadata not installed: run `.venv/bin/pip install -e .` to register the lexer")
    if installed[0].value != declared_entry_point():
        pytest.skip(f"installed metadata is older than pyproject.toml ({installed[0].value}): reinstall")
    assert isinstance(get_lexer_by_name("policy"), PolicyLexer)
    assert isinstance(get_lexer_for_filename("demo/2020-10-06.policy"), PolicyLexer)
    assert isinstance(get_lexer_for_filename("vocab/trade.vocab"), PolicyLexer)


# ---------------------------------------------------------------------------
# VS Code extension


def tm_grammar() -> dict[str, Any]:
    """The TextMate grammar, parsed (a syntax error in it fails every test that reads it)."""
    data: dict[str, Any] = json.loads(TM_GRAMMAR.read_text())
    return data


def tm_rules(node: Any) -> Iterator[dict[str, Any]]:
    """Every rule object of the grammar, however deeply nested in patterns or captures."""
    if isinstance(node, dict):
        if "match" in node or "begin" in node or "include" in node:
            yield node
        for value in node.values():
            yield from tm_rules(value)
    elif isinstance(node, list):
        for value in node:
            yield from tm_rules(value)


def test_tm_grammar_is_valid_and_named() -> None:
    """VS Code loads the grammar by its scope name, so it must be the one package.json declares."""
    grammar = tm_grammar()
    assert grammar["scopeName"] == "source.policy"
    package = json.loads((VSCODE / "package.json").read_text())
    [contributed] = package["contributes"]["grammars"]
    assert contributed["scopeName"] == "source.policy"
    assert (VSCODE / contributed["path"]).resolve() == TM_GRAMMAR
    [language] = package["contributes"]["languages"]
    assert language["id"] == contributed["language"] == "policy"
    assert set(language["extensions"]) == {".policy", ".vocab"}
    config = json.loads((VSCODE / language["configuration"]).read_text())
    assert config["comments"]["lineComment"] == "#"


def test_tm_includes_resolve_and_patterns_compile() -> None:
    """A dangling `#include` or a broken regex silently disables highlighting in VS Code."""
    grammar = tm_grammar()
    for rule in tm_rules(grammar):
        include = rule.get("include")
        if include and include.startswith("#"):
            assert include[1:] in grammar["repository"], f"unknown include {include}"
        for key in ("match", "begin", "end"):
            if key in rule:
                re.compile(rule[key])  # the grammar keeps to regex syntax Python and Oniguruma share


def tm_keyword_patterns() -> list[re.Pattern[str]]:
    """The grammar's patterns that give keyword-like scopes to the whole match."""
    return [
        re.compile(rule["match"])
        for rule in tm_rules(tm_grammar())
        if "match" in rule and rule.get("name", "").startswith(TM_KEYWORD_SCOPES)
    ]


@pytest.mark.parametrize("keyword", sorted(grammar_keywords()))
def test_every_grammar_keyword_is_a_tm_keyword(keyword: str) -> None:
    """Adding a keyword to grammar/policy.lark without adding it to the TextMate grammar fails here."""
    patterns = tm_keyword_patterns()
    assert any(pattern.fullmatch(keyword) for pattern in patterns), (
        f"{keyword!r} missing in {TM_GRAMMAR.name}"
    )
    # ...and only as a whole word: the keyword inside a longer name is not highlighted.
    assert not any(pattern.search(f"x-{keyword}") or pattern.search(f"{keyword}-x") for pattern in patterns)
