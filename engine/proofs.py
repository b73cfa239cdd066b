"""Proofs about policies with z3: where two versions differ, rules that never matter, why not.

Built on `engine.symbolic` (the formulas). Three questions are answered here:

- `semantic_diff(A, B)`: every region of the fact space where the versions' outputs differ,
  each as a condition in the policy language, with a minimal witness case that the compiled
  evaluator replays (`docs/analysis.md` says what is proved and how to read a region);
- `deep_check(policy)`: rules that never fire, never take effect, unresolved conflicts and
  decisions that fall to their default, each with a witness;
- `why_not(policy, case, want)`: the smallest sets of fact changes that produce an outcome.

Every query has a timeout and every enumeration a cap; when one is hit the answer says
"incomplete" (and the CLI exits 3), never "equivalent".
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from html import escape
from pathlib import Path
from typing import Any, Literal, assert_never

import z3
from pydantic import BaseModel, ConfigDict, Field

from engine import program as p
from engine import syntax as s
from engine.errors import CaseError
from engine.models import Decision, RuleRef
from engine.runtime import CompiledPolicy
from engine.symbolic import CONFLICT, TRUE, Bool, Encoder, FactSpace, Unsupported, conj, disj, neg

#: Bumped when a field of the semantic report's JSON changes meaning or disappears.
SEMANTIC_VERSION = 1

#: Per-query solver timeout (milliseconds) and the most regions (cubes) enumerated.
DEFAULT_TIMEOUT_MS = 10_000
DEFAULT_MAX_REGIONS = 64

#: Exit status of a proof that hit a bound (not 0: nothing is claimed about the rest).
EXIT_INCOMPLETE = 3

FORMATS = ("text", "md", "json", "html")


class ProofError(Exception):
    """The solver and the evaluator disagree on a witness: a bug in the encoding, never hidden."""


@dataclass
class Budget:
    """Bounds of one run; `hit` records which bound stopped an enumeration."""

    timeout_ms: int = DEFAULT_TIMEOUT_MS
    max_regions: int = DEFAULT_MAX_REGIONS
    hit: list[str] = field(default_factory=list)
    queries: int = 0

    def solver(self) -> z3.Solver:
        solver = z3.Solver()
        solver.set("timeout", self.timeout_ms)
        return solver

    def check(self, solver: z3.Solver | z3.Optimize, *assumptions: Bool) -> z3.CheckSatResult:
        self.queries += 1
        result = solver.check(*assumptions)
        if result == z3.unknown:
            reason = solver.reason_unknown()
            if "timeout" in reason or "canceled" in reason:
                self.hit.append(f"a solver query timed out after {self.timeout_ms} ms")
            else:  # nonlinear arithmetic (a fact times or divided by a fact) can be undecidable
                self.hit.append(f"a solver query gave no answer ({reason})")
        return result


# ---------------------------------------------------------------------------
# Meaning: when two versions' nodes, derived facts and rules are the same function of the facts


class Meaning:
    """Structural keys of IR nodes in one program on one date: equal keys, equal values.

    Keys include constant values (groups are inlined), table snapshots on the date, fact
    types and derived definitions, but not spans or layout, so reformatted, reordered or
    recommented versions get equal keys and are proved equivalent without the solver.
    """

    def __init__(self, program: p.Program, when: date):
        self.program = program
        self.when = when
        self._derived: dict[str, Any] = {}
        self._tables: dict[str, Any] = {}

    def table(self, name: str) -> Any:
        if name not in self._tables:
            info = self.program.tables.get(name)
            if info is None:
                self._tables[name] = ("missing-table", name)
            else:
                snap = frozenset(
                    (e.key, e.value)
                    for e in info.entries
                    if (e.effective is None or e.effective <= self.when)
                    and (e.ends is None or self.when <= e.ends)
                )
                self._tables[name] = (name, str(info.key_type), str(info.value_type), snap)
        return self._tables[name]

    def derived(self, name: str) -> Any:
        if name not in self._derived:
            info = self.program.derived.get(name)
            self._derived[name] = ("missing-derived", name) if info is None else self.key(info.node)
        return self._derived[name]

    def key(self, node: p.Node) -> Any:
        match node:
            case p.FactRead(path=path, type=kind, optional=optional):
                fact = self.program.facts.get(path)
                if fact is None:
                    return ("fact", path, str(kind), optional, None)
                return ("fact", path, str(kind), fact.optional, fact.default)
            case p.DerivedRead(name=name):
                return ("derived", self.derived(name))
            case p.Const(value=value, type=kind):
                return ("const", str(kind), value)
            case p.TableLookup(table=table, key=key, type=kind):
                return ("lookup", self.table(table), self.key(key), str(kind))
            case p.TableHas(table=table, key=key):
                return ("has", self.table(table), self.key(key))
            case p.NotNode(operand=operand):
                return ("not", self.key(operand))
            case p.AndNode(operands=operands):
                return ("and", tuple(self.key(o) for o in operands))
            case p.OrNode(operands=operands):
                return ("or", tuple(self.key(o) for o in operands))
            case p.CompareNode(op=op, left=left, right=right):
                return ("cmp", op, self.key(left), self.key(right))
            case p.MemberNode(item=item, collection=collection, any_of=any_of):
                return ("in", any_of, self.key(item), self.key(collection))
            case p.IncludesNode(collection=collection, item=item, mode=mode):
                return ("includes", mode, self.key(collection), self.key(item))
            case p.PresenceNode(path=path, present=present):
                fact = self.program.facts.get(path)
                return ("presence", path, present, fact.default if fact else None)
            case p.ArithNode(op=op, left=left, right=right):
                return ("arith", op, self.key(left), self.key(right))
            case p.CallNode(function=function, args=args):
                return ("call", function, tuple(self.key(a) for a in args))
            case p.RoundNode(operand=operand, scale=scale, rounding=rounding):
                return ("round", scale, rounding, self.key(operand))
            case _:
                assert_never(node)

    def rule(self, rule: p.RuleInfo) -> Any:
        outcomes = tuple(sorted((o.kind, o.name, o.value or "") for o in rule.outcomes))
        return (
            self.key(rule.condition),
            tuple(self.key(u) for u in rule.unless),
            outcomes,
            tuple(sorted(rule.overrides)),
        )


# ---------------------------------------------------------------------------
# Outputs of a version, as one vocabulary for both sides

OutputKind = Literal["decision", "obligation", "recommendation"]


@dataclass(frozen=True)
class Output:
    kind: OutputKind
    name: str


def _produces(rule: p.RuleInfo, out: Output) -> bool:
    kind = {"decision": "decide", "obligation": "require", "recommendation": "recommend"}[out.kind]
    return any(o.kind == kind and o.name == out.name for o in rule.outcomes)


def _cone(program: p.Program, out: Output) -> set[str]:
    """The rules an output depends on: those that produce it, and every rule overriding those."""
    overriders: dict[str, list[str]] = {}
    for rule in program.rules:
        for target in rule.overrides:
            overriders.setdefault(target, []).append(rule.id)
    todo = [r.id for r in program.rules if _produces(r, out)]
    seen: set[str] = set()
    while todo:
        rule_id = todo.pop()
        if rule_id not in seen:
            seen.add(rule_id)
            todo += overriders.get(rule_id, [])
    return seen


def all_outputs(programs: Sequence[p.Program]) -> list[Output]:
    found: list[Output] = []
    for program in programs:
        found += [Output("decision", n) for n in program.decisions]
        found += [Output("obligation", n) for n in program.obligations]
        found += [Output("recommendation", n) for n in program.recommendations]
    return list(dict.fromkeys(found))


def unchanged_output(a: p.Program, ma: Meaning, b: p.Program, mb: Meaning, out: Output) -> bool:
    """Syntactic slice: the output depends on the same rules, meaning the same, in both versions."""
    if out.kind == "decision":
        da, db = a.decisions.get(out.name), b.decisions.get(out.name)
        if da is None or db is None or (da.enum, da.default) != (db.enum, db.default):
            return False
    cone_a, cone_b = _cone(a, out), _cone(b, out)
    if cone_a != cone_b:
        return False
    rules_a = {r.id: r for r in a.rules}
    rules_b = {r.id: r for r in b.rules}
    return all(ma.rule(rules_a[i]) == mb.rule(rules_b[i]) for i in cone_a)


def output_values(enc: Encoder, out: Output) -> dict[str, Bool]:
    """Value label -> condition. Decisions: value names (or CONFLICT); outcomes: "yes"/"no"."""
    if out.kind == "decision":
        if out.name not in enc.program.decisions:
            return {"(none)": TRUE}
        return enc.decision(out.name)
    table = enc.program.obligations if out.kind == "obligation" else enc.program.recommendations
    if out.name not in table:
        return {"no": TRUE}
    when = enc.produced("require" if out.kind == "obligation" else "recommend", out.name)
    return {"yes": when, "no": neg(when)}


def replayed_values(decision: Decision, out: Output) -> str:
    """The same labels, read off a decision the evaluator made."""
    if out.kind == "decision":
        value = decision.decisions.get(out.name)
        if value is None:
            return "(none)"
        # typed decisions (issue 12): the value itself (True, Decimal("25.00")), as the encoder keys them
        return value.value if value.value is not None else CONFLICT  # type: ignore[return-value]
    names = decision.obligation_names if out.kind == "obligation" else decision.recommendation_names
    return "yes" if out.name in names else "no"


def replayed_rules(decision: Decision, out: Output) -> list[RuleRef]:
    if out.kind == "decision":
        value = decision.decisions.get(out.name)
        return list(value.rules) if value is not None else []
    items = decision.obligations if out.kind == "obligation" else decision.recommendations
    return [r for item in items if item.name == out.name for r in item.rules]


# ---------------------------------------------------------------------------
# Atoms: the predicates a region's condition is written with


@dataclass
class Atom:
    text: str
    expr: s.Expr
    true: Bool
    false: Bool
    level: int  # 0: fine-grained helper atoms; 1: predicates; 2: named derived facts
    changed: bool = False  # read by a rule that differs between the versions (a reason, not context)


@dataclass
class Lit:
    atom: Atom
    positive: bool

    @property
    def formula(self) -> Bool:
        return self.atom.true if self.positive else self.atom.false

    def expr(self) -> s.Expr:
        if self.positive:
            return self.atom.expr
        inner = self.atom.expr
        if isinstance(inner, s.Presence):
            return s.Presence(inner.ref, not inner.present)
        if isinstance(inner, s.Compare) and inner.op in ("=", "!="):
            return s.Compare("!=" if inner.op == "=" else "=", inner.left, inner.right)
        return s.Not(inner)


class _Mixed(Encoder):
    """B's program on B's date, but derived facts whose meaning differs in A read A's definition.

    This is how a condition of A is written in B's terms: the text inlines A's definition,
    and this encoder gives that text its meaning when evaluated against B.
    """

    def __init__(self, b: Encoder, a_program: p.Program, unstable: set[str]):
        super().__init__(b.program, b.when, b.space, "mixed")
        self.a_program = a_program
        self.unstable = unstable
        self._tables = b._tables

    def _derived_read(self, node: p.DerivedRead) -> Any:
        if node.name in self.unstable or node.name not in self.program.derived:
            cached = self._derived.get(node.name)
            if cached is None:
                cached = self.value(self.a_program.derived[node.name].node)
                self._derived[node.name] = cached
            return cached
        return super()._derived_read(node)

    def snapshot(self, name: str) -> dict[Any, Any]:
        if name not in self.program.tables:
            return Encoder(self.a_program, self.when, self.space).snapshot(name)
        return super().snapshot(name)


class AtomBook:
    """Collects the atoms of the rules in the changed outputs' cones, deduplicated by text."""

    def __init__(self, a: Encoder, b: Encoder, ma: Meaning, mb: Meaning):
        self.a, self.b, self.ma, self.mb = a, b, ma, mb
        self.unstable = {name for name in a.program.derived if ma.derived(name) != mb.derived(name)}
        self.mixed = _Mixed(b, a.program, self.unstable)
        self.atoms: dict[str, Atom] = {}
        self._changed = False

    def add(self, expr: s.Expr, true: Bool, false: Bool, level: int) -> None:
        text = s.unparse(expr)
        if text not in self.atoms and not (z3.is_true(true) or z3.is_false(true)):
            self.atoms[text] = Atom(text, expr, true, false, level)
        if text in self.atoms and self._changed:
            self.atoms[text].changed = True

    def collect_rule(self, rule: p.RuleInfo, side: str, changed: bool = False) -> None:
        """The atoms of a rule; `changed` marks them as the reasons of a difference."""
        self._changed = changed
        for node in (rule.condition, *rule.unless):
            self.collect(node, side)
        self._changed = False

    def collect(self, node: p.Node, side: str) -> None:
        match node:
            case p.AndNode(operands=operands) | p.OrNode(operands=operands):
                for o in operands:
                    self.collect(o, side)
            case p.NotNode(operand=operand):
                self.collect(operand, side)
            case p.DerivedRead(name=name) if node.type == p.BOOLEAN:
                if side == "b" or name not in self.unstable:
                    t, f = self.b.truth(node) if side == "b" else self.mixed.truth(node)
                    self.add(node.source, t, f, 2)
                else:
                    self.collect(self.a.program.derived[name].node, "a")
            case p.Const():
                return
            case _:
                self.predicate(node, side)

    def predicate(self, node: p.Node, side: str) -> None:
        enc = self.b if side == "b" else self.mixed
        expr = node.source if side == "b" else self.inline(node)
        t, f = enc.truth(node)
        self.add(expr, t, f, 1)
        for sub in _walk(
            node, self.a.program if side == "a" else self.b.program, self.unstable if side == "a" else set()
        ):
            self.helpers(sub, enc, side)

    def helpers(self, node: p.Node, enc: Encoder, side: str) -> None:
        """Atoms that pin what an atom hangs on: presence of optional facts, keys whose table entry differs."""
        if isinstance(node, p.FactRead) and node.optional:
            fact = self.b.space.facts[node.path]
            ref = s.Ref(tuple(node.path.split(".")))
            self.add(s.Presence(ref, True), fact.present, neg(fact.present), 0)
        if isinstance(node, p.TableLookup | p.TableHas):
            key_expr = node.key.source if side == "b" else self.inline(node.key)
            key = enc.value(node.key)
            if isinstance(node, p.TableLookup) and not node.type.is_set:
                has = p.TableHas(node.table, node.key, p.BOOLEAN, node.source)
                t, f = enc.truth(has)
                self.add(s.Member(key_expr, s.Ref((node.table,))), t, f, 0)
            self.changed_keys(node.table, key_expr, key, isinstance(node, p.TableHas))

    def changed_keys(self, table: str, key_expr: s.Expr, key: Any, membership: bool) -> None:
        """Keys whose entry differs on the two dates, grouped by how they differ (what the read sees)."""
        if table not in self.a.program.tables or table not in self.b.program.tables:
            return
        before, after = self.a.snapshot(table), self.b.snapshot(table)
        if before == after:
            return
        kinds: dict[tuple[Any, Any], list[Any]] = {}
        missing = object()
        for k in sorted(set(before) | set(after), key=repr):
            va, vb = before.get(k, missing), after.get(k, missing)
            seen = ((va is not missing), (vb is not missing)) if membership else (va, vb)
            if seen[0] != seen[1]:
                kinds.setdefault(seen, []).append(k)
        key_type = self.a.program.tables[table].key_type
        for keys in kinds.values():
            items = tuple(_value_expr(k, key_type) for k in keys)
            expr = s.Member(key_expr, s.SetLiteral(items))
            inside = disj([key.value == self.b.space.code(k, key_type) for k in keys])
            self.add(expr, conj([key.known, inside]), conj([key.known, neg(inside)]), 0)

    def inline(self, node: p.Node) -> s.Expr:
        """A's node as text B can read: derived facts whose meaning differs are written out."""
        replace: dict[int, s.Expr] = {}
        for sub in _walk(node, self.a.program, self.unstable):
            if isinstance(sub, p.DerivedRead) and sub.name in self.unstable:
                replace[id(sub.source)] = self.inline(self.a.program.derived[sub.name].node)
        return _substitute(node.source, replace)


