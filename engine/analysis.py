"""Proving conflicts: find a case on which two rules both take effect and decide differently.

The proof is a witness, not a guess: candidate cases are built from the values the rules
mention, evaluated with the compiled policy itself, and a conflict is reported only when
the evaluator confirms it. A conflict the search does not reach is not reported (the
runtime still reports it in any decision where it happens).
"""

from __future__ import annotations

import itertools
import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from engine import program as p
from engine import syntax as s
from engine.errors import Diagnostic
from engine.runtime import CompiledPolicy

MAX_CANDIDATES = 4096


def find_conflicts(policy: CompiledPolicy) -> list[Diagnostic]:
    """A `conflict` diagnostic for each pair of rules proven to conflict, with the witness case."""
    program = policy.program
    found = []
    for i, j, decision in _candidate_pairs(program):
        witness = _search(policy, i, j, decision)
        if witness is not None:
            found.append(_diagnostic(program, i, j, decision, witness))
    return found


def _decides(rule: p.RuleInfo) -> dict[str, p.Value]:
    """The constant values a rule decides (computed values are compared per case, not here)."""
    return {o.name: o.value for o in rule.outcomes if o.kind == "decide" and o.value is not None}


def _candidate_pairs(program: p.Program) -> list[tuple[int, int, str]]:
    """Rules that decide the same decision differently with no direct precedence between them."""
    pairs = []
    rules = program.rules
    for i, j in itertools.combinations(range(len(rules)), 2):
        a, b = rules[i], rules[j]
        if a.id in b.overrides or b.id in a.overrides:
            continue
        da, db = _decides(a), _decides(b)
        for decision in sorted(set(da) & set(db)):
            if da[decision] != db[decision]:
                pairs.append((i, j, decision))
                break
    return pairs


def _search(policy: CompiledPolicy, i: int, j: int, decision: str) -> dict[str, Any] | None:
    program = policy.program
    when = program.info.effective or date.today()
    tables = policy.tables_at(when)
    nodes = _rule_nodes(program, [program.rules[i], program.rules[j]])
    involved = _involved_facts(program, nodes)
    base = {path: _default(fact, program) for path, fact in program.facts.items()}
    choices = {path: _candidates(program.facts[path], program, nodes, tables, policy) for path in involved}
    for assignment in _assignments(choices):
        facts = {**base, **assignment}
        fired = tuple(policy.rules.decide(facts, tables))
        resolution = policy.resolve(fired)
        if i in resolution.effective and j in resolution.effective:
            return facts
    return None


def _rule_nodes(program: p.Program, rules: list[p.RuleInfo]) -> list[p.Node]:
    """Every IR node the rules evaluate, following derived facts into their definitions."""
    todo: list[p.Node] = [n for r in rules for n in (r.condition, *r.unless)]
    seen: list[p.Node] = []
    visited_derived: set[str] = set()
    while todo:
        node = todo.pop()
        seen.append(node)
        if isinstance(node, p.DerivedRead) and node.name not in visited_derived:
            visited_derived.add(node.name)
            todo.append(program.derived[node.name].node)
        todo.extend(p.sub_nodes(node))
    return seen


def _involved_facts(program: p.Program, nodes: list[p.Node]) -> list[str]:
    names = {n.path for n in nodes if isinstance(n, p.FactRead | p.PresenceNode)}
    return sorted(names)


def _mentioned(nodes: list[p.Node], element: p.Type) -> list[Any]:
    values: list[Any] = []
    for node in nodes:
        if isinstance(node, p.Const) and node.type.element == element:
            items = sorted(node.value, key=str) if isinstance(node.value, frozenset) else [node.value]
            values += [v for v in items if v not in values]
    return values


