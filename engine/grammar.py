"""The one place that knows where the Lark grammar lives, and builds the parser once per process."""

from __future__ import annotations

import os
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


def cache_file() -> str | bool:
    """Where the built parser tables are kept between processes, or False for no cache.

    Building the LALR tables is the largest part of a cold `load` (about a third of a
    `policy eval`), and they depend only on the grammar, the options and the Lark version
    (Lark keys the file by their hash and rebuilds on any mismatch). The cache is a pickle,
    so it lives only in a folder of this user's that nobody else can write
    (`$XDG_CACHE_HOME/policy-engine`, else `~/.cache/policy-engine`, mode 0700), never in
    the shared temporary folder; `POLICY_ENGINE_NO_CACHE=1` turns it off.
    """
    if os.environ.get("POLICY_ENGINE_NO_CACHE"):
        return False
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        folder = base / "policy-engine"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.stat()
    except (OSError, RuntimeError):  # no home, read-only file system: build every time
        return False
    if hasattr(os, "getuid") and (info.st_uid != os.getuid() or info.st_mode & 0o022):
        return False  # someone else's folder, or writable by others: never unpickle from it
    return str(folder / "grammar.lark-cache")


@cache
def _build() -> Lark:
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="basic",
        propagate_positions=True,
        maybe_placeholders=False,
        start=START_SYMBOLS,
        cache=cache_file(),
    )


def parser() -> Lark:
    """The LALR parser, built on first use and shared (Lark parsers are reusable across threads)."""
    with _lock:
        return _build()