def _value_expr(value: Any, kind: p.Type) -> s.Ref | s.Literal:
    if kind.base == "enum":
        return s.Ref((str(value),))
    return s.Literal(value)


def _walk(node: p.Node, program: p.Program, into: set[str]) -> list[p.Node]:
    """Every node under `node`, following derived facts named in `into` into their definitions."""
    out: list[p.Node] = []
    todo = [node]
    while todo:
        current = todo.pop()
        out.append(current)
        todo += p.sub_nodes(current)
        if isinstance(current, p.DerivedRead) and current.name in into and current.name in program.derived:
            todo.append(program.derived[current.name].node)
    return out


def _substitute(expr: s.Expr, replace: dict[int, s.Expr]) -> s.Expr:
    """The expression with some sub-expressions (by identity) replaced."""
    if id(expr) in replace:
        return replace[id(expr)]
    if not replace:
        return expr
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(expr):
        if f.name == "span":
            continue
        value = getattr(expr, f.name)
        new: Any
        if isinstance(value, tuple):
            new = tuple(_substitute(v, replace) if _is_expr(v) else v for v in value)
        elif _is_expr(value):
            new = _substitute(value, replace)
        else:
            continue
        if new is not value:
            changes[f.name] = new
    return dataclasses.replace(expr, **changes) if changes else expr


