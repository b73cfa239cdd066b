"""The one place that knows where the Lark grammar lives, and builds the parser once per process."""

from __future__ import annotations

import re
import threading
from functools import cache
from importlib import resources
from pathlib import Path

from lark import Lark

#: Entry points of the grammar: a whole file, and the pieces error recovery re-parses on their own.
START_SYMBOLS = ["start", "header", "item"]


def grammar_text() -> str:
    """The grammar source: shipped inside the wheel, or read from the source checkout."""
    shipped = resources.files("engine").joinpath("_grammar/policy.lark")
    if shipped.is_file():
        return shipped.read_text(encoding="utf-8")
    checkout = Path(__file__).resolve().parent.parent / "grammar" / "policy.lark"
    return checkout.read_text(encoding="utf-8")


@cache
def keywords() -> frozenset[str]:
    """Every keyword of the language: the lowercase words the grammar quotes (`"rule"`, `"and"`)."""
    return frozenset(re.findall(r'"([a-z]+)"', grammar_text()))


@cache
def item_keywords() -> tuple[str, ...]:
    """The keywords that start a declaration, in the grammar's order of the `item` alternatives.

    Read from the grammar: each alternative of `item` names a rule whose first token is its
    keyword (`rule_decl: "rule" NAME ...`). The parser's error recovery, the highlighter and
    the linter's lexer all use this one list.
    """
    text = grammar_text()
    alternatives = re.search(r"^\??item:(.*?)(?=^\S|\Z)", text, re.M | re.S)
    assert alternatives is not None, "the grammar has no `item` rule"
    names = re.findall(r"[a-z_]+", alternatives.group(1))
    found = []
    for name in names:
        first = re.search(rf'^{name}:\s*"([a-z]+)"', text, re.M)
        assert first is not None, f"`{name}` does not start with a keyword"
        found.append(first.group(1))
    return tuple(found)


_lock = threading.Lock()


@cache
def _build() -> Lark:
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="basic",
        propagate_positions=True,
        maybe_placeholders=False,
        start=START_SYMBOLS,
    )


def parser() -> Lark:
    """The LALR parser, built on first use and shared (Lark parsers are reusable across threads)."""
    with _lock:
        return _build()
