"""Pydantic models at the edges: decisions, traces, and the case input derived from fact declarations.

These are the JSON contract with integrators: `Decision.model_dump(mode="json")` is what
`policy eval --format json` prints, and `case_model(program).model_json_schema()` is what
`policy schema` prints.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any, Literal, Optional

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    WithJsonSchema,
    create_model,
)

from engine import program as p
from engine.cases import Record, records
from engine.numbers import as_decimal_text

TRACE_VERSION = 1

#: What a decision can be: an enumeration value (str), a boolean, an exact number, a date.
OutputValue = bool | str | Decimal | date

RuleStatus = Literal["fired", "not_fired", "overridden", "unknown"]
ConditionKind = Literal["and", "or", "not", "test"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)


class RuleRef(_Model):
    """A rule that determined an outcome, with the citations behind it."""

    rule: str
    citations: list[str] = Field(default_factory=list)
    description: str | None = None


class DecisionValue(_Model):
    """The value of one single-valued decision and the rules that determined it.

    `default` is true when no rule decided and the declared default applies; `value` is
    null when rules conflict (see `Decision.conflicts`). `undetermined_by` lists rules that
    could have decided it but hang on a missing optional fact (or computed no value): the
    value may change once that fact is known. An enumeration value is a string, a boolean a
    JSON boolean, a number an exact decimal string (`"25.00"`), a date `"YYYY-MM-DD"`.
    """

    value: OutputValue | None
    default: bool = False
    rules: list[RuleRef] = Field(default_factory=list)
    undetermined_by: list[RuleRef] = Field(default_factory=list)


class OutcomeItem(_Model):
    """An obligation or recommendation, with every rule that called for it."""

    name: str
    description: str = ""
    citations: list[str] = Field(default_factory=list)
    rules: list[RuleRef] = Field(default_factory=list)


class ConflictClaim(_Model):
    rule: str
    value: OutputValue
    citations: list[str] = Field(default_factory=list)


class Conflict(_Model):
    """Two or more effective rules decide one decision differently, with no precedence between them."""

    decision: str
    claims: list[ConflictClaim]


class ConditionTrace(_Model):
    """One condition or sub-condition: its text, truth value (null = unknown) and the values it read."""

    condition: str
    kind: ConditionKind = "test"
    value: bool | None
    reads: dict[str, Any] = Field(default_factory=dict)
    #: The values of the arithmetic the test computed (`a / b * 100` → `"25.01"`), by source text;
    #: left out of the JSON when the test computes nothing.
    computed: dict[str, Any] = Field(default_factory=dict, exclude_if=lambda v: not v)
    children: list[ConditionTrace] = Field(default_factory=list)


class RuleTrace(_Model):
    """How one rule went: fired, did not fire, overridden (by which rules), or unknown."""

    rule: str
    description: str | None = None
    citations: list[str] = Field(default_factory=list)
    status: RuleStatus
    overridden_by: list[str] = Field(default_factory=list)
    overrides: list[str] = Field(default_factory=list)
    condition: ConditionTrace
    unless: list[ConditionTrace] = Field(default_factory=list)
    outcomes: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)


class Trace(_Model):
    """The full, deterministic account of an evaluation (stable order, no timestamps)."""

    trace_version: int = TRACE_VERSION
    facts: dict[str, Any]
    derived: dict[str, Any] = Field(default_factory=dict)
    rules: list[RuleTrace]
    #: Facts the case left out that took their declared default (their value is in `facts`);
    #: left out of the JSON when empty, so traces of policies without defaults are unchanged.
    defaults: list[str] = Field(default_factory=list, exclude_if=lambda v: not v)


class Decision(_Model):
    """What a policy version decided for a case, and why."""

    policy: str
    version: str
    title: str = ""
    source: str = ""
    content_hash: str
    evaluated_at: date
    decisions: dict[str, DecisionValue]
    obligations: list[OutcomeItem] = Field(default_factory=list)
    recommendations: list[OutcomeItem] = Field(default_factory=list)
    conflicts: list[Conflict] = Field(default_factory=list)
    fired: list[str] = Field(default_factory=list)
    unknown: list[str] = Field(default_factory=list)
    trace: Trace | None = None

    def value(self, decision: str) -> OutputValue | None:
        """Shortcut: the value of one decision."""
        return self.decisions[decision].value

    @property
    def obligation_names(self) -> list[str]:
        return [o.name for o in self.obligations]

    @property
    def recommendation_names(self) -> list[str]:
        return [r.name for r in self.recommendations]


# ---------------------------------------------------------------------------
# Case input


def to_json_value(value: Any) -> Any:
    """A policy value as JSON: sets become sorted lists, decimals and dates strings."""
    if isinstance(value, frozenset | set):
        return sorted(to_json_value(v) for v in value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Fraction):  # an exact quotient no scale has rounded (only in `computed`)
        return as_decimal_text(value)
    return value


#: A number written as a string: ASCII digits, optional sign, fraction and exponent ("12.50",
#: "-3", "1e3"). No spaces, underscores or other scripts' digits, which pydantic's lax
#: Decimal would take: the case format is what `policy schema` says, nothing looser.
#: `(?!\n)$`: Python's `$` also matches before a final newline, ECMA's does not; with the
#: lookahead the pattern means the same to every JSON Schema validator.
DECIMAL_STRING = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?(?!\n)$"
#: A date: `YYYY-MM-DD` with ASCII digits (and a real calendar day, checked on parsing).
DATE_STRING = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(?!\n)$"

NUMBER_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "number"}, {"type": "string", "pattern": DECIMAL_STRING}],
}
DATE_SCHEMA: dict[str, Any] = {"type": "string", "format": "date", "pattern": DATE_STRING}


def _number(value: Any) -> Any:
    """A JSON number (finite, not a boolean) or a decimal string; pydantic then makes the Decimal."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    if isinstance(value, int | Decimal):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        return value
    if isinstance(value, str) and re.search(DECIMAL_STRING, value):
        return value
    raise ValueError('must be a number, or a decimal string like "12.50"')