def _is_expr(value: Any) -> bool:
    return isinstance(
        value,
        s.Ref
        | s.Literal
        | s.SetLiteral
        | s.Lookup
        | s.Not
        | s.And
        | s.Or
        | s.Compare
        | s.Member
        | s.Includes
        | s.Presence
        | s.Arith
        | s.Call,
    )


# ---------------------------------------------------------------------------
# Conditions from cubes: factor common literals so a region reads like a rule


Cube = tuple[tuple[str, bool], ...]  # (atom text, positive), sorted


def factor(cubes: list[Cube], book: dict[str, Atom]) -> s.Expr:
    """A DSL expression equal to the disjunction of the cubes, with shared literals pulled out."""
    if not cubes:
        return s.Literal(False)
    if any(not c for c in cubes):
        return s.Literal(True)
    sets = [set(c) for c in cubes]
    common = set.intersection(*sets)
    rest = [tuple(sorted(c - common)) for c in sets]
    parts: list[s.Expr] = [_literal_expr(lit, book) for lit in sorted(common)]
    if all(rest):
        parts.append(_factor_or(rest, book))
    elif any(rest):
        # one cube is exactly the common part: the others are subsumed by it
        pass
    return parts[0] if len(parts) == 1 else s.And(tuple(_flat_and(parts)))


