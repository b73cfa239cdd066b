"""Why a case value was rejected, in the engine's words (never pydantic's).

The case model is built with pydantic, whose messages speak of Python ("Input should be a
valid dictionary or instance of Case_end_user"). Each rejection is reworded here from the
fact's declared type, so every reason reads the same whichever validator found it:
"must be true or false", "must be a list of Reason values", and for a value outside an
enumeration the nearest few values, the count and how to list them all (an enumeration of
~200 country codes is not a message).
"""

from __future__ import annotations

import difflib
from typing import Any

from engine import program as p

__all__ = ["ENUM_LISTED_IN_FULL", "enum_reason", "reason"]

#: Enumerations up to this size are listed whole in a message; larger ones by nearest values.
ENUM_LISTED_IN_FULL = 8


def _shown(value: Any) -> str:
    """A user's value in a message: repr (so control characters arrive escaped), and short."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _or_list(values: list[str]) -> str:
    quoted = [repr(v) for v in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def enum_reason(value: Any, enum: str, values: tuple[str, ...]) -> str:
    """`'XX' is not one of the allowed values ...`: all of them when few, else the nearest and the count."""
    if len(values) <= ENUM_LISTED_IN_FULL:
        return f"{_shown(value)} is not one of the allowed values ({_or_list(list(values))})"
    nearest = _nearest(value, values)
    hint = f"nearest: {', '.join(repr(v) for v in nearest)}; " if nearest else ""
    return (
        f"{_shown(value)} is not one of the allowed values of {enum} "
        f"({len(values)} values; {hint}`policy schema POLICY` lists them all)"
    )


def _nearest(value: Any, values: tuple[str, ...]) -> list[str]:
    """Up to three values the user may have meant: same letters in another case, close spellings,
    else values with the same first letter (short codes like `HX` are never "close" to `HK`)."""
    if not isinstance(value, str) or not value:
        return []
    folded = [v for v in values if v.casefold() == value.casefold()]
    if folded:
        return folded[:3]
    close = difflib.get_close_matches(value, values, n=3, cutoff=0.6)
    if close:
        return close
    return [v for v in values if v[:1].casefold() == value[:1].casefold()][:3]


def _expected(fact: p.FactInfo, element: bool = False) -> str:
    """What a value of the fact's type looks like, in a case."""
    kind = fact.type.element if element or not fact.type.is_set else fact.type
    if kind.is_set:
        inner = kind.element
        name = f"{inner.enum} values" if inner.base == "enum" else f"{inner.base}s"
        return f"a list of {name}"
    return {
        "boolean": "true or false",
        "string": "a string",
        "number": 'a number, or a decimal string like "12.50"',
        "date": "a date written YYYY-MM-DD",
    }.get(kind.base, f"one of the values of {kind.enum}")


def reason(error: dict[str, Any], fact: p.FactInfo | None, enums: dict[str, tuple[str, ...]]) -> str:
    """The reason for one pydantic error about `fact` (None: the error is about a record)."""
    kind = error.get("type", "")
    value = error.get("input")
    if kind == "value_error":  # the engine's own validators (numbers, dates) wrote the reason
        cause = error.get("ctx", {}).get("error")
        return str(cause) if cause is not None else "is invalid"
    if fact is None:
        return f"must be an object of facts, not {_shown(value)}"
    element = bool(error.get("loc")) and isinstance(error["loc"][-1], int)
    if kind == "literal_error" and fact.type.element.base == "enum":
        enum = fact.type.element.enum or ""
        return enum_reason(value, enum, enums.get(enum, ()))
    if kind.startswith(("decimal_", "finite_")):
        return f"must be {_expected(fact, element)}"
    return f"must be {_expected(fact, element)}, not {_shown(value)}"
