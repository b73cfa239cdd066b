"""The one strict JSON reader for everything the engine reads as JSON: cases and table files.

`json.loads` accepts more than the documented input and fails in ways a user cannot act on:
a repeated key silently keeps the last value (`"hr_abuse_risk": true, "hr_abuse_risk": false`
decided favourably), `NaN` and `Infinity` are accepted, an integer of 5,000 digits raises
Python's own conversion-limit error, 10,000 nested brackets raise `RecursionError`, and bytes
that are not UTF-8 were handled differently on each path. Here every input is checked the
same way and every problem is a `JsonError` located at `file:line:col`:

* bytes must be UTF-8 (CESU-8 and encoded surrogates are not UTF-8); one leading BOM is
  skipped (RFC 8259 allows a reader to ignore it), a BOM anywhere else is an error;
* no object may repeat a key;
* nesting at most `Limits.max_depth` deep, integers of at most `Limits.max_digits` digits,
  numbers finite (`NaN`, `Infinity` are not JSON), text at most `Limits.max_bytes` long;
* strings hold Unicode characters only: an escaped lone surrogate (`"\\udc80"`) is rejected.

API: `parse(data, source)` for text or bytes, `read(path)` for a file; both return plain
Python values (dict, list, str, int, float, bool, None). `locate(text, path)` gives the
line and column of a value inside a document by its JSON path, so a checker can point at
`data/table.json:12:14` rather than at the declaration that named the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT", "TABLES", "JsonError", "Limits", "locate", "locate_range", "parse", "position", "read"]


@dataclass(frozen=True)
class Limits:
    """What a JSON document may hold (see docs/security.md for why each figure)."""

    max_bytes: int = 16 * 1024 * 1024
    max_depth: int = 64
    max_digits: int = 100


DEFAULT = Limits()
"""Cases: 16 MiB, 64 levels, 100-digit numbers."""

TABLES = Limits(max_bytes=64 * 1024 * 1024)
"""Reference table files may be larger than a case."""

BOM = "\ufeff"


class JsonError(ValueError):
    """A JSON document that the engine does not accept, with where and how to fix it.

    `code` is one of `invalid-json`, `invalid-utf8`, `duplicate-key`, `too-deep`, `too-large`,
    `number-too-long`, `not-a-number`, `lone-surrogate`, `cannot-read`.
    """

    def __init__(
        self, code: str, message: str, source: str, line: int = 0, column: int = 0, help: str | None = None
    ) -> None:
        self.code = code
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        self.help = help
        where = f"{source}:{line}:{column}" if line else source
        super().__init__(f"{where}: {message}")

    @property
    def location(self) -> str:
        return f"{self.source}:{self.line}:{self.column}" if self.line else self.source


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        good = data[: exc.start].decode("utf-8")
        line, column = position(good, len(good))
        raise JsonError(
            "invalid-utf8",
            f"not UTF-8 text: byte {exc.start + 1} (0x{data[exc.start]:02x}) cannot start or continue a character ({exc.reason})",
            source,
            line,
            column,
            "save the file as UTF-8; JSON text is always UTF-8",
        ) from None


_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _check_depth(text: str, source: str, limit: int) -> None:
    """Nesting deeper than `limit`: found by scanning brackets outside strings (only when there
    are enough brackets for it to be possible, so ordinary documents pay one `count`)."""
    if text.count("[") + text.count("{") <= limit:
        return
    depth = 0
    for match in _BRACKETS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                line, column = position(text, match.start())
                raise JsonError(
                    "too-deep",
                    f"nested more than {limit} levels deep",
                    source,
                    line,
                    column,
                    "a case is a flat object of facts with records a few levels deep",
                )
        elif token in "]}":
            depth -= 1


class _Hooks:
    """json.loads callbacks that enforce the rules a callback can see, recording the first breach."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.problem: tuple[str, str, str] | None = None  # (code, message, text to find)

    def pairs(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs) and self.problem is None:
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    self.problem = (
                        "duplicate-key",
                        f"the key {json.dumps(key)} appears twice in one object",
                        key,
                    )
                    break
                seen.add(key)
        return result

    def integer(self, text: str) -> int:
        digits = len(text.lstrip("-"))
        if digits > self.limits.max_digits:
            self.problem = self.problem or (
                "number-too-long",
                f"a number of {digits} digits (at most {self.limits.max_digits})",
                text[:20],
            )
            return 0
        return int(text)

    def real(self, text: str) -> float:
        if len(text) > self.limits.max_digits:
            self.problem = self.problem or (
                "number-too-long",
                f"a number written with {len(text)} characters (at most {self.limits.max_digits})",
                text[:20],
            )
            return 0.0
        value = float(text)
        if value in (float("inf"), float("-inf")):
            self.problem = self.problem or (
                "not-a-number",
                f"`{text[:20]}` is too large to be a number",
                text[:20],
            )
        return value

    def constant(self, text: str) -> Any:
        self.problem = self.problem or ("not-a-number", f"`{text}` is not JSON", text)
        return None


_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def _lone_surrogate(value: Any) -> str | None:
    """The first string (key or value) holding a lone surrogate, if any."""
    if isinstance(value, str):
        return value if _SURROGATE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _lone_surrogate(key) or _lone_surrogate(item)
            if found:
                return found
    if isinstance(value, list):
        for item in value:
            found = _lone_surrogate(item)
            if found:
                return found
    return None