def _table_keys(
    nodes: list[p.Node], fact: p.FactInfo, tables: tuple[dict[Any, Any], ...], policy: CompiledPolicy
) -> list[Any]:
    """One key per distinct value of each table the fact is looked up in (so lookups vary)."""
    keys: list[Any] = []
    names = policy.rules.table_names
    for node in nodes:
        if (
            isinstance(node, p.TableLookup | p.TableHas)
            and isinstance(node.key, p.FactRead)
            and node.key.path == fact.path
        ):
            by_value: dict[Any, Any] = {}
            for key, value in sorted(tables[names.index(node.table)].items(), key=lambda kv: str(kv[0])):
                by_value.setdefault(value, key)
            keys += [k for k in by_value.values() if k not in keys]
    return keys


def _candidates(
    fact: p.FactInfo,
    program: p.Program,
    nodes: list[p.Node],
    tables: tuple[dict[Any, Any], ...],
    policy: CompiledPolicy,
) -> list[Any]:
    element = fact.type.element
    mentioned = _mentioned(nodes, element) + _table_keys(nodes, fact, tables, policy)
    if element.base == "boolean":
        scalars: list[Any] = [True, False]
    elif element.base == "enum":
        others = [v for v in program.enums[element.enum or ""] if v not in mentioned][:1]
        scalars = mentioned + others
    elif element.base == "number":
        scalars = mentioned + [m + d for m in mentioned for d in (Decimal(1), Decimal(-1))] or [Decimal(0)]
    elif element.base == "date":
        scalars = mentioned + [m + timedelta(days=d) for m in mentioned for d in (1, -1)] or [
            date(2000, 1, 1)
        ]
    else:
        scalars = [*mentioned, "other"]
    if fact.type.is_set:
        values: list[Any] = [frozenset(), frozenset(mentioned or scalars[:1])]
        values += [frozenset([v]) for v in scalars]
    else:
        values = list(dict.fromkeys(scalars))
    return [*values, None] if fact.optional else values


def _assignments(choices: dict[str, list[Any]]) -> Any:
    names = list(choices)
    total = 1
    for values in choices.values():
        total *= max(len(values), 1)
    if total <= MAX_CANDIDATES:
        for combo in itertools.product(*(choices[n] for n in names)):
            yield dict(zip(names, combo, strict=True))
        return
    rng = random.Random(0)  # deterministic: the same policy always gets the same verdict
    for _ in range(MAX_CANDIDATES):
        yield {n: rng.choice(choices[n]) for n in names}


def _default(fact: p.FactInfo, program: p.Program) -> Any:
    if fact.optional:
        return None
    if fact.type.is_set:
        return frozenset()
    base = fact.type.base
    if base == "enum":
        return program.enums[fact.type.enum or ""][0]
    return {"boolean": False, "number": Decimal(0), "string": "", "date": date(2000, 1, 1)}[base]


def _shown(value: Any, type_: p.Type) -> str:
    """A witness value as a policy would write it: `true`, `"0A978"`, `CN`, `<CC, NS>`."""
    if isinstance(value, frozenset):
        return "<" + ", ".join(_shown(v, type_.element) for v in sorted(value, key=str)) + ">"
    if type_.base == "enum":
        return str(value)
    return s.format_literal(value)


def _diagnostic(program: p.Program, i: int, j: int, decision: str, witness: dict[str, Any]) -> Diagnostic:
    a, b = program.rules[i], program.rules[j]
    va, vb = _decides(a)[decision], _decides(b)[decision]
    shown = ", ".join(
        f"{k} = {_shown(v, program.facts[k].type)}"
        for k, v in witness.items()
        if v not in (None, frozenset(), False, "")
    )
    return Diagnostic.at(
        "conflict",
        f"rules `{a.id}` and `{b.id}` can both take effect and decide `{decision}` differently "
        f"(`{va}` and `{vb}`)",
        b.decl.id.span,
        f"for example when {shown or 'all facts take their defaults'}; "
        f"make one an exception to the other with `overrides {a.id}` (or the reverse), or narrow a condition",
    )
