"""The checked program: resolved symbols, types, and typed conditions (the checker's output).

The checker turns names into what they mean (a fact, a derived fact, a group, a table, an
enumeration value) and gives every sub-expression a type. The compiler reads only this
model; it never resolves a name or looks at raw syntax except to print it in traces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Union

from engine import syntax as s
from engine.errors import Span
from engine.nodes import child_iterator

# ---------------------------------------------------------------------------
# Types

SCALARS = ("boolean", "number", "string", "date")


@dataclass(frozen=True, slots=True)
class Type:
    """`boolean`, `number`, `string`, `date`, an enumeration, or a set of one of those."""

    base: str  # one of SCALARS, or "enum"
    enum: str | None = None
    is_set: bool = False

    def __str__(self) -> str:
        name = self.enum if self.base == "enum" else self.base
        return f"set of {name}" if self.is_set else str(name)

    @property
    def element(self) -> Type:
        """The scalar type of a set's values (a scalar is its own element)."""
        return Type(self.base, self.enum, False)

    def as_set(self) -> Type:
        return Type(self.base, self.enum, True)

    @property
    def ordered(self) -> bool:
        """Whether `<`, `<=`, `>`, `>=` apply."""
        return not self.is_set and self.base in ("number", "date")


BOOLEAN = Type("boolean")
NUMBER = Type("number")
STRING = Type("string")
DATE = Type("date")

Value = Union[str, Decimal, date, bool, frozenset[Any]]


# ---------------------------------------------------------------------------
# Typed conditions and values (IR). Every node keeps the syntax node it came from.


@dataclass(frozen=True, slots=True, eq=False)
class FactRead:
    path: str
    type: Type
    optional: bool
    source: s.Expr


@dataclass(frozen=True, slots=True, eq=False)
class DerivedRead:
    name: str
    type: Type
    source: s.Expr


@dataclass(frozen=True, slots=True, eq=False)
class Const:
    value: Value
    type: Type
    source: s.Expr


@dataclass(frozen=True, slots=True, eq=False)
class TableLookup:
    table: str
    key: Node
    type: Type
    source: s.Expr


@dataclass(frozen=True, slots=True, eq=False)
class TableHas:
    table: str
    key: Node
    type: Type
    source: s.Expr


@dataclass(frozen=True, slots=True, eq=False)
class NotNode:
    operand: Node
    type: Type
    source: s.Expr


@dataclass(frozen=True, slots=True, eq=False)
class AndNode:
    operands: tuple[Node, ...]
    type: Type
    source: s.Expr


@dataclass(frozen=True, slots=True, eq=False)
class OrNode:
    operands: tuple[Node, ...]
    type: Type
    source: s.Expr


@dataclass(frozen=True, slots=True, eq=False)
class CompareNode:
    op: str
    left: Node
    right: Node
    type: Type
    source: s.Expr


@dataclass(frozen=True, slots=True, eq=False)
class MemberNode:
    """`item in collection`; `any_of` when the item is itself a set (any of its values)."""

    item: Node
    collection: Node
    any_of: bool
    type: Type
    source: s.Expr


@dataclass(frozen=True, slots=True, eq=False)
class IncludesNode:
    collection: Node
    item: Node
    mode: str  # "one", "any", "all"
    type: Type
    source: s.Expr


@dataclass(frozen=True, slots=True, eq=False)
class PresenceNode:
    path: str
    present: bool
    type: Type
    source: s.Expr


@dataclass(frozen=True, slots=True, eq=False)
class ArithNode:
    """`left OP right` on numbers, OP one of + - * /; `/` is an exact rational (engine/numbers.py)."""

    op: str
    left: Node
    right: Node
    type: Type
    source: s.Expr


@dataclass(frozen=True, slots=True, eq=False)
class CallNode:
    """`min(...)` or `max(...)` over numbers."""

    function: str
    args: tuple[Node, ...]
    type: Type
    source: s.Expr


@dataclass(frozen=True, slots=True, eq=False)
class RoundNode:
    """A computed number brought to its declared scale: `number scale 2 rounding half_up`.

    Made by the checker where a derived fact or decision declares a scale; `source` is the
    expression it rounds.
    """

    operand: Node
    scale: int
    rounding: str
    type: Type
    source: s.Expr


Node = Union[
    FactRead,
    DerivedRead,
    Const,
    TableLookup,
    TableHas,
    NotNode,
    AndNode,
    OrNode,
    CompareNode,
    MemberNode,
    IncludesNode,
    PresenceNode,
    ArithNode,
    CallNode,
    RoundNode,
]

#: Nodes that compute a number; the trace shows their values (`computed`).
COMPUTED_NODES = (ArithNode, CallNode, RoundNode)

#: Nodes that are conditions in their own right and get a line in a trace.
CONDITION_NODES = (NotNode, AndNode, OrNode, CompareNode, MemberNode, IncludesNode, PresenceNode, TableHas)


_children = child_iterator(frozenset({"Node"}))