def _find(text: str, needle: str, code: str) -> tuple[int, int]:
    """Where the offending text first appears (a duplicate key: its second occurrence)."""
    if code == "duplicate-key":
        pattern = re.compile(re.escape(json.dumps(needle, ensure_ascii=False)) + r"\s*:")
        hits = [m.start() for m in pattern.finditer(text)]
        if len(hits) >= 2:
            return position(text, hits[1])
    elif needle:
        at = text.find(needle)
        if at >= 0:
            return position(text, at)
    return 0, 0


def parse(data: str | bytes, source: str = "<input>", limits: Limits = DEFAULT) -> Any:
    """Parse one JSON document by the rules above; raise `JsonError` naming where it fails."""
    if len(data) > limits.max_bytes:
        raise JsonError(
            "too-large",
            f"{len(data):,} bytes is more than the {limits.max_bytes:,} a document may have",
            source,
            help="split the input; a case or a table this large is not something a person wrote",
        )
    text = _decode(data, source) if isinstance(data, bytes) else data
    if text.startswith(BOM):
        text = " " + text[1:]  # skipped, keeping columns as an editor counts them
    _check_depth(text, source, limits.max_depth)
    hooks = _Hooks(limits)
    try:
        value = json.loads(
            text,
            object_pairs_hook=hooks.pairs,
            parse_int=hooks.integer,
            parse_float=hooks.real,
            parse_constant=hooks.constant,
        )
    except json.JSONDecodeError as exc:
        hint = "JSON strings use double quotes; no trailing commas; no comments"
        if text[exc.pos : exc.pos + 1] == BOM:
            hint = "a byte order mark (BOM) may only start a file"
        raise JsonError("invalid-json", exc.msg, source, exc.lineno, exc.colno, hint) from None
    except RecursionError:  # deeper than the interpreter allows, despite the scan: still located
        raise JsonError("too-deep", "nested too deeply", source, 1, 1) from None
    if hooks.problem is not None:
        code, message, needle = hooks.problem
        line, column = _find(text, needle, code)
        help = {
            "duplicate-key": "each key may appear once in an object; remove the repeat (JSON readers differ on which one wins)",
            "number-too-long": f"numbers have at most {limits.max_digits} digits",
            "not-a-number": "write a finite number, such as 12 or 12.5",
        }.get(code)
        raise JsonError(code, message, source, line, column, help)
    if _ESCAPED_SURROGATE.search(text) or _SURROGATE.search(text):
        found = _lone_surrogate(value)
        if found is not None:
            line, column = _find(text, "\\u", "lone-surrogate")
            raise JsonError(
                "lone-surrogate",
                "a string holds half of a surrogate pair (`\\udXXX` without its other half), which is not a character",
                source,
                line,
                column,
                "write the character itself, or both halves of its pair",
            )
    return value


def read(path: str | Path, limits: Limits = DEFAULT, source: str | None = None) -> Any:
    """Read and parse a JSON file (see `parse`); an unreadable file is a `JsonError` too."""
    name = source or str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(limits.max_bytes + 1)
    except OSError as exc:
        raise JsonError("cannot-read", f"cannot read the file: {exc.strerror or exc}", name) from None
    return parse(data, name, limits)


# ---------------------------------------------------------------------------
# Locating a value by its path

_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")


def locate(text: str, path: tuple[str | int, ...]) -> tuple[int, int]:
    """Line and column of the value at `path` (keys and indexes) in a valid JSON text.

    Walks the text with the standard decoder skipping whole values, so it costs one pass at
    C speed; returns the deepest position it could reach (the document start at worst).
    """
    offset = _SPACE.match(text, 1 if text.startswith(BOM) else 0).end()  # type: ignore[union-attr]
    try:
        for step in path:
            offset = _step(text, offset, step)
    except (ValueError, IndexError, _NotFound):
        pass
    return position(text, offset)


def locate_range(text: str, path: tuple[str | int, ...]) -> tuple[int, int, int, int]:
    """(line, column, end line, end column) of the value at `path`: the whole value, for an underline."""
    offset = _SPACE.match(text, 1 if text.startswith(BOM) else 0).end()  # type: ignore[union-attr]
    try:
        for step in path:
            offset = _step(text, offset, step)
        _, end = _DECODER.raw_decode(text, offset)
    except (ValueError, IndexError, _NotFound):
        end = offset + 1
    line, column = position(text, offset)
    end_line, end_column = position(text, end)
    return line, column, end_line, end_column


class _NotFound(Exception):
    pass


def _skip(text: str, offset: int) -> int:
    return _SPACE.match(text, offset).end()  # type: ignore[union-attr]


def _step(text: str, offset: int, step: str | int) -> int:
    """The offset of member `step` of the object or array starting at `offset`."""
    opener = text[offset]
    if opener == "{" and isinstance(step, str):
        at = _skip(text, offset + 1)
        while text[at] != "}":
            key, at = _DECODER.raw_decode(text, at)
            at = _skip(text, _skip(text, at) + 1)  # past the colon
            if key == step:
                return at
            _, at = _DECODER.raw_decode(text, at)
            at = _skip(text, at)
            if text[at] == ",":
                at = _skip(text, at + 1)
        raise _NotFound
    if opener == "[" and isinstance(step, int):
        at = _skip(text, offset + 1)
        index = 0
        while text[at] != "]":
            if index == step:
                return at
            _, at = _DECODER.raw_decode(text, at)
            at = _skip(text, at)
            if text[at] == ",":
                at = _skip(text, at + 1)
            index += 1
    raise _NotFound