def _factor_or(cubes: list[Cube], book: dict[str, Atom]) -> s.Expr:
    """Split the cubes on their most frequent literal, recursively; merge equal remainders."""
    if len(cubes) == 1:
        return factor(cubes, book)
    counts: dict[tuple[str, bool], int] = {}
    for cube in cubes:
        for lit in cube:
            counts[lit] = counts.get(lit, 0) + 1
    best = max(sorted(counts), key=lambda k: counts[k])
    if counts[best] == 1:
        branches = [factor([c], book) for c in cubes]
    else:
        with_best = [tuple(x for x in c if x != best) for c in cubes if best in c]
        without = [c for c in cubes if best not in c]
        branches = [factor([tuple(sorted((*c, best))) for c in with_best], book)]
        if without:
            branches.append(_factor_or(without, book))
    return _merge_branches(branches)


def _merge_branches(branches: list[s.Expr]) -> s.Expr:
    """`a and X or b and X` -> `(a or b) and X` when branches end in the same factor."""
    flat: list[s.Expr] = []
    for b in branches:
        flat += list(b.operands) if isinstance(b, s.Or) else [b]
    if len(flat) >= 2 and all(isinstance(b, s.And) for b in flat):
        tails = [b.operands[-1] for b in flat if isinstance(b, s.And)]
        if all(t == tails[0] for t in tails):
            heads = [
                s.And(b.operands[:-1]) if len(b.operands) > 2 else b.operands[0]
                for b in flat
                if isinstance(b, s.And)
            ]
            return s.And((s.Or(tuple(heads)), tails[0]))
    return flat[0] if len(flat) == 1 else s.Or(tuple(flat))


def _flat_and(parts: list[s.Expr]) -> list[s.Expr]:
    out: list[s.Expr] = []
    for part in parts:
        out += list(part.operands) if isinstance(part, s.And) else [part]
    return out


def _literal_expr(lit: tuple[str, bool], book: dict[str, Atom]) -> s.Expr:
    return Lit(book[lit[0]], lit[1]).expr()


def literal_count(expr: s.Expr) -> int:
    """Atoms in a condition (each occurrence of a test counts once)."""
    if isinstance(expr, s.And | s.Or):
        return sum(literal_count(o) for o in expr.operands)
    if isinstance(expr, s.Not):
        return literal_count(expr.operand)
    return 1


def cube_formula(cube: Cube, book: dict[str, Atom]) -> Bool:
    return conj([book[text].true if positive else book[text].false for text, positive in cube])


# ---------------------------------------------------------------------------
# The report model (the JSON contract: docs/analysis.md)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class SideInfo(_Model):
    policy: str
    version: str
    label: str
    content_hash: str
    evaluated_at: date


class Change(_Model):
    """One output that differs inside a region: a decision's value, or an outcome gained/lost."""

    kind: OutputKind
    output: str
    from_: str | None = Field(alias="from")
    to: str | None
    label: str

    model_config = ConfigDict(frozen=True, populate_by_name=True)


class Region(_Model):
    """A set of cases, described by a condition, on which the two versions differ the same way."""

    output: str
    kind: OutputKind
    from_: str | None = Field(alias="from")
    to: str | None
    transition: str
    changes: list[Change]
    condition: str
    literals: int
    parts: list[str]
    witness: dict[str, Any]
    shown: list[str]
    rules_a: list[RuleRef]
    rules_b: list[RuleRef]
    citations: list[str]

    model_config = ConfigDict(frozen=True, populate_by_name=True)