def sub_nodes(node: Node) -> tuple[Node, ...]:
    """Direct children of an IR node: its `Node`-typed fields, in field order (`engine.nodes`)."""
    return _children(node)


def exact_quotient(node: Node) -> bool:
    """Whether a node can compute an exact rational (a `/` not brought to a declared scale).

    Such a value may be compared, but cannot be stored (a derived fact, a decision) without
    a scale and a rounding rule. Derived facts are already decimals, so reads stop there.
    """
    if isinstance(node, ArithNode) and node.op == "/":
        return True
    if isinstance(node, RoundNode | DerivedRead):
        return False
    return any(exact_quotient(child) for child in sub_nodes(node))


def reads(node: Node) -> list[str]:
    """Facts and derived facts a node reads, in order of first appearance (for the trace)."""
    found: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop(0)
        name = None
        if isinstance(current, FactRead):
            name = current.path
        elif isinstance(current, DerivedRead):
            name = current.name
        elif isinstance(current, PresenceNode):
            name = current.path
        if name is not None and name not in found:
            found.append(name)
        stack[0:0] = list(sub_nodes(current))
    return found


# ---------------------------------------------------------------------------
# Declarations


@dataclass(frozen=True, slots=True)
class FactInfo:
    """A declared fact. `optional`: a case may leave it out; `default`: the value it then takes."""

    path: str
    type: Type
    optional: bool
    description: str
    span: Span
    default: Value | None = None

    @property
    def nullable(self) -> bool:
        """Whether the fact can be missing at evaluation time (optional with no default)."""
        return self.optional and self.default is None


@dataclass(frozen=True, slots=True)
class DerivedInfo:
    name: str
    type: Type
    description: str
    node: Node
    span: Span


@dataclass(frozen=True, slots=True)
class TableEntry:
    key: Value
    value: Value
    effective: date | None
    ends: date | None


@dataclass(frozen=True, slots=True)
class TableInfo:
    name: str
    key_type: Type
    value_type: Type
    description: str
    source: str
    entries: tuple[TableEntry, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class GroupInfo:
    name: str
    description: str | None
    values: tuple[s.Ref | s.Literal, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class DecisionInfo:
    """A declared decision: its type (an enumeration, boolean, number or date) and default."""

    name: str
    type: Type
    default: Any  # a constant of `type` (an enumeration value is a str)
    description: str
    span: Span

    @property
    def enum(self) -> str:
        """The enumeration of an enumeration-valued decision ("" for the other types)."""
        return self.type.enum or ""


@dataclass(frozen=True, slots=True)
class OutcomeInfo:
    """A resolved outcome: kind is "decide", "require" or "recommend".

    A decision's value is a constant (`value`), or computed per case (`computed`, a node
    evaluated after precedence, only for the rules that take effect); `text` is its source.
    """

    kind: str
    name: str
    value: Any  # a constant of the decision's type (an enum value is a str), or None
    span: Span
    computed: Node | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class RuleInfo:
    id: str
    description: str | None
    citations: tuple[str, ...]
    overrides: tuple[str, ...]
    condition: Node
    unless: tuple[Node, ...]
    outcomes: tuple[OutcomeInfo, ...]
    span: Span
    decl: s.RuleDecl


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    """The header of a policy version."""

    id: str
    title: str
    version: str
    effective: date | None
    ends: date | None
    status: str
    source: str
    description: str | None
    path: str


@dataclass
class Program:
    """A checked policy version, ready to compile."""

    info: PolicyInfo
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    facts: dict[str, FactInfo] = field(default_factory=dict)
    derived: dict[str, DerivedInfo] = field(default_factory=dict)  # in dependency order
    tables: dict[str, TableInfo] = field(default_factory=dict)
    groups: dict[str, GroupInfo] = field(default_factory=dict)
    decisions: dict[str, DecisionInfo] = field(default_factory=dict)
    obligations: dict[str, str] = field(default_factory=dict)
    recommendations: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    rules: list[RuleInfo] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # every file read: policy, vocabularies, tables
    syntax: s.SourceFile | None = None


def can_be_unknown(program: Program, node: Node, derived_cache: dict[str, bool]) -> bool:
    """Whether a node can be unknown in three-valued logic, decided statically once per node.

    A node is unknown when it reads a missing optional fact, an absent scalar table value, or
    divides (division by zero has no value). Every generated evaluator (the compiler's, the
    columnar one) asks this one function, so they emit Kleene helpers at the same nodes;
    `derived_cache` memoises derived facts per emitter.
    """
    if isinstance(node, FactRead):
        return node.optional
    if isinstance(node, DerivedRead):
        if node.name not in derived_cache:
            derived_cache[node.name] = can_be_unknown(program, program.derived[node.name].node, derived_cache)
        return derived_cache[node.name]
    if isinstance(node, TableLookup):
        return not node.type.is_set or can_be_unknown(program, node.key, derived_cache)
    if isinstance(node, PresenceNode):
        return False
    if isinstance(node, ArithNode) and node.op == "/":
        return True
    return any(can_be_unknown(program, child, derived_cache) for child in sub_nodes(node))
