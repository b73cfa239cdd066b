"""The syntax tree: a closed set of frozen node types with source spans.

Spans take no part in equality, so tools (formatter, diff, linter) can compare
meaning: two files that differ only in layout parse to equal trees. Nodes are plain
dataclasses, built by the thousand at parse time; pydantic is kept for the edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Union

from engine.errors import NO_SPAN, Span
from engine.nodes import child_iterator


def _span() -> Any:
    return field(default=NO_SPAN, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Ident:
    """A name as written at one place in the source (a rule id, a value, an outcome name)."""

    name: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Comment:
    """A `#` comment, kept so the formatter can put it back where it was."""

    text: str
    span: Span = _span()


# ---------------------------------------------------------------------------
# Expressions


@dataclass(frozen=True, slots=True)
class Ref:
    """A dotted name in an expression: a fact, derived fact, group, table or enum value.

    What it names is decided by the checker, not the parser.
    """

    path: tuple[str, ...]
    span: Span = _span()

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant: string, exact decimal number, date or boolean.

    `percent`: the number was written as a percentage (`25%`); its value is the fraction (0.25).
    """

    value: str | Decimal | date | bool
    percent: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class SetLiteral:
    """`<a, b, "c">`: the items are `Ref` (single names, enum values) or `Literal`."""

    items: tuple[Ref | Literal, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Lookup:
    """`table[key]`: the table entry in force on the evaluation date."""

    table: Ident
    key: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Expr, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Expr, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Compare:
    """`left OP right` with OP one of = != < <= > >=."""

    op: str
    left: Expr
    right: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Member:
    """`item in collection`; for a set-valued item: any of its values is in the collection."""

    item: Expr
    collection: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Includes:
    """`collection includes item` (mode "one"), `includes any SET` or `includes all SET`."""

    collection: Expr
    item: Expr
    mode: str = "one"
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Arith:
    """`left OP right` with OP one of + - * / on numbers (exact; see engine/numbers.py)."""

    op: str
    left: Expr
    right: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Call:
    """`min(a, b, ...)` or `max(a, b, ...)`: a built-in function over numbers."""

    function: Ident
    args: tuple[Expr, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Presence:
    """`fact is present` / `fact is missing`, for optional facts."""

    ref: Ref
    present: bool
    span: Span = _span()


Expr = Union[Ref, Literal, SetLiteral, Lookup, Not, And, Or, Compare, Member, Includes, Presence, Arith, Call]


# ---------------------------------------------------------------------------
# Declarations


@dataclass(frozen=True, slots=True)
class HeaderField:
    name: str
    value: str | date
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Header:
    """`policy "id"` or `vocabulary "id"` with its fields (title, version, effective...)."""

    kind: str
    id: str
    fields: tuple[HeaderField, ...]
    span: Span = _span()

    def get(self, name: str) -> HeaderField | None:
        """The field of that name, if present (the checker reports duplicates)."""
        for item in self.fields:
            if item.name == name:
                return item
        return None


@dataclass(frozen=True, slots=True)
class TypeExpr:
    """`boolean`, `Country`, `set of ControlReason`, optionally prefixed `optional`."""

    name: str
    is_set: bool = False
    optional: bool = False
    scale: int | None = None  # `scale 2 rounding half_up`: digits kept by a computed number
    rounding: Ident | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Use:
    path: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class EnumDecl:
    name: Ident
    description: str
    values: tuple[Ident, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class FactDecl:
    """`fact PATH: TYPE [default VALUE] "description"`; a fact with a default may be left out of a case."""

    path: tuple[str, ...]
    type: TypeExpr
    description: str
    default: Ref | Literal | SetLiteral | None = None
    span: Span = _span()

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class GroupDecl:
    name: Ident
    description: str | None
    values: SetLiteral
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class TableDecl:
    name: Ident
    key_type: TypeExpr
    value_type: TypeExpr
    description: str
    source: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class DefineDecl:
    name: Ident
    type: TypeExpr | None
    description: str
    expr: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class DecisionDecl:
    """`decision NAME: TYPE default VALUE "description"`: an enumeration, boolean, number or date."""

    name: Ident
    type: TypeExpr
    default: Ref | Literal | SetLiteral | None
    description: str
    span: Span = _span()

    @property
    def type_name(self) -> Ident:
        """The type's name as written (`Review`, `boolean`), where the type is."""
        return Ident(self.type.name, span=self.type.span)


@dataclass(frozen=True, slots=True)
class ObligationDecl:
    name: Ident
    description: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class RecommendationDecl:
    name: Ident
    description: str
    citations: tuple[str, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Decide:
    """`decide DECISION = VALUE`: an enumeration value, a constant, or an expression (`a / b * 100`)."""

    decision: Ident
    value: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Require:
    """`require OBLIGATION` (obligations accumulate)."""

    name: Ident
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Recommend:
    """`recommend STEP` (non-binding, accumulates)."""

    name: Ident
    span: Span = _span()


Outcome = Union[Decide, Require, Recommend]


@dataclass(frozen=True, slots=True)
class RuleDecl:
    """A rule: id, description, citations, overrides, condition, unless clauses, outcomes."""

    id: Ident
    description: str | None
    citations: tuple[str, ...]
    overrides: tuple[Ident, ...]
    condition: Expr
    unless: tuple[Expr, ...]
    outcomes: tuple[Outcome, ...]
    span: Span = _span()


Item = Union[
    Use,
    EnumDecl,
    FactDecl,
    GroupDecl,
    TableDecl,
    DefineDecl,
    DecisionDecl,
    ObligationDecl,
    RecommendationDecl,
    RuleDecl,
]


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One parsed `.policy` or `.vocab` file."""

    header: Header
    items: tuple[Item, ...]
    comments: tuple[Comment, ...] = ()
    path: str = field(default="<string>", compare=False)

    @property
    def rules(self) -> tuple[RuleDecl, ...]:
        return tuple(i for i in self.items if isinstance(i, RuleDecl))


# ---------------------------------------------------------------------------
# Printing expressions back as source: used by traces, diffs and the formatter.

_PRECEDENCE: dict[type, float] = {
    Or: 1,
    And: 2,
    Not: 3,
    Compare: 3.5,
    Member: 3.5,
    Includes: 3.5,
    Presence: 3.5,
    Arith: 3.6,  # + and -; * and / bind tighter (_ARITH_LEVEL)
}
_OPERAND = 3.9  # operands of `includes`: anything but an atom needs parentheses
_COMPARED = 3.5  # operands of a comparison or `in`: arithmetic needs none
_ARITH_LEVEL = {"+": 3.6, "-": 3.6, "*": 3.7, "/": 3.7}


def format_literal(value: str | Decimal | date | bool, percent: bool = False) -> str:
    """A constant as it would be written in a policy."""
    if percent and isinstance(value, Decimal):
        return f"{value.scaleb(2).normalize():f}%"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return str(value)


def unparse(expr: Expr) -> str:
    """Canonical source text of an expression; parentheses only where needed."""
    return _unparse(expr, 0)


def _level(expr: Expr) -> float:
    if isinstance(expr, Arith):
        return _ARITH_LEVEL[expr.op]
    return _PRECEDENCE.get(type(expr), 4)


def _wrap(expr: Expr, parent_level: float) -> str:
    level = _level(expr)
    text = _unparse(expr, level)
    return f"({text})" if level <= parent_level and level < 4 else text


def _unparse(expr: Expr, level: float) -> str:
    if isinstance(expr, Ref):
        return expr.dotted
    if isinstance(expr, Literal):
        return format_literal(expr.value, expr.percent)
    if isinstance(expr, SetLiteral):
        return "<" + ", ".join(_unparse(i, 4) for i in expr.items) + ">"
    if isinstance(expr, Lookup):
        return f"{expr.table.name}[{unparse(expr.key)}]"
    if isinstance(expr, Not):
        return "not " + _wrap(expr.operand, 2)
    if isinstance(expr, And):
        return " and ".join(_wrap(o, 2) for o in expr.operands)
    if isinstance(expr, Or):
        return " or ".join(_wrap(o, 1) for o in expr.operands)
    if isinstance(expr, Compare):
        return f"{_wrap(expr.left, _COMPARED)} {expr.op} {_wrap(expr.right, _COMPARED)}"
    if isinstance(expr, Member):
        return f"{_wrap(expr.item, _COMPARED)} in {_wrap(expr.collection, _OPERAND)}"
    if isinstance(expr, Arith):
        own = _ARITH_LEVEL[expr.op]  # left-associative: a right operand of the same level needs ()
        return f"{_wrap(expr.left, own - 0.05)} {expr.op} {_wrap(expr.right, own)}"
    if isinstance(expr, Call):
        return f"{expr.function.name}(" + ", ".join(unparse(a) for a in expr.args) + ")"
    if isinstance(expr, Includes):
        word = "includes" if expr.mode == "one" else f"includes {expr.mode}"
        return f"{_wrap(expr.collection, _OPERAND)} {word} {_wrap(expr.item, _OPERAND)}"
    if isinstance(expr, Presence):
        return f"{expr.ref.dotted} is {'present' if expr.present else 'missing'}"
    raise TypeError(f"not an expression: {expr!r}")


#: The field types that hold sub-expressions (tuples of them count too).
_EXPR_TYPES = frozenset({"Expr", "Ref", "Ref|Literal"})
_children = child_iterator(_EXPR_TYPES)


def children(expr: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of an expression, in source order (derived from its fields)."""
    return _children(expr)


def walk(expr: Expr) -> list[Expr]:
    """Every node of an expression, parents before children."""
    out: list[Expr] = [expr]
    for child in children(expr):
        out.extend(walk(child))
    return out


def to_data(node: Any) -> Any:
    """A JSON-ready view of a syntax node, with its node type and span (for `policy parse`)."""
    if is_dataclass(node) and not isinstance(node, type):
        out: dict[str, Any] = {"node": type(node).__name__}
        for f in fields(node):
            value = getattr(node, f.name)
            if f.name == "span":
                if value is not NO_SPAN:
                    out["span"] = [value.line, value.col, value.end_line, value.end_col]
                continue
            out[f.name] = to_data(value)
        return out
    if isinstance(node, tuple | list):
        return [to_data(v) for v in node]
    if isinstance(node, Decimal | date):
        return str(node)
    return node