class SemanticReport(_Model):
    semantic_version: int = SEMANTIC_VERSION
    a: SideInfo
    b: SideInfo
    status: Literal["equivalent", "different", "incomplete"]
    changed_outputs: list[str]
    unchanged_outputs: list[str]
    regions: list[Region]
    incomplete: list[str] = Field(default_factory=list)
    queries: int = 0
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return EXIT_INCOMPLETE if self.status == "incomplete" else 0

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


@dataclass(frozen=True)
class Version:
    """One side of a proof: a compiled policy, the date its tables are read on, and a label."""

    policy: CompiledPolicy
    at: date
    label: str


def _label(out: Output, before: str, after: str) -> str:
    if out.kind == "decision":
        return f"{out.name}: {before} -> {after}"
    return f"{'+' if after == 'yes' else '-'} {out.name}"


def _change(out: Output, before: str, after: str) -> Change:
    if out.kind == "decision":
        return Change(
            kind="decision", output=out.name, **{"from": before}, to=after, label=_label(out, before, after)
        )
    return Change(
        kind=out.kind,
        output=out.name,
        **{"from": out.name if before == "yes" else None},
        to=out.name if after == "yes" else None,
        label=_label(out, before, after),
    )


# ---------------------------------------------------------------------------
# The semantic diff


def semantic_diff(a: Version, b: Version, budget: Budget | None = None) -> SemanticReport:
    """Every region where A and B decide differently, each with a replayed minimal witness."""
    budget = budget or Budget()
    started = time.perf_counter()
    pa, pb = a.policy.program, b.policy.program
    ma, mb = Meaning(pa, a.at), Meaning(pb, b.at)
    outputs = all_outputs([pa, pb])
    changed = [o for o in outputs if not unchanged_output(pa, ma, pb, mb, o)]
    info = (_side(a), _side(b))
    unchanged = [_out_name(o) for o in outputs if o not in changed]
    if not changed:
        return SemanticReport(
            a=info[0],
            b=info[1],
            status="equivalent",
            changed_outputs=[],
            unchanged_outputs=unchanged,
            regions=[],
            seconds=time.perf_counter() - started,
        )
    space = FactSpace([pa, pb])
    ea, eb = Encoder(pa, a.at, space, "a"), Encoder(pb, b.at, space, "b")
    values = {o: (output_values(ea, o), output_values(eb, o)) for o in changed}
    differs = disj(
        [
            conj([ca, neg(disj([cb for vb, cb in vals_b.items() if vb == va]))])
            for o, (vals_a, vals_b) in values.items()
            for va, ca in vals_a.items()
        ]
    )
    book = AtomBook(ea, eb, ma, mb)
    cone_ids = set().union(*(_cone(pa, o) for o in changed)) | set().union(*(_cone(pb, o) for o in changed))
    by_id_a, by_id_b = {r.id: r for r in pa.rules}, {r.id: r for r in pb.rules}
    differing = _affected(
        {
            i
            for i in cone_ids
            if i not in by_id_a or i not in by_id_b or ma.rule(by_id_a[i]) != mb.rule(by_id_b[i])
        },
        [pa, pb],
    )
    for rule in pa.rules:
        if rule.id in cone_ids:
            book.collect_rule(rule, "a", rule.id in differing)
    for rule in pb.rules:
        if rule.id in cone_ids:
            book.collect_rule(rule, "b", rule.id in differing)
    regions = _enumerate(space, values, differs, book, budget)
    built = [_region(key, cubes, space, values, book, a, b, budget) for key, cubes in regions.items()]
    built.sort(key=lambda r: (r.kind != "decision", r.transition))
    status: Literal["different", "incomplete"] = "incomplete" if budget.hit else "different"
    if not built and not budget.hit:
        status_eq: Literal["equivalent"] = "equivalent"
        return SemanticReport(
            a=info[0],
            b=info[1],
            status=status_eq,
            changed_outputs=[],
            unchanged_outputs=[_out_name(o) for o in outputs],
            regions=[],
            queries=budget.queries,
            seconds=time.perf_counter() - started,
        )
    return SemanticReport(
        a=info[0],
        b=info[1],
        status=status,
        changed_outputs=[_out_name(o) for o in changed],
        unchanged_outputs=unchanged,
        regions=built,
        incomplete=list(dict.fromkeys(budget.hit)),
        queries=budget.queries,
        seconds=time.perf_counter() - started,
    )


def prove_diff(
    a: Any, b: Any, *, at_a: date | None = None, at_b: date | None = None, budget: Budget | None = None
) -> SemanticReport:
    """`semantic_diff` for two loaded `engine.Policy` versions, each read on its own date by default."""
    sides = []
    for policy, at in ((a, at_a), (b, at_b)):
        when = at or policy.at or policy.info.effective or date.today()
        sides.append(Version(policy.compiled, when, policy.version))
    return semantic_diff(sides[0], sides[1], budget)


def _affected(changed: set[str], programs: list[p.Program]) -> set[str]:
    """The changed rules and every rule linked to one by `overrides` (either way, transitively):
    a rule whose exception changed decides differently though its own text did not."""
    links: dict[str, set[str]] = {}
    for program in programs:
        for rule in program.rules:
            for target in rule.overrides:
                links.setdefault(rule.id, set()).add(target)
                links.setdefault(target, set()).add(rule.id)
    found, todo = set(changed), list(changed)
    while todo:
        for other in links.get(todo.pop(), ()):
            if other not in found:
                found.add(other)
                todo.append(other)
    return found


def _side(v: Version) -> SideInfo:
    return SideInfo(
        policy=v.policy.info.id,
        version=v.policy.info.version,
        label=v.label,
        content_hash=v.policy.content_hash,
        evaluated_at=v.at,
    )