def _date(value: Any) -> Any:
    """A `YYYY-MM-DD` string naming a real day (a `datetime.date` from Python callers too)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and re.search(DATE_STRING, value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a day of the calendar") from None
    raise ValueError("must be a date written YYYY-MM-DD")


StrictNumber = Annotated[Decimal, BeforeValidator(_number), WithJsonSchema(NUMBER_SCHEMA)]
StrictDate = Annotated[date, BeforeValidator(_date), WithJsonSchema(DATE_SCHEMA)]


def _annotation(fact: p.FactInfo, enums: dict[str, tuple[str, ...]]) -> Any:
    base: Any
    if fact.type.base == "enum":
        values = enums[fact.type.enum or ""]
        base = Literal[values] if values else str
    else:
        # Booleans and strings are strict: "yes", 1 or "off" are not booleans, 12 is not a string.
        # Numbers are JSON numbers or decimal strings ("12.50"), dates `YYYY-MM-DD` strings.
        base = {"boolean": StrictBool, "number": StrictNumber, "string": StrictStr, "date": StrictDate}[
            fact.type.base
        ]
    if fact.type.is_set:
        base = list[base]
    return Optional[base] if fact.optional else base  # noqa: UP045 - built at run time


def _build_model(name: str, tree: Record, program: p.Program) -> type[BaseModel]:
    # Fact names become aliases of compiler-made attribute names, so a fact may be called
    # `_x`, `schema` or `model_config` without clashing with pydantic's own names.
    fields: dict[str, Any] = {}
    for index, (key, entry) in enumerate(tree.entries.items()):
        attr = f"f{index}"
        if isinstance(entry, p.FactInfo):
            default = None if entry.optional else ...
            # A declared default is applied by the compiled rules (so the trace can say it was
            # used); the schema still shows it, as JSON Schema's `default`.
            extra = None if entry.default is None else {"default": to_json_value(entry.default)}
            fields[attr] = (
                _annotation(entry, program.enums),
                Field(
                    default,
                    alias=key,
                    title=_title(key),
                    description=entry.description,
                    json_schema_extra=extra,
                ),
            )
        else:
            sub = _build_model(f"{name}_{key}", entry, program)
            default = ... if entry.required() else None
            annotation = sub if default is ... else Optional[sub]  # noqa: UP045 - built at run time
            fields[attr] = (annotation, Field(default, alias=key, description=f"record `{key}`"))
    config = ConfigDict(extra="forbid", strict=False, title=name)
    return create_model(name, __config__=config, **fields)


def _title(key: str) -> str:
    """The schema title pydantic would give a field of that name (`end_user` → `End User`)."""
    return key.replace("_", " ").strip().title() or key


def case_model(program: p.Program) -> type[BaseModel]:
    """The pydantic model of a case for this program: required, optional, typed, closed enums."""
    return _build_model("Case", records(program), program)
