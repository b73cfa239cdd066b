"""The one place that knows where the Lark grammar lives, and builds the parser once per process."""

from __future__ import annotations

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