def _out_name(o: Output) -> str:
    return o.name if o.kind == "decision" else f"{o.kind} {o.name}"


Joint = tuple[tuple[Output, str, str], ...]


def _joint(
    model: z3.ModelRef, values: dict[Output, tuple[dict[str, Bool], dict[str, Bool]]]
) -> tuple[Joint, Bool]:
    """Which outputs differ in a model, how, and the formula of exactly that joint change."""
    changes: list[tuple[Output, str, str]] = []
    for o, (vals_a, vals_b) in values.items():
        va = next(v for v, c in vals_a.items() if z3.is_true(model.eval(c, model_completion=True)))
        vb = next(v for v, c in vals_b.items() if z3.is_true(model.eval(c, model_completion=True)))
        if va != vb:
            changes.append((o, va, vb))
    return tuple(changes), joint_formula(tuple(changes), values)


def joint_formula(joint: Joint, values: dict[Output, tuple[dict[str, Bool], dict[str, Bool]]]) -> Bool:
    """The cases with exactly this joint change: these outputs go from/to these values, and every
    other output is the same under both versions (whatever it is)."""
    moved = {o: (va, vb) for o, va, vb in joint}
    parts: list[Bool] = []
    for o, (vals_a, vals_b) in values.items():
        if o in moved:
            va, vb = moved[o]
            parts += [vals_a[va], vals_b[vb]]
        else:
            parts.append(disj([conj([ca, vals_b[v]]) for v, ca in vals_a.items() if v in vals_b]))
    return conj(parts)


def _enumerate(
    space: FactSpace,
    values: dict[Output, tuple[dict[str, Bool], dict[str, Bool]]],
    differs: Bool,
    book: AtomBook,
    budget: Budget,
) -> dict[Joint, list[Cube]]:
    """Cover the difference with prime cubes, one joint change at a time."""
    atoms = book.atoms
    vocabulary = space.constraints()
    finder = budget.solver()
    finder.add(vocabulary, differs)
    regions: dict[Joint, list[Cube]] = {}
    count = 0
    while True:
        if count >= budget.max_regions:
            if budget.check(finder) == z3.sat:
                budget.hit.append(f"the region cap ({budget.max_regions}) was reached")
            break
        result = budget.check(finder)
        if result != z3.sat:
            break
        model = finder.model()
        joint, exact = _joint(model, values)
        cube = _generalise(model, exact, atoms, space, vocabulary, budget)
        if cube is None:
            budget.hit.append("a region could not be described with the policies' own tests")
            break
        regions.setdefault(joint, []).append(cube)
        finder.add(neg(cube_formula(cube, atoms)))
        count += 1
    return regions


def _generalise(
    model: z3.ModelRef,
    exact: Bool,
    atoms: dict[str, Atom],
    space: FactSpace,
    vocabulary: Bool,
    budget: Budget,
    shortest: bool = True,
) -> Cube | None:
    """The model's literals, shrunk to a prime cube that still implies the same joint change
    (with `shortest`, the fewest literals; otherwise an irredundant cube, cheaper to find)."""
    literals: list[tuple[str, bool]] = []
    for text, atom in atoms.items():
        if z3.is_true(model.eval(atom.true, model_completion=True)):
            literals.append((text, True))
        elif z3.is_true(model.eval(atom.false, model_completion=True)):
            literals.append((text, False))
    checker = budget.solver()
    checker.add(vocabulary, neg(exact))
    marks = {z3.Bool(f"lit{i}"): lit for i, lit in enumerate(literals)}
    for mark, (text, positive) in marks.items():
        checker.add(z3.Implies(mark, atoms[text].true if positive else atoms[text].false))
    # The tests of the rules that changed are the reasons; try to describe the region with
    # them alone before bringing in the context of the rules that did not change.
    reasons = [m for m, (text, _) in marks.items() if atoms[text].changed]
    if reasons and budget.check(checker, *reasons) == z3.unsat:
        literals = [marks[m] for m in reasons]
    elif budget.check(checker, *marks) != z3.unsat:
        return None
    core = [marks[m] for m in checker.unsat_core() if m in marks]
    keep = sorted(core, key=lambda lit: (not atoms[lit[0]].changed, atoms[lit[0]].level, lit[1], lit[0]))
    by_literal = {v: m for m, v in marks.items()}
    for lit in list(keep):
        trial = [x for x in keep if x != lit]
        if budget.check(checker, *[by_literal[x] for x in trial]) == z3.unsat:
            keep = trial
    if not shortest:
        return tuple(sorted(keep))
    candidates = literals if len(literals) <= MAX_HITTING_CANDIDATES else core
    return tuple(sorted(_smallest(candidates, keep, by_literal, checker, atoms, budget)))


#: Above this many literals in a model, the smallest cube is sought among the unsat core only.
MAX_HITTING_CANDIDATES = 150
MAX_HITTING_ROUNDS = 40


