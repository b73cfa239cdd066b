"""The symbolic compiler: a checked program as z3 formulas, with the evaluator's exact semantics.

Every IR node has one encoding function (a `match` ending in `assert_never`), so a new node
is a type error here until it is encoded. The encoding mirrors `engine.compiler`:

- a boolean node is a pair `(T, F)`: "is true", "is false" (Kleene logic: neither = unknown);
- a value node is `Val(known, value)`: `known` is false when it reads a missing optional fact
  or a scalar table lookup with no entry in force;
- boolean -> Bool; enumeration -> Int index; string -> Int code over the strings the policies
  mention plus fresh "other" strings; number -> Int at a fixed decimal scale; date -> Int
  ordinal day within a plausible range; set -> one Bool per member of its finite universe;
- derived facts are encoded once per side and shared; a dated table is its snapshot on the
  side's evaluation date, as a finite disjunction over its keys;
- precedence as `runtime.resolve`: a rule is effective when it fires and no rule overriding
  it is effective; a decision is the value its effective rules agree on, its default when
  none decides it, or a conflict.

The fact variables live in a `FactSpace` that several encoders share, so two versions can be
compared over the same cases. `FactSpace.constraints()` is the vocabulary (every witness is a
valid case) and `FactSpace.case(model)` turns a model back into a case for the evaluator to
replay: nothing the solver says is reported without that replay.

z3 is imported only by this module and the tools built on it (`engine.proofs`), never by
`import engine`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, TypeAlias, assert_never

import z3

from engine import program as p

#: The plausible range of a date fact (the solver never proposes a date outside it).
DATE_MIN = date(1900, 1, 1)
DATE_MAX = date(2199, 12, 31)

#: Decimal digits the solver searches beyond the finest constant of the policies.
EXTRA_DIGITS = 2

#: The value of a decision whose effective rules disagree (as `policy diff` shows it).
CONFLICT = "(conflict)"

Bool: TypeAlias = Any  # a z3 BoolRef (z3 ships no type stubs)


class Unsupported(Exception):
    """A construct the symbolic compiler does not encode (raised, never silently approximated)."""


@dataclass(frozen=True)
class Val:
    """A value node: `known` is false when the evaluator would see None (unknown)."""

    known: Bool
    value: Any  # BoolRef, ArithRef, or dict member-code -> BoolRef for sets


TRUE: Bool = z3.BoolVal(True)
FALSE: Bool = z3.BoolVal(False)
_TRUE_ID = TRUE.get_id()
_FALSE_ID = FALSE.get_id()


def _is_true(x: Bool) -> bool:
    return bool(x.get_id() == _TRUE_ID)  # z3 hash-conses terms: one id per constant


def _is_false(x: Bool) -> bool:
    return bool(x.get_id() == _FALSE_ID)


def _mk(function: Any, parts: list[Bool]) -> Bool:
    """`And`/`Or` through z3's C API: z3py's argument coercion dominates large encodings."""
    ctx = parts[0].ctx
    array = (z3.Ast * len(parts))()
    for i, part in enumerate(parts):
        array[i] = part.as_ast()
    return z3.BoolRef(function(ctx.ref(), len(parts), array), ctx)


def conj(parts: list[Bool]) -> Bool:
    """`And` that folds constants (small formulas for the many trivially-known parts)."""
    kept = []
    for x in parts:
        if _is_false(x):
            return FALSE
        if not _is_true(x):
            kept.append(x)
    return TRUE if not kept else kept[0] if len(kept) == 1 else _mk(z3.Z3_mk_and, kept)


def disj(parts: list[Bool]) -> Bool:
    """`Or` that folds constants."""
    kept = []
    for x in parts:
        if _is_true(x):
            return TRUE
        if not _is_false(x):
            kept.append(x)
    return FALSE if not kept else kept[0] if len(kept) == 1 else _mk(z3.Z3_mk_or, kept)


def neg(x: Bool) -> Bool:
    if _is_true(x):
        return FALSE
    if _is_false(x):
        return TRUE
    return z3.BoolRef(z3.Z3_mk_not(x.ctx.ref(), x.as_ast()), x.ctx)


def eq_code(term: Any, code: int) -> Bool:
    """`term == code` for an Int term, through the C API (z3py's `==` coerces and checks)."""
    ctx = term.ctx
    ref = ctx.ref()
    ast = term.as_ast()
    number = z3.Z3_mk_int(ref, code, z3.Z3_get_sort(ref, ast))
    return z3.BoolRef(z3.Z3_mk_eq(ref, ast, number), ctx)


def real(value: Any) -> Any:
    """An exact Real constant for a decimal or rational."""
    fraction = Fraction(value)
    return z3.RealVal(f"{fraction.numerator}/{fraction.denominator}")


def round_real(x: Any, scale: int, mode: str) -> Any:
    """`x` rounded to `scale` decimals by `mode`, exactly as `engine.numbers.round_to`."""
    factor = z3.RealVal(10**scale)
    y = x * factor
    magnitude = z3.If(y >= 0, y, -y)
    floor_m = z3.ToInt(magnitude)
    exact = z3.ToReal(floor_m) == magnitude
    half = z3.RealVal("1/2")
    remainder = magnitude - z3.ToReal(floor_m)
    negative = y < 0
    if mode == "half_up":
        bump = remainder >= half
    elif mode == "half_down":
        bump = remainder > half
    elif mode == "half_even":
        bump = z3.Or(remainder > half, z3.And(remainder == half, floor_m % 2 == 1))
    elif mode == "up":
        bump = z3.Not(exact)
    elif mode == "down":
        bump = FALSE
    elif mode == "ceiling":
        bump = z3.And(z3.Not(exact), z3.Not(negative))
    elif mode == "floor":
        bump = z3.And(z3.Not(exact), negative)
    else:
        raise Unsupported(f"rounding mode `{mode}`")
    rounded = z3.ToReal(floor_m + z3.If(bump, 1, 0))
    return z3.If(negative, -rounded, rounded) / factor


@dataclass(frozen=True)
class ConstSet:
    """A constant set (a literal or group): its member codes, so tests against it cost one term
    per member rather than one per value of the universe (200 countries)."""

    members: frozenset[int]
    universe: tuple[int, ...]

    def as_dict(self) -> dict[int, Bool]:
        return {c: (TRUE if c in self.members else FALSE) for c in self.universe}


def members(value: Any) -> dict[int, Bool]:
    """A set value as member code -> "is a member" (constant sets expanded)."""
    return value.as_dict() if isinstance(value, ConstSet) else value


# ---------------------------------------------------------------------------
# The fact space: one set of variables for every version compared


@dataclass
class SymFact:
    """One fact's solver variables and how to read its value back out of a model."""

    path: str
    type: p.Type
    optional: bool
    present: Bool
    value: Any  # BoolRef, ArithRef, or dict code -> BoolRef
    domain: list[int] = field(default_factory=list)  # valid codes of an enum/string scalar
    absent: Bool = FALSE  # not present (built once: z3's Python API is slow to build terms)
    absent_value: Bool = FALSE  # a boolean fact's negation
    not_member: dict[int, Bool] = field(default_factory=dict)  # a set fact's non-members
    real: Any = None  # a number fact's value as a Real (its variable is the Int at the scale)


class FactSpace:
    """Solver variables for the facts of one or more programs, and the vocabulary constraints.

    Strings are coded over every string constant the programs mention (literals, groups,
    table keys and values) plus a few fresh strings no policy mentions ("other-1", ...),
    enough for every string fact to differ from all constants and from each other. Numbers
    are integers at one decimal scale, finer than every constant by `EXTRA_DIGITS` digits.
    """

    def __init__(self, programs: list[p.Program], numbers: tuple[Decimal, ...] = ()):
        self.programs = programs
        self.enums: dict[str, tuple[str, ...]] = {}
        for program in programs:
            for name, values in program.enums.items():
                known = self.enums.get(name)
                if known is not None and known != values:
                    merged = tuple(dict.fromkeys([*known, *values]))
                    self.enums[name] = merged
                else:
                    self.enums[name] = values
        self.valid_enum: dict[str, set[str]] = {}
        for name in self.enums:
            sets = [set(pr.enums[name]) for pr in programs if name in pr.enums]
            self.valid_enum[name] = set.intersection(*sets) if sets else set()
        strings, mentioned, dates = _constants(programs)
        self.scale = max([_decimals(n) for n in [*mentioned, *numbers]] + [0]) + EXTRA_DIGITS
        string_facts = sum(1 for pr in programs for f in pr.facts.values() if f.type.base == "string")
        self.strings: list[str] = sorted(strings)
        fresh: list[str] = []
        counter = 1
        while len(fresh) < string_facts + 1:
            candidate = f"other-{counter}"
            counter += 1
            if candidate not in strings:
                fresh.append(candidate)
        self.fresh_strings = fresh
        self.string_code = {text: i for i, text in enumerate(self.strings + fresh)}
        self.date_min = min([DATE_MIN, *(d - timedelta(days=1) for d in dates)])
        self.date_max = max([DATE_MAX, *(d + timedelta(days=1) for d in dates)])
        self.facts: dict[str, SymFact] = {}
        self._constraints: Bool | None = None
        self._equals: dict[tuple[int, int], Bool] = {}
        declared: dict[str, list[p.FactInfo]] = {}
        for program in programs:
            for path, info in program.facts.items():
                declared.setdefault(path, []).append(info)
        for path, infos in declared.items():
            if any(i.type != infos[0].type for i in infos):
                raise Unsupported(f"fact `{path}` has different types in the versions compared")
            # a case valid for every version: required if any version requires it
            optional = all(i.optional for i in infos)
            self.facts[path] = self._declare(dataclasses.replace(infos[0], optional=optional))

    # -- coding values -------------------------------------------------------------
    def universe(self, element: p.Type) -> list[int]:
        """Member codes of a set of this element type (finite: enum values, or known+fresh strings)."""
        if element.base == "enum":
            return list(range(len(self.enums[element.enum or ""])))
        if element.base == "string":
            return list(range(len(self.string_code)))
        if element.base == "boolean":
            return [0, 1]
        raise Unsupported(f"sets of {element.base} are not encoded")

    def code(self, value: Any, element: p.Type) -> Any:
        """The solver constant of a scalar value of a type (Int code, Real for numbers, or Bool)."""
        base = element.base
        if base == "boolean":
            return z3.BoolVal(bool(value))
        if base == "number":
            return real(value)
        return z3.IntVal(self.int_code(value, element))

    def int_code(self, value: Any, element: p.Type) -> int:
        base = element.base
        if base == "enum":
            return self.enums[element.enum or ""].index(value)
        if base == "string":
            return self.string_code[value]
        if base == "number":
            return int(Decimal(value).scaleb(self.scale).to_integral_value())
        if base == "date":
            return int(value.toordinal())
        if base == "boolean":
            return 1 if value else 0
        raise Unsupported(f"no code for {base}")

    def decode(self, code: int, element: p.Type) -> Any:
        """A JSON case value for a code."""
        base = element.base
        if base == "enum":
            return self.enums[element.enum or ""][code]
        if base == "string":
            return (self.strings + self.fresh_strings)[code]
        if base == "number":
            number = Decimal(code).scaleb(-self.scale).normalize()
            return str(number if number != 0 else Decimal(0))
        if base == "date":
            return date.fromordinal(code).isoformat()
        if base == "boolean":
            return bool(code)
        raise Unsupported(f"no value for {base}")

    # -- variables ------------------------------------------------------------------
    def _declare(self, info: p.FactInfo) -> SymFact:
        name = info.path
        present = z3.Bool(f"{name}?") if info.optional else TRUE
        kind = info.type
        if kind.is_set:
            value: Any = {c: z3.Bool(f"{name}#{c}") for c in self.universe(kind.element)}
        elif kind.base == "boolean":
            value = z3.Bool(name)
        else:
            value = z3.Int(name)
        fact = SymFact(name, kind, info.optional, present, value)
        if not kind.is_set and kind.base == "number":
            fact.real = z3.ToReal(value) / z3.RealVal(10**self.scale)  # a decimal at the search scale
        fact.absent = z3.Not(present)
        if isinstance(value, dict):
            fact.not_member = {c: z3.Not(b) for c, b in value.items()}
        elif kind.base == "boolean":
            fact.absent_value = z3.Not(value)
        if not kind.is_set and kind.base == "enum":
            enum = kind.enum or ""
            fact.domain = [i for i, v in enumerate(self.enums[enum]) if v in self.valid_enum[enum]]
        elif not kind.is_set and kind.base == "string":
            fact.domain = list(range(len(self.string_code)))
        return fact

    def constraints(self) -> Bool:
        """What every valid case satisfies: enum values in range, dates plausible, set members valid."""
        if self._constraints is None:
            self._constraints = self._build_constraints()
        return self._constraints

    def equals(self, term: Any, code: int) -> Bool:
        """`term == code`, built once per (term, code): z3's Python API is slow to build terms."""
        key = (term.get_id(), code)
        cached = self._equals.get(key)
        if cached is None:
            cached = eq_code(term, code)
            self._equals[key] = cached
        return cached

    def _build_constraints(self) -> Bool:
        parts: list[Bool] = []
        for fact in self.facts.values():
            kind = fact.type
            if kind.is_set:
                if kind.element.base == "enum":
                    values = self.enums[kind.element.enum or ""]
                    valid = self.valid_enum[kind.element.enum or ""]
                    parts += [z3.Not(b) for c, b in fact.value.items() if values[c] not in valid]
                continue
            if kind.base in ("enum", "string"):
                if not fact.domain:
                    parts.append(FALSE)
                elif fact.domain == list(range(fact.domain[0], fact.domain[-1] + 1)):
                    parts += [fact.value >= fact.domain[0], fact.value <= fact.domain[-1]]
                else:
                    parts.append(z3.Or([fact.value == c for c in fact.domain]))
            elif kind.base == "date":
                low, high = self.date_min.toordinal(), self.date_max.toordinal()
                parts += [fact.value >= low, fact.value <= high]
        return conj(parts)

    def neutral(self) -> list[Bool]:
        """Soft constraints of a minimal witness: a case that sets only what it must."""
        soft: list[Bool] = []
        for fact in self.facts.values():
            if fact.optional:
                soft.append(z3.Not(fact.present))
            kind = fact.type
            if kind.is_set:
                soft += [z3.Not(b) for b in fact.value.values()]
            elif kind.base == "boolean":
                soft.append(z3.Not(fact.value))
            elif kind.base in ("enum", "string") and fact.domain:
                first = self.string_code[self.fresh_strings[0]] if kind.base == "string" else fact.domain[0]
                soft.append(fact.value == first)
            elif kind.base == "number":
                soft.append(fact.value == 0)
            elif kind.base == "date":
                soft.append(fact.value == date(2000, 1, 1).toordinal())
        return soft

    def case(self, model: z3.ModelRef, paths: list[str] | None = None) -> dict[str, Any]:
        """A JSON case (nested records) from a model: what the evaluator replays."""
        case: dict[str, Any] = {}
        for path, fact in self.facts.items():
            if paths is not None and path not in paths:
                continue
            if fact.optional and not z3.is_true(model.eval(fact.present, model_completion=True)):
                continue
            value = self.fact_value(model, fact)
            target = case
            parts = path.split(".")
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = value
        return case

    def fact_value(self, model: z3.ModelRef, fact: SymFact) -> Any:
        kind = fact.type
        if kind.is_set:
            members = [c for c, b in fact.value.items() if z3.is_true(model.eval(b, model_completion=True))]
            return [self.decode(c, kind.element) for c in members]
        if kind.base == "boolean":
            return z3.is_true(model.eval(fact.value, model_completion=True))
        code = model.eval(fact.value, model_completion=True).as_long()
        return self.decode(code, kind)

    def pin(self, case: dict[str, Any]) -> list[tuple[str, list[Bool]]]:
        """Per fact, the constraints "this fact has the value it has in `case`" (for why-not, tests).

        A string no policy mentions behaves like any other such string: each distinct one is
        given its own fresh string (while fresh strings last).
        """
        flat = _flatten(case)
        fresh = iter(self.fresh_strings)
        unmentioned: dict[str, str] = {}

        def code(value: Any, element: p.Type) -> int:
            scalar = _json_scalar(value, element)
            if element.base == "string" and scalar not in self.string_code:
                if scalar not in unmentioned:
                    unmentioned[scalar] = next(fresh, self.fresh_strings[-1])
                scalar = unmentioned[scalar]
            return self.int_code(scalar, element)

        pinned: list[tuple[str, list[Bool]]] = []
        for path, fact in self.facts.items():
            value = flat.get(path)
            if value is None:
                pinned.append((path, [fact.absent] if fact.optional else []))
                continue
            parts = [fact.present] if fact.optional else []
            kind = fact.type
            if kind.is_set:
                wanted = {code(v, kind.element) for v in value}
                parts += [b if c in wanted else fact.not_member[c] for c, b in fact.value.items()]
            elif kind.base == "boolean":
                parts.append(fact.value if value else fact.absent_value)
            else:
                parts.append(self.equals(fact.value, code(value, kind)))
            pinned.append((path, parts))
        return pinned


def _json_scalar(value: Any, kind: p.Type) -> Any:
    if kind.base == "date" and isinstance(value, str):
        return date.fromisoformat(value)
    if kind.base == "number":
        return Decimal(str(value))
    return value


def _flatten(case: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in case.items():
        if key.startswith("$"):
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _decimals(number: Decimal) -> int:
    exponent = number.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _constants(programs: list[p.Program]) -> tuple[set[str], set[Decimal], set[date]]:
    """Every string, number and date constant the programs mention (nodes, groups, tables)."""
    strings: set[str] = set()
    numbers: set[Decimal] = set()
    dates: set[date] = set()

    def add(value: Any) -> None:
        if isinstance(value, frozenset):
            for item in value:
                add(item)
        elif isinstance(value, bool):
            return
        elif isinstance(value, str):
            strings.add(value)
        elif isinstance(value, Decimal):
            numbers.add(value)
        elif isinstance(value, date):
            dates.add(value)

    for program in programs:
        nodes: list[p.Node] = [n for r in program.rules for n in (r.condition, *r.unless)]
        nodes += [d.node for d in program.derived.values()]
        while nodes:
            node = nodes.pop()
            if isinstance(node, p.Const):
                add(node.value)
            nodes += p.sub_nodes(node)
        for fact in program.facts.values():
            if fact.default is not None:
                add(fact.default)
        for table in program.tables.values():
            for entry in table.entries:
                if table.key_type.base == "string" or table.key_type.base != "enum":
                    add(entry.key)
                if table.value_type.element.base != "enum":
                    add(entry.value)
    return strings, numbers, dates


# ---------------------------------------------------------------------------
# One version at one date


@dataclass(frozen=True)
class Outputs:
    """What a version decides, symbolically: per decision a value name -> condition, and per
    obligation / recommendation the condition under which it is produced."""

    decisions: dict[str, dict[str, Bool]]
    obligations: dict[str, Bool]
    recommendations: dict[str, Bool]


class Encoder:
    """The formulas of one program evaluated on one date, over a shared `FactSpace`."""

    def __init__(self, program: p.Program, when: date, space: FactSpace, tag: str = ""):
        self.program = program
        self.when = when
        self.space = space
        self.tag = tag
        self._derived: dict[str, Val] = {}
        self._tables: dict[str, dict[Any, Any]] = {}
        self._fires: dict[int, Bool] = {}
        self._effective: dict[int, Bool] = {}
        self.index_of = {r.id: i for i, r in enumerate(program.rules)}
        self.overriders: dict[int, list[int]] = {i: [] for i in range(len(program.rules))}
        for i, rule in enumerate(program.rules):
            for target in rule.overrides:
                self.overriders[self.index_of[target]].append(i)

    # -- tables ---------------------------------------------------------------------
    def snapshot(self, name: str) -> dict[Any, Any]:
        """The entries of a table in force on this encoder's date (as `runtime._table_snapshot`)."""
        if name not in self._tables:
            table = self.program.tables[name]
            self._tables[name] = {
                e.key: e.value
                for e in table.entries
                if (e.effective is None or e.effective <= self.when)
                and (e.ends is None or self.when <= e.ends)
            }
        return self._tables[name]

    # -- conditions -----------------------------------------------------------------
    def truth(self, node: p.Node) -> tuple[Bool, Bool]:
        """(is true, is false) of a boolean node, in Kleene logic."""
        match node:
            case p.AndNode(operands=operands):
                pairs = [self.truth(o) for o in operands]
                return conj([t for t, _ in pairs]), disj([f for _, f in pairs])
            case p.OrNode(operands=operands):
                pairs = [self.truth(o) for o in operands]
                return disj([t for t, _ in pairs]), conj([f for _, f in pairs])
            case p.NotNode(operand=operand):
                t, f = self.truth(operand)
                return f, t
            case _:
                val = self.value(node)
                return conj([val.known, val.value]), conj([val.known, neg(val.value)])

    def value(self, node: p.Node) -> Val:
        """The symbolic value of any IR node (one case per node kind)."""
        match node:
            case p.FactRead():
                return self._fact(node)
            case p.DerivedRead():
                return self._derived_read(node)
            case p.Const():
                return self._const(node)
            case p.TableLookup():
                return self._lookup(node)
            case p.TableHas():
                return self._has(node)
            case p.NotNode() | p.AndNode() | p.OrNode():
                t, f = self.truth(node)
                return Val(disj([t, f]), t)
            case p.CompareNode():
                return self._compare(node)
            case p.MemberNode():
                return self._member(node)
            case p.IncludesNode():
                return self._includes(node)
            case p.PresenceNode():
                fact = self.space.facts[node.path]
                info = self.program.facts.get(node.path)
                present = TRUE if info is not None and info.default is not None else fact.present
                return Val(TRUE, present if node.present else neg(present))
            case p.ArithNode():
                return self._arith(node)
            case p.CallNode():
                return self._call(node)
            case p.RoundNode():
                operand = self.value(node.operand)
                return Val(operand.known, round_real(operand.value, node.scale, node.rounding))
            case _:
                assert_never(node)

    def _fact(self, node: p.FactRead) -> Val:
        """A fact's value; a fact left out takes its declared default (this version's)."""
        fact = self.space.facts[node.path]
        value = fact.real if fact.real is not None else fact.value
        info = self.program.facts.get(node.path)
        default = info.default if info is not None else None
        if default is None or not fact.optional:
            return Val(fact.present if fact.optional else TRUE, value)
        if isinstance(value, dict):
            codes = {self.space.int_code(v, fact.type.element) for v in default}  # type: ignore[union-attr]
            merged = {c: z3.If(fact.present, b, TRUE if c in codes else FALSE) for c, b in value.items()}
            return Val(TRUE, merged)
        return Val(TRUE, z3.If(fact.present, value, self.space.code(default, fact.type)))

    def _derived_read(self, node: p.DerivedRead) -> Val:
        cached = self._derived.get(node.name)
        if cached is None:
            definition = self.program.derived[node.name].node
            inner = self.value(definition)
            if definition.type == p.BOOLEAN:
                # a shared, named subterm: the formula of a derived fact is built once per side
                cached = Val(inner.known, inner.value)
            else:
                cached = inner
            self._derived[node.name] = cached
        return cached

    def _const(self, node: p.Const) -> Val:
        kind = node.type
        if kind.is_set:
            codes = frozenset(self.space.int_code(v, kind.element) for v in node.value)  # type: ignore[union-attr]
            return Val(TRUE, ConstSet(codes, tuple(self.space.universe(kind.element))))
        return Val(TRUE, self.space.code(node.value, kind))

    def _key_tests(self, key: Val, key_type: p.Type, keys: list[Any]) -> dict[Any, Bool]:
        if z3.is_bool(key.value):
            return {k: key.value == z3.BoolVal(bool(k)) for k in keys}
        return {k: self.space.equals(key.value, self.space.int_code(k, key_type)) for k in keys}

    def _lookup(self, node: p.TableLookup) -> Val:
        table = self.program.tables[node.table]
        snap = self.snapshot(node.table)
        key = self.value(node.key)
        tests = self._key_tests(key, table.key_type, list(snap))
        kind = node.type
        if kind.is_set:
            universe = self.space.universe(kind.element)
            value = {
                c: disj([tests[k] for k, v in snap.items() if c in self._codes(v, kind.element)])
                for c in universe
            }
            return Val(key.known, value)
        found = disj(list(tests.values()))
        if kind.base == "boolean":
            result: Any = disj([conj([tests[k], z3.BoolVal(bool(v))]) for k, v in snap.items()])
        else:
            result = z3.RealVal(0) if kind.base == "number" else z3.IntVal(-1)  # unused: not known
            for k, v in reversed(list(snap.items())):
                result = z3.If(tests[k], self.space.code(v, kind), result)
        return Val(conj([key.known, found]), result)

    def _codes(self, value: Any, element: p.Type) -> set[int]:
        return {self.space.int_code(v, element) for v in value}

    def _has(self, node: p.TableHas) -> Val:
        table = self.program.tables[node.table]
        key = self.value(node.key)
        tests = self._key_tests(key, table.key_type, list(self.snapshot(node.table)))
        return Val(key.known, disj(list(tests.values())))

    def _compare(self, node: p.CompareNode) -> Val:
        left, right = self.value(node.left), self.value(node.right)
        a, b = left.value, right.value
        ops = {
            "=": lambda: _eq(a, b),
            "!=": lambda: neg(_eq(a, b)),
            "<": lambda: a < b,
            "<=": lambda: a <= b,
            ">": lambda: a > b,
            ">=": lambda: a >= b,
        }
        return Val(conj([left.known, right.known]), ops[node.op]())

    def _member(self, node: p.MemberNode) -> Val:
        item, collection = self.value(node.item), self.value(node.collection)
        known = conj([item.known, collection.known])
        if node.any_of:
            return Val(known, _overlap(item.value, collection.value))
        return Val(known, _contains(collection.value, item.value, node.item.type))

    def _includes(self, node: p.IncludesNode) -> Val:
        collection, item = self.value(node.collection), self.value(node.item)
        known = conj([item.known, collection.known])
        if node.mode == "one":
            return Val(known, _contains(collection.value, item.value, node.item.type))
        if node.mode == "any":
            return Val(known, _overlap(item.value, collection.value))
        return Val(known, _subset(item.value, collection.value))

    def _arith(self, node: p.ArithNode) -> Val:
        """Exact arithmetic on Reals (as `engine.numbers`); `/` by zero has no value (unknown)."""
        left, right = self.value(node.left), self.value(node.right)
        a, b = left.value, right.value
        known = conj([left.known, right.known])
        if node.op == "+":
            return Val(known, a + b)
        if node.op == "-":
            return Val(known, a - b)
        if node.op == "*":
            return Val(known, a * b)
        return Val(conj([known, b != 0]), a / b)

    def _call(self, node: p.CallNode) -> Val:
        """`min(...)` / `max(...)`: unknown if any operand is."""
        args = [self.value(a) for a in node.args]
        result = args[0].value
        for arg in args[1:]:
            smaller = arg.value < result
            result = z3.If(smaller if node.function == "min" else arg.value > result, arg.value, result)
        return Val(conj([a.known for a in args]), result)

    # -- rules and precedence ---------------------------------------------------------
    def fires(self, index: int) -> Bool:
        """The rule's condition is true and every unless clause is false (as `_status3` is True)."""
        cached = self._fires.get(index)
        if cached is None:
            rule = self.program.rules[index]
            parts = [self.truth(rule.condition)[0], *(self.truth(u)[1] for u in rule.unless)]
            cached = conj(parts)
            self._fires[index] = cached
        return cached

    def effective(self, index: int) -> Bool:
        """It fires and none of the rules that override it is effective (as `runtime._resolve`)."""
        cached = self._effective.get(index)
        if cached is None:
            parts = [self.fires(index), *(neg(self.effective(o)) for o in self.overriders[index])]
            cached = conj(parts)
            self._effective[index] = cached
        return cached

    def claims(self, decision: str) -> dict[str, list[int]]:
        """Per value, the rules that decide it."""
        found: dict[str, list[int]] = {}
        for i, rule in enumerate(self.program.rules):
            for outcome in rule.outcomes:
                if outcome.kind == "decide" and outcome.name == decision and outcome.value is not None:
                    found.setdefault(outcome.value, []).append(i)
        return found

    def decision(self, name: str) -> dict[str, Bool]:
        """Value name -> when the decision takes that value (`CONFLICT` included); exhaustive, disjoint."""
        info = self.program.decisions[name]
        has = {v: disj([self.effective(i) for i in rules]) for v, rules in self.claims(name).items()}
        values = list(has)
        pairs = [conj([has[a], has[b]]) for k, a in enumerate(values) for b in values[k + 1 :]]
        conflict = disj(pairs)
        out: dict[str, Bool] = {}
        for v in values:
            others = [neg(has[w]) for w in values if w != v]
            out[v] = conj([has[v], *others])
        none = conj([neg(h) for h in has.values()])
        out[info.default] = disj([out.get(info.default, FALSE), none])
        if not z3.is_false(conflict):
            out[CONFLICT] = conflict
        return out

    def produced(self, kind: str, name: str) -> Bool:
        """When an obligation (`require`) or recommendation (`recommend`) is produced."""
        rules = [
            i
            for i, r in enumerate(self.program.rules)
            if any(o.kind == kind and o.name == name for o in r.outcomes)
        ]
        return disj([self.effective(i) for i in rules])

    def outputs(self) -> Outputs:
        return Outputs(
            decisions={name: self.decision(name) for name in self.program.decisions},
            obligations={name: self.produced("require", name) for name in self.program.obligations},
            recommendations={name: self.produced("recommend", name) for name in self.program.recommendations},
        )


def _eq(a: Any, b: Any) -> Bool:
    if z3.is_bool(a) or z3.is_bool(b):
        return a == b
    if isinstance(a, dict) or isinstance(b, dict):
        raise Unsupported("equality of sets is not a condition of the language")
    return a == b


def _contains(collection: Any, item: Any, item_type: p.Type) -> Bool:
    """`item in collection`: one equality per member of a constant set, else per universe value."""
    if isinstance(collection, ConstSet):
        if z3.is_bool(item):
            return disj([item == z3.BoolVal(c == 1) for c in sorted(collection.members)])
        return disj([eq_code(item, c) for c in sorted(collection.members)])
    if z3.is_bool(item):
        return disj([conj([item == z3.BoolVal(c == 1), b]) for c, b in collection.items()])
    return disj([conj([eq_code(item, c), b]) for c, b in collection.items()])


def _overlap(items: Any, collection: Any) -> Bool:
    """Some value is in both sets."""
    if isinstance(collection, ConstSet) and not isinstance(items, ConstSet):
        return disj([b for c, b in items.items() if c in collection.members])
    if isinstance(items, ConstSet) and not isinstance(collection, ConstSet):
        return disj([b for c, b in collection.items() if c in items.members])
    left, right = members(items), members(collection)
    return disj([conj([b, right[c]]) for c, b in left.items() if c in right])


def _subset(items: Any, collection: Any) -> Bool:
    """Every value of `items` is in `collection`."""
    left, right = members(items), members(collection)
    return conj([z3.Implies(b, right.get(c, FALSE)) if not _is_false(b) else TRUE for c, b in left.items()])
