"""Exact arithmetic for policy numbers: decimals that never round unless a policy says how.

Numbers at rest (facts, table values, derived facts, decision values) are `Decimal`.
`+`, `-` and `*` on decimals are exact (a context with the largest precision Python allows,
so nothing is ever rounded silently). `/` can need infinitely many digits (1/3), so it is
exact too, as a rational (`Fraction`); a rational becomes a decimal again only where the
policy declares a scale and a rounding rule (`number scale 2 rounding half_up`), and a
comparison with a rational is exact. This is Catala's model (decimals are rationals), with
DMN/FEEL's answer to division by zero: no value (*unknown*), never an exception.

Every helper takes and returns None for an unknown operand (three-valued evaluation).
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from fractions import Fraction
from typing import Any

__all__ = [
    "ROUNDING_MODES",
    "add",
    "as_decimal_text",
    "divide",
    "largest",
    "multiply",
    "percent",
    "round_to",
    "smallest",
    "subtract",
]

Number = Decimal | Fraction | int

#: The rounding rules a declared scale can name (Python's decimal and Java's RoundingMode).
ROUNDING_MODES: dict[str, str] = {
    "half_up": decimal.ROUND_HALF_UP,
    "half_even": decimal.ROUND_HALF_EVEN,
    "half_down": decimal.ROUND_HALF_DOWN,
    "up": decimal.ROUND_UP,
    "down": decimal.ROUND_DOWN,
    "ceiling": decimal.ROUND_CEILING,
    "floor": decimal.ROUND_FLOOR,
}

_EXACT = decimal.Context(
    prec=decimal.MAX_PREC,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    traps=[decimal.InvalidOperation, decimal.Overflow, decimal.DivisionByZero],
)


#: Division in decimals, trapping any rounding: an inexact quotient falls back to a rational.
_DIVIDE = decimal.Context(prec=60, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])


def add(a: Number | None, b: Number | None) -> Number | None:
    """`a + b`, exact."""
    if a is None or b is None:
        return None
    if isinstance(a, Fraction) or isinstance(b, Fraction):
        return Fraction(a) + Fraction(b)
    return _EXACT.add(a, b)


def subtract(a: Number | None, b: Number | None) -> Number | None:
    """`a - b`, exact."""
    if a is None or b is None:
        return None
    if isinstance(a, Fraction) or isinstance(b, Fraction):
        return Fraction(a) - Fraction(b)
    return _EXACT.subtract(a, b)


def multiply(a: Number | None, b: Number | None) -> Number | None:
    """`a * b`, exact."""
    if a is None or b is None:
        return None
    if isinstance(a, Fraction) or isinstance(b, Fraction):
        return Fraction(a) * Fraction(b)
    return _EXACT.multiply(a, b)


def divide(a: Number | None, b: Number | None) -> Decimal | Fraction | None:
    """`a / b`, exact: a decimal when the quotient has one within 60 digits (2500.01 / 10000),
    else a rational (1/3). Division by zero has no value (unknown), as in FEEL."""
    if a is None or b is None or b == 0:
        return None
    if not isinstance(a, Fraction) and not isinstance(b, Fraction):
        try:
            return _DIVIDE.divide(a, b)
        except decimal.Inexact:
            pass
    return Fraction(a) / Fraction(b)


def smallest(*values: Number | None) -> Number | None:
    """`min(a, b, ...)`; unknown if any operand is."""
    if any(v is None for v in values):
        return None
    return min(values)  # type: ignore[type-var]


def largest(*values: Number | None) -> Number | None:
    """`max(a, b, ...)`; unknown if any operand is."""
    if any(v is None for v in values):
        return None
    return max(values)  # type: ignore[type-var]


def round_to(value: Number | None, scale: int, mode: str) -> Decimal | None:
    """A number as a decimal with exactly `scale` digits after the point, rounded by `mode`."""
    if value is None:
        return None
    if not isinstance(value, Fraction):
        exponent = Decimal(1).scaleb(-scale)
        return Decimal(value).quantize(exponent, rounding=ROUNDING_MODES[mode], context=_EXACT)
    scaled = value * 10**scale
    negative = scaled < 0
    quotient, remainder = divmod(abs(scaled.numerator), scaled.denominator)
    twice, whole = 2 * remainder, scaled.denominator
    if mode == "half_up":
        bump = twice >= whole
    elif mode == "half_even":
        bump = twice > whole or (twice == whole and quotient % 2 == 1)
    elif mode == "half_down":
        bump = twice > whole
    elif mode == "up":
        bump = remainder != 0
    elif mode == "down":
        bump = False
    elif mode == "ceiling":
        bump = remainder != 0 and not negative
    else:  # floor
        bump = remainder != 0 and negative
    magnitude = quotient + (1 if bump else 0)
    return Decimal(-magnitude if negative else magnitude).scaleb(-scale, context=_EXACT)


def percent(text: str) -> Decimal:
    """`25%` → 0.25 and `12.5%` → 0.125, exactly."""
    return Decimal(text).scaleb(-2, context=_EXACT)


def as_decimal_text(value: Fraction) -> str:
    """A rational as JSON text: its exact decimal when it has one, else `numerator/denominator`."""
    denominator = value.denominator
    twos = fives = 0
    while denominator % 2 == 0:
        denominator //= 2
        twos += 1
    while denominator % 5 == 0:
        denominator //= 5
        fives += 1
    if denominator != 1:
        return f"{value.numerator}/{value.denominator}"
    digits = max(twos, fives)
    exact = round_to(value, digits, "down")
    return str(exact)


def is_number(value: Any) -> bool:
    """Whether a run-time value is a policy number (booleans are not)."""
    return isinstance(value, Decimal | Fraction | int) and not isinstance(value, bool)