def _smallest(
    candidates: list[tuple[str, bool]],
    upper: list[tuple[str, bool]],
    marks: dict[tuple[str, bool], Bool],
    checker: z3.Solver,
    atoms: dict[str, Atom],
    budget: Budget,
) -> list[tuple[str, bool]]:
    """The fewest literals that still imply the joint change (implicit hitting sets).

    The greedy shrink gives an irredundant cube, but a fact tested by many sets (a destination
    in ten lists) can be pinned by many combinations; the reader wants the shortest. Each
    round picks a smallest selection that excludes every counterexample found so far, and
    asks the solver for a case the selection admits outside the region; none: it is minimum.
    """
    if len(upper) <= 1:
        return upper
    chooser = z3.Optimize()
    chooser.set("timeout", budget.timeout_ms)
    select = {lit: z3.Bool(f"select{i}") for i, lit in enumerate(candidates)}
    for flag in select.values():
        chooser.add_soft(z3.Not(flag))
    chooser.add(z3.PbLe([(flag, 1) for flag in select.values()], len(upper) - 1))
    for _ in range(MAX_HITTING_ROUNDS):
        if budget.check(chooser) != z3.sat:
            return upper
        model = chooser.model()
        chosen = [lit for lit, flag in select.items() if z3.is_true(model.eval(flag, model_completion=True))]
        verdict = budget.check(checker, *[marks[lit] for lit in chosen])
        if verdict == z3.unsat:
            return chosen
        if verdict != z3.sat:
            return upper
        outside = checker.model()
        excluded = [
            select[lit]
            for lit in candidates
            if not z3.is_true(
                outside.eval(atoms[lit[0]].true if lit[1] else atoms[lit[0]].false, model_completion=True)
            )
        ]
        if not excluded:
            return upper
        chooser.add(z3.Or(excluded))
    return upper


def _region(
    joint: Joint,
    cubes: list[Cube],
    space: FactSpace,
    values: dict[Output, tuple[dict[str, Bool], dict[str, Bool]]],
    book: AtomBook,
    a: Version,
    b: Version,
    budget: Budget,
) -> Region:
    atoms = book.atoms
    cubes = sorted(cubes)  # the order the solver found them in is not part of the answer
    exact = joint_formula(joint, values)
    inside = disj([cube_formula(c, atoms) for c in cubes])
    witness = _minimal_witness(space, conj([inside, exact]), budget)
    rules_a: list[RuleRef] = []
    rules_b: list[RuleRef] = []
    cases = [witness] + [_cube_case(space, conj([cube_formula(c, atoms), exact]), budget) for c in cubes]
    for case in cases:
        if case is None:
            continue
        da, db = _replay(a, case), _replay(b, case)
        got = tuple((o, replayed_values(da, o), replayed_values(db, o)) for o in values)
        seen = tuple(x for x in got if x[1] != x[2])
        if seen != joint:
            raise ProofError(
                f"the evaluator decides witness {json.dumps(case)} as {_describe(seen)}, "
                f"the solver said {_describe(joint)}"
            )
        for o, _, _ in joint:
            rules_a += replayed_rules(da, o)
            rules_b += replayed_rules(db, o)
    condition = factor(cubes, atoms)
    first = joint[0]
    change0 = _change(*first)
    changes = [_change(*c) for c in joint]
    citations = list(dict.fromkeys(c for r in [*rules_a, *rules_b] for c in r.citations))
    return Region(
        output=first[0].name,
        kind=first[0].kind,
        **{"from": change0.from_},
        to=change0.to,
        transition=", ".join(c.label for c in changes),
        changes=changes,
        condition=s.unparse(condition),
        literals=literal_count(condition),
        parts=[s.unparse(factor([c], atoms)) for c in cubes],
        witness=witness or {},
        shown=shown_facts(witness or {}, read_paths([inside], space)),
        rules_a=_in_order(_unique(rules_a), a.policy.program),
        rules_b=_in_order(_unique(rules_b), b.policy.program),
        citations=citations,
    )


def _describe(joint: Joint) -> str:
    return ", ".join(_label(o, x, y) for o, x, y in joint) or "no change"


def _in_order(refs: list[RuleRef], program: p.Program) -> list[RuleRef]:
    """Rules in the order the version lists them (stable whatever order the witnesses came in)."""
    position = {r.id: i for i, r in enumerate(program.rules)}
    return sorted(refs, key=lambda r: position.get(r.rule, len(position)))


def _unique(refs: list[RuleRef]) -> list[RuleRef]:
    return list({r.rule: r for r in refs}.values())


def _replay(v: Version, case: dict[str, Any]) -> Decision:
    try:
        return v.policy.evaluate(case, at=v.at)
    except CaseError as exc:
        raise ProofError(f"witness {json.dumps(case)} is not a valid case: {exc.problems}") from None


def _minimal_witness(space: FactSpace, region: Bool, budget: Budget) -> dict[str, Any] | None:
    """A case in the region that sets as few facts as it can (MaxSAT over "leave it at rest")."""
    opt = z3.Optimize()
    opt.set("timeout", budget.timeout_ms)
    opt.add(space.constraints(), region)
    for soft in space.neutral():
        opt.add_soft(soft)
    if budget.check(opt) == z3.sat:
        return space.case(opt.model())
    return _cube_case(space, region, budget)


def _cube_case(space: FactSpace, region: Bool, budget: Budget) -> dict[str, Any] | None:
    solver = budget.solver()
    solver.add(space.constraints(), region)
    if budget.check(solver) == z3.sat:
        return space.case(solver.model())
    return None


# ---------------------------------------------------------------------------
# Rendering the semantic report


def shown_facts(witness: dict[str, Any], paths: set[str] | None = None) -> list[str]:
    """The facts of a witness a condition reads (`paths`; all when None), as `name = value`.

    Every read fact is shown, false and empty ones too: they are part of why the witness is in
    the region. Facts the condition does not read are left out (they are at rest in the JSON).
    """
    flat = _flatten_case(witness)
    names = sorted(paths) if paths is not None else list(flat)
    return [
        f"{name} = {json.dumps(flat[name], ensure_ascii=False)}" if name in flat else f"{name} is missing"
        for name in names
    ]


def _flatten_case(case: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in case.items():
        if key.startswith("$"):
            continue
        if isinstance(value, dict):
            out.update(_flatten_case(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def read_paths(formulas: list[Bool], space: FactSpace) -> set[str]:
    """The facts a formula depends on: its free variables, named after fact paths."""
    found: set[str] = set()
    seen: set[int] = set()
    todo = list(formulas)
    while todo:
        term = todo.pop()
        ident = term.get_id()
        if ident in seen:
            continue
        seen.add(ident)
        if z3.is_const(term) and term.decl().kind() == z3.Z3_OP_UNINTERPRETED:
            name = term.decl().name().split("#")[0].rstrip("?")
            if name in space.facts:
                found.add(name)
        else:
            todo += term.children()
    return found


_NOTHING = object()


def _refs(refs: list[RuleRef]) -> str:
    if not refs:
        return "no rule (default)"
    return ", ".join(f"{r.rule} [{'; '.join(r.citations)}]" if r.citations else r.rule for r in refs)


def render_text(report: SemanticReport) -> str:
    a, b = report.a, report.b
    lines = [
        f"semantic diff: {a.policy} {a.label} -> {b.label}",
        f"  A  {a.policy} @ {a.version}, hash {a.content_hash[:12]}, tables as of {a.evaluated_at}",
        f"  B  {b.policy} @ {b.version}, hash {b.content_hash[:12]}, tables as of {b.evaluated_at}",
        "",
    ]
    if report.status == "equivalent":
        lines.append(
            "equivalent (proved): every valid case gets the same decisions, obligations and recommendations"
        )
        return "\n".join(lines) + "\n"
    if report.unchanged_outputs:
        lines.append("unchanged (proved by the rules alone): " + ", ".join(report.unchanged_outputs))
    lines.append(f"{len(report.regions)} region(s) where the outputs differ:")
    for n, region in enumerate(report.regions, 1):
        lines += [
            "",
            f"[{n}] {region.transition}",
            f"    when {region.condition}",
            f"    A: {_refs(region.rules_a)}",
            f"    B: {_refs(region.rules_b)}",
            "    witness: " + (", ".join(region.shown) or "every fact at rest"),
        ]
        if len(region.parts) > 1:
            lines.append(f"    ({len(region.parts)} parts: " + "; ".join(region.parts) + ")")
    lines.append("")
    if report.status == "incomplete":
        lines.append(f"incomplete: {len(report.regions)} shown, more exist ({'; '.join(report.incomplete)})")
    else:
        lines.append("complete (proved): every other valid case gets the same outputs under both versions")
    lines.append("conditions read facts as B does on its date; `policy eval` on a witness shows the traces")
    return "\n".join(lines) + "\n"


def render_markdown(report: SemanticReport) -> str:
    a, b = report.a, report.b
    lines = [f"## Semantic diff: {a.policy} {_md(a.label)} → {_md(b.label)}", ""]
    if report.status == "equivalent":
        lines.append("**Equivalent (proved)**: every valid case gets the same outputs.")
        return "\n".join(lines) + "\n"
    lines += ["| # | transition | condition | A | B | witness |", "| --- | --- | --- | --- | --- | --- |"]
    for n, r in enumerate(report.regions, 1):
        lines.append(
            f"| {n} | {_md(r.transition)} | `{_md(r.condition)}` | {_md(_refs(r.rules_a))} | {_md(_refs(r.rules_b))} | "
            f"{_md(', '.join(r.shown))} |"
        )
    lines.append("")
    if report.status == "incomplete":
        lines.append(
            f"**Incomplete**: {len(report.regions)} shown, more exist ({_md('; '.join(report.incomplete))})."
        )
    else:
        lines.append("Complete (proved): every other valid case gets the same outputs.")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").replace("`", "'")


def render_html(report: SemanticReport) -> str:
    a, b = report.a, report.b
    rows = "".join(
        f"<tr><td>{n}</td><td>{escape(r.transition)}</td><td><code>{escape(r.condition)}</code></td>"
        f"<td>{escape(_refs(r.rules_a))}</td><td>{escape(_refs(r.rules_b))}</td>"
        f"<td>{escape(', '.join(r.shown))}</td></tr>"
        for n, r in enumerate(report.regions, 1)
    )
    verdict = {
        "equivalent": "Equivalent (proved): every valid case gets the same outputs.",
        "different": "Complete (proved): every other valid case gets the same outputs.",
        "incomplete": f"Incomplete: {len(report.regions)} shown, more exist.",
    }[report.status]
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Semantic diff</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}code{white-space:pre-wrap}</style></head><body>"
        f"<h1>Semantic diff: {escape(a.policy)} {escape(a.label)} &rarr; {escape(b.label)}</h1>"
        f"<section id='semantic'><p>{escape(verdict)}</p>"
        + (
            "<table><tr><th>#</th><th>transition</th><th>condition</th><th>A</th><th>B</th><th>witness</th></tr>"
            + rows
            + "</table>"
            if report.regions
            else ""
        )
        + "</section></body></html>\n"
    )


def render(report: SemanticReport, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report.dump(), indent=2, ensure_ascii=False) + "\n"
    if fmt == "md":
        return render_markdown(report)
    if fmt == "html":
        return render_html(report)
    return render_text(report)


def save_witnesses(report: SemanticReport, folder: Path) -> list[Path]:
    """Write each region's witness as a case fixture (`$comment` says which region it shows)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for n, region in enumerate(report.regions, 1):
        case = {
            "$comment": f"semantic diff region {n}: {region.transition} when {region.condition}",
            **region.witness,
        }
        path = folder / f"region-{n:02d}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(case, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written


__all__ = [
    "EXIT_INCOMPLETE",
    "Budget",
    "ProofError",
    "Region",
    "SemanticReport",
    "Unsupported",
    "Version",
    "prove_diff",
    "render",
    "save_witnesses",
    "semantic_diff",
]
