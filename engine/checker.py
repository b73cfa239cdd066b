"""Checks: name resolution, types, references, precedence. Collects every problem, never raises.

Input: a `.policy` (or `.vocab`) file and the vocabularies it uses. Output: a `Program`
(the typed, resolved model the compiler reads) when there are no errors, and the full list
of diagnostics either way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from engine import numbers, strictjson
from engine import program as p
from engine import syntax as s
from engine.errors import Diagnostic, Severity, Span, did_you_mean, has_errors
from engine.limits import structure_diagnostics
from engine.loader import Loader, SourceUnit, table_path
from engine.numbers import ROUNDING_MODES

STATUSES = ("draft", "proposed", "in-force")
FUNCTIONS = ("min", "max")
REQUIRED_POLICY_FIELDS = ("title", "version", "effective", "status", "source")


@dataclass
class CheckResult:
    """What checking one file produced."""

    program: p.Program | None
    diagnostics: list[Diagnostic]
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def check_file(path: str | Path, loader: Loader | None = None) -> CheckResult:
    """Parse and check one file with the vocabularies it uses."""
    return check_unit((loader or Loader()).gather(Path(path)))


def check_text(text: str, path: str = "<string>") -> CheckResult:
    """Check source text that is not on disk (tests, editors); `use` paths resolve from the cwd."""
    return check_unit(Loader().gather(Path(path), preloaded={str(Path(path)): text}))


def check_unit(unit: SourceUnit) -> CheckResult:
    """Check what the loading stage gathered: the checker itself reads no file.

    Structural limits (engine/limits.py) come first: past them the checker and compiler
    would recurse out of stack, so a unit that breaks one is reported and not checked further.
    """
    structural = structure_diagnostics(item for item, _ in unit.items)
    if structural:
        found = sorted([*unit.diagnostics, *structural], key=Diagnostic.sort_key)
        return CheckResult(None, found, dict(unit.sources))
    return _Checker(unit).run()


# ---------------------------------------------------------------------------


@dataclass
class _Declared:
    """Where each name was declared, across a file and its vocabularies."""

    enums: dict[str, s.EnumDecl] = field(default_factory=dict)
    facts: dict[str, s.FactDecl] = field(default_factory=dict)
    defines: dict[str, s.DefineDecl] = field(default_factory=dict)
    groups: dict[str, s.GroupDecl] = field(default_factory=dict)
    tables: dict[str, tuple[s.TableDecl, Path]] = field(default_factory=dict)
    decisions: dict[str, s.DecisionDecl] = field(default_factory=dict)
    obligations: dict[str, s.ObligationDecl] = field(default_factory=dict)
    recommendations: dict[str, s.RecommendationDecl] = field(default_factory=dict)
    rules: list[s.RuleDecl] = field(default_factory=list)
    namespace: dict[str, Span] = field(default_factory=dict)


class _Checker:
    def __init__(self, unit: SourceUnit) -> None:
        self.unit = unit
        self.diagnostics: list[Diagnostic] = list(unit.diagnostics)
        self.sources: dict[str, str] = dict(unit.sources)
        self.declared = _Declared()
        self.program: p.Program | None = None
        self._resolving: list[str] = []
        self._cycles: set[frozenset[str]] = set()
        self._define_order: list[str] = []
        self._decision_types: dict[str, s.TypeExpr] = {}  # as written: the scale of number decisions

    # -- entry ----------------------------------------------------------
    def run(self) -> CheckResult:
        root, path = self.unit.root, self.unit.path
        if root is None:
            return CheckResult(None, self._sorted(), self.sources)
        info = self._check_header(root.header, path)
        for item, declared_in in self.unit.items:
            self._declare(item, declared_in)
        self.program = p.Program(info=info, sources=self.sources, syntax=root)
        self._check_declarations()
        self._check_rules()
        if root.header.kind == "vocabulary":
            for rule in self.declared.rules:
                self._error(
                    "rule-in-vocabulary",
                    f"rule `{rule.id.name}` is in a vocabulary",
                    rule.id.span,
                    "vocabularies hold shared declarations; move the rule into a policy file",
                )
        program = self.program if not has_errors(self.diagnostics) and root.header.kind == "policy" else None
        return CheckResult(program, self._sorted(), self.sources)

    def _sorted(self) -> list[Diagnostic]:
        unique = {(d.file, d.line, d.column, d.code, d.message): d for d in self.diagnostics}
        return sorted(unique.values(), key=Diagnostic.sort_key)

    def _error(
        self, code: str, message: str, span: Span, help: str | None = None, missing: str | None = None
    ) -> None:
        """Report a problem; `missing` is the declaration an `unknown-*` error did not find."""
        if missing is not None and self._follows_failure(code, missing):
            return
        self.diagnostics.append(Diagnostic.at(code, message, span, help))

    def _follows_failure(self, code: str, missing: str) -> bool:
        """True when a name is unknown only because its declaration failed to parse, or because a
        `use` failed to load (rules never come from a vocabulary): the primary error says it all."""
        if missing in self.unit.broken:
            return True
        return self.unit.incomplete and code != "unknown-rule"

    def _warn(self, code: str, message: str, span: Span, help: str | None = None) -> None:
        self.diagnostics.append(Diagnostic.at(code, message, span, help, Severity.WARNING))

    # -- header ---------------------------------------------------------
    def _check_header(self, header: s.Header, path: Path) -> p.PolicyInfo:
        seen: dict[str, s.HeaderField] = {}
        for item in header.fields:
            if item.name in seen:
                self._error(
                    "duplicate-header-field",
                    f"`{item.name}` is given twice",
                    item.span,
                    "keep one; a version's header says each thing once",
                )
            seen[item.name] = item
        if header.kind == "policy":
            for name in REQUIRED_POLICY_FIELDS:
                if name not in seen:
                    self._error(
                        "missing-header-field",
                        f"policy `{header.id}` has no `{name}`",
                        header.span,
                        _HEADER_HELP[name],
                    )
        status = seen.get("status")
        if status is not None and status.value not in STATUSES:
            listed = "the status is one of `draft`, `proposed`, `in-force`"
            hint = did_you_mean(str(status.value), STATUSES)  # `in_force`, `Draft`
            self._error(
                "bad-status",
                f"unknown status `{status.value}`",
                status.span,
                f"{hint} ({listed})" if hint else listed,
            )
        effective = _date_field(seen.get("effective"))
        ends = _date_field(seen.get("ends"))
        if effective and ends and ends < effective:
            self._error(
                "bad-date-range",
                f"the version ends ({ends}) before it takes effect ({effective})",
                seen["ends"].span,
                "`ends` is the last day in force and must not precede `effective`",
            )
        return p.PolicyInfo(
            id=header.id,
            title=_text_field(seen.get("title")),
            version=_text_field(seen.get("version")),
            effective=effective,
            ends=ends,
            status=_text_field(seen.get("status")),
            source=_text_field(seen.get("source")),
            description=_text_field(seen.get("description")) or None,
            path=str(path),
        )

    # -- declarations -----------------------------------------------------
    def _claim(self, name: str, span: Span) -> bool:
        """Names of enums, facts, derived facts, groups and tables share one namespace."""
        previous = self.declared.namespace.get(name)
        if previous is not None:
            self._error(
                "duplicate-name",
                f"`{name}` is declared twice",
                span,
                f"the first declaration is at {previous}; rename or remove one",
            )
            return False
        self.declared.namespace[name] = span
        return True

    def _declare(self, item: s.Item, path: Path) -> None:
        d = self.declared
        if isinstance(item, s.EnumDecl) and self._claim(item.name.name, item.name.span):
            d.enums[item.name.name] = item
        elif isinstance(item, s.FactDecl) and self._claim(item.dotted, item.span):
            d.facts[item.dotted] = item
        elif isinstance(item, s.DefineDecl) and self._claim(item.name.name, item.name.span):
            d.defines[item.name.name] = item
        elif isinstance(item, s.GroupDecl) and self._claim(item.name.name, item.name.span):
            d.groups[item.name.name] = item
        elif isinstance(item, s.TableDecl) and self._claim(item.name.name, item.name.span):
            d.tables[item.name.name] = (item, path)
        elif isinstance(item, s.DecisionDecl):
            self._declare_once(d.decisions, item.name, item, "decision")
        elif isinstance(item, s.ObligationDecl):
            self._declare_once(d.obligations, item.name, item, "obligation")
        elif isinstance(item, s.RecommendationDecl):
            self._declare_once(d.recommendations, item.name, item, "recommendation")
        elif isinstance(item, s.RuleDecl):
            d.rules.append(item)

    def _declare_once(self, table: dict[str, Any], name: s.Ident, item: Any, kind: str) -> None:
        if name.name in table:
            self._error(
                "duplicate-name",
                f"{kind} `{name.name}` is declared twice",
                name.span,
                f"the first declaration is at {table[name.name].name.span}",
            )
            return
        table[name.name] = item

    def _check_declarations(self) -> None:
        assert self.program is not None
        prog, d = self.program, self.declared
        for name, enum in d.enums.items():
            prog.enums[name] = self._enum_values(enum)
        for path, fact in d.facts.items():
            prefixes = [".".join(fact.path[:i]) for i in range(1, len(fact.path))]
            record = next((q for q in prefixes if q in d.facts), None)
            if record is not None:
                self._error(
                    "duplicate-name",
                    f"`{record}` is declared as a fact, and `{path}` uses it as a record",
                    fact.span,
                    f"the fact `{record}` is declared at {d.facts[record].span}; rename one of them",
                )
                continue
            fact_type = self._type(fact.type)
            if fact_type is not None:
                default = self._fact_default(fact, fact_type)
                optional = fact.type.optional or fact.default is not None
                prog.facts[path] = p.FactInfo(path, fact_type, optional, fact.description, fact.span, default)
        for name, group in d.groups.items():
            prog.groups[name] = p.GroupInfo(name, group.description, group.values.items, group.span)
        for name, (table, declared_in) in d.tables.items():
            self._check_table(name, table, declared_in)
        for name in d.defines:
            self._derived(name)
        prog.derived = dict(sorted(prog.derived.items(), key=lambda kv: self._define_order.index(kv[0])))
        for decision in d.decisions.values():
            self._check_decision(decision)
        prog.obligations = {n: o.description for n, o in d.obligations.items()}
        prog.recommendations = {n: (r.description, r.citations) for n, r in d.recommendations.items()}

    def _fact_default(self, fact: s.FactDecl, fact_type: p.Type) -> p.Value | None:
        """The declared default of a fact, checked against its type (a constant, like a decision's)."""
        if fact.default is None:
            return None
        node = self._resolve(fact.default, fact_type)
        if node is None:
            return None
        if not isinstance(node, p.Const) or not _same(node.type, fact_type):
            self._mismatch(
                fact.default,
                f"the default of `{fact.dotted}` is {s.unparse(fact.default)}, not a {fact_type} constant",
                f"write a {fact_type} value, e.g. " + _example_value(fact_type, self.declared.enums),
            )
            return None
        return node.value

    def _enum_values(self, enum: s.EnumDecl) -> tuple[str, ...]:
        values: list[str] = []
        for value in enum.values:
            if value.name in values:
                self._error(
                    "duplicate-value",
                    f"`{value.name}` is listed twice in `{enum.name.name}`",
                    value.span,
                    "remove the second one: an enumeration lists each value once",
                )
            else:
                values.append(value.name)
        return tuple(values)

    def _type(self, type_expr: s.TypeExpr, computed: bool = False) -> p.Type | None:
        """Resolve a written type; unknown names are reported with a suggestion.

        A scale (`number scale 2 rounding half_up`) is for `computed` numbers only: derived
        facts and decisions. Facts and tables hold the numbers the case or the data give.
        """
        if type_expr.scale is not None and not self._scale_ok(type_expr, computed):
            return None
        if type_expr.name in p.SCALARS:
            return p.Type(type_expr.name, None, type_expr.is_set)
        if type_expr.name in self.declared.enums:
            return p.Type("enum", type_expr.name, type_expr.is_set)
        known = [*p.SCALARS, *self.declared.enums]
        self._error(
            "unknown-type",
            f"unknown type `{type_expr.name}`",
            type_expr.span,
            did_you_mean(type_expr.name, known)
            or "a type is boolean, number, string, date, an enumeration, or `set of` one of those",
            missing=type_expr.name,
        )
        return None

    def _scale_ok(self, type_expr: s.TypeExpr, computed: bool) -> bool:
        if type_expr.name != "number" or type_expr.is_set:
            self._error(
                "type-mismatch",
                f"only a number has a scale, and this is a {'set of ' if type_expr.is_set else ''}"
                f"{type_expr.name}",
                type_expr.span,
                "drop `scale ... rounding ...`",
            )
            return False
        if not computed:
            self._error(
                "type-mismatch",
                "a scale rounds computed numbers: derived facts and decisions",
                type_expr.span,
                "drop `scale ... rounding ...` here; facts and tables keep the digits they are given",
            )
            return False
        rounding = type_expr.rounding
        if rounding is not None and rounding.name not in ROUNDING_MODES:
            self._error(
                "unknown-value",
                f"`{rounding.name}` is not a rounding rule",
                rounding.span,
                did_you_mean(rounding.name, ROUNDING_MODES)
                or f"the rounding rules are {_list(ROUNDING_MODES)}",
            )
            return False
        return True

    def _stored(self, node: p.Node, type_expr: s.TypeExpr | None, what: str, where: s.Expr) -> p.Node | None:
        """A computed value as it is stored: rounded to its declared scale, or exact without `/`."""
        if type_expr is not None and type_expr.scale is not None and type_expr.rounding is not None:
            return p.RoundNode(node, type_expr.scale, type_expr.rounding.name, p.NUMBER, node.source)
        if p.exact_quotient(node):
            self._error(
                "unrounded-division",
                f"{what} divides, and a quotient can have more digits than any decimal holds",
                where.span,
                "declare the digits it keeps and how it is rounded: `number scale 2 rounding half_up` "
                "(or compare the quotient in a condition, where it is exact)",
            )
            return None
        return node

    def _check_decision(self, decision: s.DecisionDecl) -> None:
        """A decision's type (one value: enumeration, boolean, number, date) and its default."""
        assert self.program is not None
        written = decision.type
        if written.name not in p.SCALARS and written.name not in self.declared.enums:
            self._error(
                "unknown-type",
                f"decision `{decision.name.name}` has unknown type `{written.name}`",
                written.span,
                did_you_mean(written.name, [*self.declared.enums, *p.SCALARS])
                or "a decision's type is an enumeration, boolean, number, date or string",
                missing=written.name,
            )
            return
        type_ = self._type(written, computed=True)
        if type_ is None:
            return
        if written.optional:
            self._error(
                "type-mismatch",
                f"decision `{decision.name.name}` is marked `optional`, but a decision always has a value",
                written.span,
                "drop `optional`: when no rule decides, the decision takes its default",
            )
            return
        if type_.is_set:
            self._error(
                "type-mismatch",
                f"decision `{decision.name.name}` is a {type_}, "
                "but a decision has one value: an enumeration, boolean, number, date or string",
                written.span,
                "for a set of outcomes that every effective rule adds to, declare obligations "
                "(`obligation NAME`) and `require` them; set-valued decisions (`collect`) are not "
                "supported yet",
            )
            return
        if decision.default is None:
            choices = (
                f"one of {_list(self.program.enums[type_.enum or ''])}"
                if type_.base == "enum"
                else _example_value(type_, self.declared.enums)
            )
            self._error(
                "missing-default",
                f"decision `{decision.name.name}` has no default",
                decision.name.span,
                f"add `default VALUE` ({choices}): the value when no rule decides",
            )
            return
        default = self._decision_constant(decision.default, type_, decision.name.name)
        if default is None:
            return
        default = _round_constant(default, written)
        self.program.decisions[decision.name.name] = p.DecisionInfo(
            decision.name.name, type_, default, decision.description, decision.span
        )
        self._decision_types[decision.name.name] = written

    def _decision_constant(
        self, expr: s.Ref | s.Literal | s.SetLiteral, type_: p.Type, name: str
    ) -> p.Value | None:
        if isinstance(expr, s.Ref) and type_.base == "enum":
            values = self.program.enums[type_.enum or ""] if self.program else ()
            if expr.dotted not in values:
                self._unknown_value(expr, type_.enum or "")
                return None
            return expr.dotted
        node = self._resolve(expr, type_)
        if node is None:
            return None
        if not isinstance(node, p.Const) or not _same(node.type, type_):
            self._mismatch(
                expr,
                f"the default of `{name}` is {s.unparse(expr)}, not a {type_} constant",
                f"write a {type_} value, e.g. " + _example_value(type_, self.declared.enums),
            )
            return None
        return node.value

    def _unknown_value(self, ident: s.Ident | s.Ref, enum: str) -> None:
        assert self.program is not None
        name = ident.name if isinstance(ident, s.Ident) else ident.dotted
        values = self.program.enums.get(enum, ())
        self._error(
            "unknown-value",
            f"`{name}` is not a value of `{enum}`",
            ident.span,
            did_you_mean(name, values) or f"the values of `{enum}` are {_list(values)}",
        )

    # -- tables -------------------------------------------------------------
    def _check_table(self, name: str, table: s.TableDecl, path: Path) -> None:
        assert self.program is not None
        key_type, value_type = self._type(table.key_type), self._type(table.value_type)
        if key_type is None or value_type is None:
            return
        if key_type.is_set:
            self._error("type-mismatch", "a table key cannot be a set", table.key_type.span)
            return
        data_path = table_path(table, path)
        entries = self._table_entries(table, data_path, key_type, value_type)
        if entries is not None:
            self.program.tables[name] = p.TableInfo(
                name, key_type, value_type, table.description, str(data_path), tuple(entries), table.span
            )

    def _table_entries(
        self, table: s.TableDecl, data_path: Path, key_type: p.Type, value_type: p.Type
    ) -> list[p.TableEntry] | None:
        data = self.unit.tables[str(data_path)]
        declared = f"`{table.name.name}` is declared `{key_type} -> {value_type}` at {table.span}"
        shape = 'table files hold {"entries": [{"key": ..., "value": ..., "effective": ..., "ends": ...}]}'

        def bad(
            where: str,
            why: str,
            path: tuple[str | int, ...] | None = None,
            help: str | None = None,
            at: tuple[int, int] | None = None,
        ) -> None:
            """A table-data error, located in the table file itself when the place is known
            (`data/x.json:12:14`), else at the `table` declaration that names the file."""
            span = table.span
            if at is not None and at[0]:
                span = Span(str(data_path), at[0], at[1], at[0], at[1] + 1)
            elif path is not None and data.text:
                span = Span(str(data_path), *strictjson.locate_range(data.text, path))
            self._error(
                "table-data",
                f"in `{table.source}`, {where}: {why}" if where else f"in `{table.source}`: {why}",
                span,
                help or shape,
            )

        if data.problem is not None:
            bad(*data.problem, help=data.help)
            return None
        raw = data.raw
        self.sources[str(data_path)] = data.text
        if not isinstance(raw, dict) or not isinstance(raw.get("entries"), list):
            bad("the top level", "expected an object with an `entries` list", ())
            return None
        entries: list[p.TableEntry] = []
        indexes: dict[int, int] = {}  # id(entry) -> its index in the file, to locate overlaps
        for index, entry in enumerate(raw["entries"]):
            where = f"entries[{index}]"
            if not isinstance(entry, dict) or "key" not in entry or "value" not in entry:
                bad(where, "expected an object with `key` and `value`", ("entries", index))
                continue
            field = "key"
            try:
                key = self._data_value(entry["key"], key_type)
                field = "value"
                value = self._data_value(entry["value"], value_type)
                field = "effective"
                effective = _data_date(entry.get("effective"))
                field = "ends"
                entries.append(p.TableEntry(key, value, effective, _data_date(entry.get("ends"))))
                indexes[id(entries[-1])] = index
            except ValueError as exc:
                help = declared if field in ("key", "value") else "dates are written YYYY-MM-DD"
                bad(f"{where}.{field}", str(exc), ("entries", index, field), help)
                continue
            last = entries[-1]
            if last.effective is not None and last.ends is not None and last.ends < last.effective:
                self._error(
                    "bad-date-range",
                    f"in `{table.source}`, {where} (key `{last.key}`) ends {last.ends}, "
                    f"before it takes effect on {last.effective}: it is never in force",
                    table.span,
                    "`ends` is the last day in force (inclusive); swap the dates or fix the typo",
                )
        self._check_overlaps(entries, bad, indexes)
        return entries

    def _check_overlaps(
        self, entries: list[p.TableEntry], bad: Any, indexes: dict[int, int] | None = None
    ) -> None:
        by_key: dict[Any, list[p.TableEntry]] = {}
        for entry in entries:
            by_key.setdefault(entry.key, []).append(entry)
        for key, dated in by_key.items():
            ordered = sorted(dated, key=lambda e: e.effective or date.min)
            for before, after in zip(ordered, ordered[1:], strict=False):
                if (before.ends or date.max) >= (after.effective or date.min):
                    at = (indexes or {}).get(id(after))
                    bad(
                        f"key `{key}`",
                        "two entries are in force on the same day; end one before the next begins",
                        ("entries", at, "effective") if at is not None else None,
                        f"give the entry before it an `ends` date before {after.effective}",
                    )

    def _data_value(self, raw: Any, type_: p.Type) -> p.Value:
        """Convert one JSON value of a table file to its declared type, or explain why not."""
        assert self.program is not None
        if type_.is_set:
            if not isinstance(raw, list):
                raise ValueError(f"expected a list for `{type_}`, found {json.dumps(raw)}")
            return frozenset(self._data_value(v, type_.element) for v in raw)
        return convert_scalar(raw, type_, self.program.enums)

    # -- derived facts --------------------------------------------------------
    def _derived(self, name: str) -> p.DerivedInfo | None:
        """Resolve a derived fact on demand, in dependency order, reporting cycles."""
        assert self.program is not None
        if name in self.program.derived:
            return self.program.derived[name]
        define = self.declared.defines[name]
        if name in self._resolving:
            members = self._resolving[self._resolving.index(name) :]
            if frozenset(members) in self._cycles:
                return None  # the same cycle, met again from another of its members
            self._cycles.add(frozenset(members))
            cycle = " -> ".join([*members, name])
            self._error(
                "cyclic-definition",
                f"`{name}` depends on itself: {cycle}",
                define.name.span,
                "a derived fact must be computable from facts, tables and other derived facts",
            )
            return None
        self._resolving.append(name)
        expected = self._type(define.type, computed=True) if define.type else None
        node = self._resolve(define.expr, expected)
        self._resolving.pop()
        if node is None:
            return None
        if expected is not None and not _same(node.type, expected):
            self._mismatch(define.expr, f"`{name}` is declared `{expected}` but computes `{node.type}`")
            return None
        node = self._stored(node, define.type, f"`{name}`", define.expr)
        if node is None:
            return None
        info = p.DerivedInfo(name, node.type, define.description, node, define.span)
        self.program.derived[name] = info
        self._define_order.append(name)
        return info

    # -- rules ------------------------------------------------------------------
    def _check_rules(self) -> None:
        assert self.program is not None
        seen: dict[str, s.RuleDecl] = {}
        for rule in self.declared.rules:
            if rule.id.name in seen:
                self._error(
                    "duplicate-rule",
                    f"rule `{rule.id.name}` is defined twice",
                    rule.id.span,
                    f"the first is at {seen[rule.id.name].id.span}; rule ids must be unique",
                )
                continue
            seen[rule.id.name] = rule
            info = self._rule(rule)
            if info is not None:
                self.program.rules.append(info)
        self._check_overrides(seen)

    def _rule(self, rule: s.RuleDecl) -> p.RuleInfo | None:
        condition = self._condition(rule.condition)
        unless = [self._condition(u) for u in rule.unless]
        outcomes = [self._outcome(o) for o in rule.outcomes]
        if condition is None or None in unless or None in outcomes:
            return None
        return p.RuleInfo(
            rule.id.name,
            rule.description,
            rule.citations,
            tuple(o.name for o in rule.overrides),
            condition,
            tuple(u for u in unless if u is not None),
            tuple(o for o in outcomes if o is not None),
            rule.span,
            rule,
        )

    def _outcome(self, outcome: s.Outcome) -> p.OutcomeInfo | None:
        assert self.program is not None
        if isinstance(outcome, s.Decide):
            name = outcome.decision.name
            decision = self.program.decisions.get(name)
            if decision is None:
                if name not in self.declared.decisions:
                    self._error(
                        "unknown-decision",
                        f"unknown decision `{name}`",
                        outcome.decision.span,
                        did_you_mean(name, self.declared.decisions)
                        or 'declare it: `decision NAME: ENUM default VALUE "description"`',
                        missing=name,
                    )
                return None
            return self._decide(outcome, decision)
        kind, declared = (
            ("require", self.program.obligations)
            if isinstance(outcome, s.Require)
            else ("recommend", self.program.recommendations)
        )
        noun = "obligation" if kind == "require" else "recommendation"
        if outcome.name.name not in declared:
            self._error(
                f"unknown-{noun}",
                f"unknown {noun} `{outcome.name.name}`",
                outcome.name.span,
                did_you_mean(outcome.name.name, declared) or f'declare it: `{noun} NAME "description"`',
                missing=outcome.name.name,
            )
            return None
        return p.OutcomeInfo(kind, outcome.name.name, None, outcome.span)

    def _decide(self, outcome: s.Decide, decision: p.DecisionInfo) -> p.OutcomeInfo | None:
        """`decide D = VALUE`: a constant of the decision's type, or an expression computed per case."""
        name, text = decision.name, s.unparse(outcome.value)
        node = self._resolve(outcome.value, decision.type)
        if node is None:
            return None
        if not _same(node.type, decision.type):
            self._mismatch(
                outcome.value,
                f"`{text}` is a {node.type}, but decision `{name}` is a {decision.type}",
                f"decide a {decision.type} value, e.g. " + _example_value(decision.type, self.declared.enums),
            )
            return None
        written = self._decision_types.get(name)
        scaled = written is not None and written.scale is not None and written.rounding is not None
        if isinstance(node, p.Const):
            value = _round_constant(node.value, written) if scaled and written is not None else node.value
            return p.OutcomeInfo("decide", name, value, outcome.span, text=text)
        stored = self._stored(node, written, f"decision `{name}`", outcome.value)
        if stored is None:
            return None
        return p.OutcomeInfo("decide", name, None, outcome.span, computed=stored, text=text)

    def _check_overrides(self, rules: dict[str, s.RuleDecl]) -> None:
        for rule in rules.values():
            for target in rule.overrides:
                if target.name not in rules:
                    self._error(
                        "unknown-rule",
                        f"rule `{rule.id.name}` overrides unknown rule `{target.name}`",
                        target.span,
                        did_you_mean(target.name, rules) or "override a rule of this policy",
                        missing=target.name,
                    )
                elif target.name == rule.id.name:
                    self._error(
                        "cyclic-override",
                        f"rule `{rule.id.name}` overrides itself",
                        target.span,
                        f"a rule cannot be an exception to itself; remove `{target.name}` from its `overrides`",
                    )
        self._find_override_cycles(rules)

    def _find_override_cycles(self, rules: dict[str, s.RuleDecl]) -> None:
        graph = {
            r: [t.name for t in d.overrides if t.name in rules and t.name != r] for r, d in rules.items()
        }
        state: dict[str, int] = {}
        reported: set[frozenset[str]] = set()

        def visit(node: str, stack: list[str]) -> None:
            state[node] = 1
            for nxt in graph[node]:
                if state.get(nxt) == 1:
                    cycle = [*stack[stack.index(nxt) :], nxt]
                    if frozenset(cycle) not in reported:
                        reported.add(frozenset(cycle))
                        target = next(t for t in rules[node].overrides if t.name == nxt)
                        self._error(
                            "cyclic-override",
                            "rules override each other in a circle: " + " -> ".join(cycle),
                            target.span,
                            "an exception cannot also be the rule it is an exception to; remove one `overrides`",
                        )
                elif nxt not in state:
                    visit(nxt, [*stack, nxt])
            state[node] = 2

        for name in graph:
            if name not in state:
                visit(name, [name])

    # -- expressions --------------------------------------------------------------
    def _condition(self, expr: s.Expr) -> p.Node | None:
        node = self._resolve(expr, p.BOOLEAN)
        if node is not None and not _same(node.type, p.BOOLEAN):
            self._not_a_condition(expr, node)
            return None
        return node

    def _not_a_condition(self, expr: s.Expr, node: p.Node) -> None:
        hint = "a condition is true or false"
        if node.type.is_set:
            hint = f"test its values, e.g. `{s.unparse(expr)} includes VALUE`"
        elif node.type.base == "enum":
            hint = f"compare it, e.g. `{s.unparse(expr)} = VALUE`"
        self._mismatch(expr, f"`{s.unparse(expr)}` is a {node.type}, not a condition", hint)

    def _mismatch(self, expr: s.Expr | s.Ident, message: str, help: str | None = None) -> None:
        self._error("type-mismatch", message, expr.span, help)

    def _resolve(self, expr: s.Expr, expected: p.Type | None) -> p.Node | None:
        """Resolve names and compute the type of an expression; None after reporting an error."""
        handler = getattr(self, "_resolve_" + type(expr).__name__.lower())
        resolved: p.Node | None = handler(expr, expected)
        return resolved

    def _resolve_ref(self, ref: s.Ref, expected: p.Type | None) -> p.Node | None:
        assert self.program is not None
        prog, name = self.program, ref.dotted
        enum_type = expected.element if expected is not None and expected.base == "enum" else None
        if enum_type is not None and len(ref.path) == 1 and name in prog.enums.get(enum_type.enum or "", ()):
            return p.Const(name, enum_type, ref)
        if name in prog.facts:
            fact = prog.facts[name]
            return p.FactRead(name, fact.type, fact.nullable, ref)
        if name in self.declared.facts:
            return None  # its declaration had an error, already reported
        if name in self.declared.defines:
            info = self._derived(name)
            return p.DerivedRead(name, info.type, ref) if info else None
        if name in prog.groups:
            return self._group(prog.groups[name], ref, expected)
        if name in prog.tables or name in self.declared.tables:
            self._mismatch(
                ref,
                f"table `{name}` is not a value",
                f"look a key up with `{name}[KEY]`, or test `KEY in {name}`",
            )
            return None
        if (
            enum_type is not None
            and expected is not None
            and not expected.is_set
            and len(ref.path) == 1
            and not self._is_known(name)
        ):
            self._unknown_value(ref, enum_type.enum or "")
            return None
        self._unknown_name(ref, expected)
        return None

    def _is_known(self, name: str) -> bool:
        return name in self.declared.namespace

    def _unknown_name(self, ref: s.Ref, expected: p.Type | None) -> None:
        assert self.program is not None
        name = ref.dotted
        if expected is not None and expected.is_set:
            candidates = [*self.program.groups, *self.program.facts, *self.declared.defines]
            self._error(
                "unknown-group",
                f"unknown group or set `{name}`",
                ref.span,
                did_you_mean(name, candidates) or "declare it: `group NAME = <A, B>`",
                missing=name,
            )
            return
        owners = [e for e, values in self.program.enums.items() if name in values]
        help_text = did_you_mean(name, [*self.program.facts, *self.declared.defines])
        parts = name.split("-")
        if len(parts) > 1 and all(q in self.program.facts or q in self.declared.defines for q in parts):
            help_text = f"names may hold hyphens; to subtract, put spaces around `-`: `{' - '.join(parts)}`"
        if owners and help_text is None:
            help_text = f"`{name}` is a value of `{owners[0]}`; compare a fact with it, e.g. `FACT = {name}`"
        self._error(
            "unknown-fact",
            f"unknown fact `{name}`",
            ref.span,
            help_text or 'declare it: `fact NAME: TYPE "description"`',
            missing=name,
        )

    def _group(self, group: p.GroupInfo, ref: s.Ref, expected: p.Type | None) -> p.Node | None:
        element = expected.element if expected is not None else self._infer_element(group.values, ref)
        if element is None:
            return None
        values = self._set_values(group.values, element)
        return None if values is None else p.Const(values, element.as_set(), ref)

    def _infer_element(self, items: Iterable[s.Ref | s.Literal], where: s.Expr) -> p.Type | None:
        """The value type of a set written without context (for example a group used on the left)."""
        assert self.program is not None
        items = list(items)
        literal_types = {_literal_type(i.value) for i in items if isinstance(i, s.Literal)}
        names = {i.dotted for i in items if isinstance(i, s.Ref)}
        if literal_types and not names and len(literal_types) == 1:
            return literal_types.pop()
        owners = [e for e, values in self.program.enums.items() if names <= set(values)]
        if len(owners) == 1 and not literal_types:
            return p.Type("enum", owners[0])
        self._mismatch(
            where,
            "cannot tell what kind of values this set holds",
            "put it on the right of `in` or `includes`, where the other side gives its type",
        )
        return None

    def _set_values(self, items: Iterable[s.Ref | s.Literal], element: p.Type) -> frozenset[Any] | None:
        values, ok = [], True
        for item in items:
            node = self._resolve(item, element)
            if node is None:
                ok = False
            elif not isinstance(node, p.Const) or not _same(node.type, element):
                self._mismatch(item, f"`{s.unparse(item)}` is not a {element}")
                ok = False
            else:
                values.append(node.value)
        return frozenset(values) if ok else None

    def _resolve_literal(self, lit: s.Literal, expected: p.Type | None) -> p.Node | None:
        lit_type = _literal_type(lit.value)
        if expected is not None and expected.element.base == "enum" and lit_type == p.STRING:
            self._mismatch(
                lit,
                f"{s.unparse(lit)} is a string, but a `{expected.element}` value is expected",
                "enumeration values are written without quotes",
            )
            return None
        return p.Const(lit.value, lit_type, lit)

    def _resolve_setliteral(self, lit: s.SetLiteral, expected: p.Type | None) -> p.Node | None:
        element = expected.element if expected is not None else self._infer_element(lit.items, lit)
        if element is None:
            return None
        values = self._set_values(lit.items, element)
        return None if values is None else p.Const(values, element.as_set(), lit)

    def _resolve_lookup(self, lookup: s.Lookup, expected: p.Type | None) -> p.Node | None:
        assert self.program is not None
        table = self.program.tables.get(lookup.table.name)
        if table is None:
            if lookup.table.name not in self.declared.tables:
                self._error(
                    "unknown-table",
                    f"unknown table `{lookup.table.name}`",
                    lookup.table.span,
                    did_you_mean(lookup.table.name, self.declared.tables)
                    or 'declare it: `table NAME: KEY -> VALUE "description" from "file.json"`',
                    missing=lookup.table.name,
                )
            return None
        key = self._typed(lookup.key, table.key_type, "the table's key")
        return None if key is None else p.TableLookup(table.name, key, table.value_type, lookup)

    def _typed(self, expr: s.Expr, want: p.Type, role: str) -> p.Node | None:
        node = self._resolve(expr, want)
        if node is not None and not _same(node.type, want):
            self._mismatch(expr, f"`{s.unparse(expr)}` is a {node.type}, but {role} is a {want}")
            return None
        return node

    def _resolve_not(self, expr: s.Not, expected: p.Type | None) -> p.Node | None:
        operand = self._condition(expr.operand)
        return None if operand is None else p.NotNode(operand, p.BOOLEAN, expr)

    def _resolve_and(self, expr: s.And, expected: p.Type | None) -> p.Node | None:
        operands = [self._condition(o) for o in expr.operands]
        if None in operands:
            return None
        return p.AndNode(tuple(o for o in operands if o is not None), p.BOOLEAN, expr)

    def _resolve_or(self, expr: s.Or, expected: p.Type | None) -> p.Node | None:
        operands = [self._condition(o) for o in expr.operands]
        if None in operands:
            return None
        return p.OrNode(tuple(o for o in operands if o is not None), p.BOOLEAN, expr)

    def _resolve_compare(self, expr: s.Compare, expected: p.Type | None) -> p.Node | None:
        left = self._resolve(expr.left, None)
        if left is None:
            return None
        right = self._resolve(expr.right, left.type)
        if right is None:
            return None
        if left.type.is_set or right.type.is_set:
            self._mismatch(
                expr,
                f"`{expr.op}` compares single values, and `{s.unparse(expr.left)}` is a {left.type}",
                "use `includes`, `includes any <...>` or `includes all <...>` on sets",
            )
            return None
        if not _same(left.type, right.type):
            self._mismatch(
                expr,
                f"cannot compare a {left.type} with a {right.type}",
                "both sides of a comparison must have the same type",
            )
            return None
        if expr.op not in ("=", "!=") and not left.type.ordered:
            self._mismatch(
                expr,
                f"`{expr.op}` needs numbers or dates, and `{s.unparse(expr.left)}` is a {left.type}",
                "use `=` or `!=`",
            )
            return None
        return p.CompareNode(expr.op, left, right, p.BOOLEAN, expr)

    def _resolve_member(self, expr: s.Member, expected: p.Type | None) -> p.Node | None:
        assert self.program is not None
        item = self._resolve(expr.item, None)
        if item is None:
            return None
        coll = expr.collection
        if isinstance(coll, s.Ref) and coll.dotted in self.program.tables:
            table = self.program.tables[coll.dotted]
            if not _same(item.type, table.key_type):
                self._mismatch(
                    expr.item,
                    f"`{s.unparse(expr.item)}` is a {item.type}, but the keys of "
                    f"`{table.name}` are {table.key_type}",
                )
                return None
            return p.TableHas(table.name, item, p.BOOLEAN, expr)
        collection = self._resolve(coll, item.type.element.as_set())
        if collection is None:
            return None
        if not collection.type.is_set or not _same(collection.type.element, item.type.element):
            self._mismatch(
                coll,
                f"`{s.unparse(coll)}` is a {collection.type}, but a set of {item.type.element} is expected",
            )
            return None
        return p.MemberNode(item, collection, item.type.is_set, p.BOOLEAN, expr)

    def _resolve_includes(self, expr: s.Includes, expected: p.Type | None) -> p.Node | None:
        collection = self._resolve(expr.collection, None)
        if collection is None:
            return None
        if not collection.type.is_set:
            word = "includes" if expr.mode == "one" else f"includes {expr.mode}"
            self._mismatch(
                expr.collection,
                f"`{word}` needs a set, and `{s.unparse(expr.collection)}` is a {collection.type}",
                "for a single value use `=` or `in <...>`",
            )
            return None
        want = collection.type.element if expr.mode == "one" else collection.type
        item = self._typed(
            expr.item,
            want,
            f"the values of `{s.unparse(expr.collection)}`" if expr.mode == "one" else "the other side",
        )
        return None if item is None else p.IncludesNode(collection, item, expr.mode, p.BOOLEAN, expr)

    def _resolve_arith(self, expr: s.Arith, expected: p.Type | None) -> p.Node | None:
        left = self._number(expr.left, f"`{expr.op}`")
        right = self._number(expr.right, f"`{expr.op}`")
        if left is None or right is None:
            return None
        return p.ArithNode(expr.op, left, right, p.NUMBER, expr)

    def _resolve_call(self, expr: s.Call, expected: p.Type | None) -> p.Node | None:
        name = expr.function.name
        if name not in FUNCTIONS:
            self._error(
                "unknown-function",
                f"unknown function `{name}`",
                expr.function.span,
                did_you_mean(name, FUNCTIONS) or f"the functions are {_list(FUNCTIONS)}",
            )
            return None
        if len(expr.args) < 2:
            self._mismatch(expr, f"`{name}` needs at least two numbers", f"write `{name}(a, b)`")
            return None
        args = [self._number(a, f"`{name}`") for a in expr.args]
        if None in args:
            return None
        return p.CallNode(name, tuple(a for a in args if a is not None), p.NUMBER, expr)

    def _number(self, expr: s.Expr, operator: str) -> p.Node | None:
        """An operand of arithmetic: it must be a number."""
        node = self._resolve(expr, p.NUMBER)
        if node is not None and not _same(node.type, p.NUMBER):
            self._mismatch(
                expr,
                f"{operator} needs numbers, and `{s.unparse(expr)}` is a {node.type}",
                "arithmetic, `min` and `max` work on numbers only",
            )
            return None
        return node

    def _resolve_presence(self, expr: s.Presence, expected: p.Type | None) -> p.Node | None:
        assert self.program is not None
        fact = self.program.facts.get(expr.ref.dotted)
        if fact is None:
            if expr.ref.dotted in self.declared.defines:
                self._mismatch(
                    expr,
                    f"`{expr.ref.dotted}` is a derived fact: `is present` and `is missing` test optional facts",
                    "a derived fact that reads a missing optional fact is unknown; test the facts it reads",
                )
                return None
            self._unknown_name(expr.ref, None)
            return None
        if not fact.optional:
            self._warn(
                "presence-of-required",
                f"`{fact.path}` is required, so it is always present",
                expr.span,
                "mark the fact `optional`, or drop the test",
            )
        elif fact.default is not None:
            self._warn(
                "presence-of-required",
                f"`{fact.path}` has a default, so it is always present",
                expr.span,
                "drop the test, or drop the default to tell a missing value apart",
            )
        return p.PresenceNode(fact.path, expr.present, p.BOOLEAN, expr)


# ---------------------------------------------------------------------------
# helpers

_HEADER_HELP = {
    "title": 'add `title "..."`: one line for people',
    "version": 'add `version "YYYY-MM-DD"`: the version name, usually its effective date',
    "effective": "add `effective YYYY-MM-DD`: the first day the version is in force",
    "status": "add `status draft`, `status proposed` or `status in-force`",
    "source": 'add `source "..."`: the citation of the text this version implements',
}


def _same(a: p.Type, b: p.Type) -> bool:
    return a.base == b.base and a.enum == b.enum and a.is_set == b.is_set


def _literal_type(value: Any) -> p.Type:
    if isinstance(value, bool):
        return p.BOOLEAN
    if isinstance(value, Decimal):
        return p.NUMBER
    if isinstance(value, date):
        return p.DATE
    return p.STRING


def _round_constant(value: p.Value, written: s.TypeExpr) -> p.Value:
    """A number constant at the scale its decision declares (other constants as they are)."""
    if isinstance(value, Decimal) and written.scale is not None and written.rounding is not None:
        rounded = numbers.round_to(value, written.scale, written.rounding.name)
        return value if rounded is None else rounded
    return value


def _example_value(type_: p.Type, enums: dict[str, s.EnumDecl]) -> str:
    """A constant of a type, as an author would write it (for help texts)."""
    if type_.is_set:
        return "`<>` (the empty set)"
    if type_.base == "enum":
        decl = enums.get(type_.enum or "")
        return f"`{decl.values[0].name}`" if decl is not None and decl.values else "an enumeration value"
    return {"boolean": "`false`", "number": "`0`", "string": '`""`', "date": "`2020-01-01`"}[type_.base]


def _list(values: Iterable[str]) -> str:
    shown = [f"`{v}`" for v in values]
    return ", ".join(shown[:12]) + (", ..." if len(shown) > 12 else "")


def _text_field(item: s.HeaderField | None) -> str:
    return str(item.value) if item is not None else ""


def _date_field(item: s.HeaderField | None) -> date | None:
    return item.value if item is not None and isinstance(item.value, date) else None


def _data_date(raw: Any) -> date | None:
    if raw is None:
        return None
    try:
        return date.fromisoformat(str(raw))
    except ValueError as exc:
        raise ValueError(f"`{raw}` is not a date (YYYY-MM-DD)") from exc


_DECIMAL_TEXT = re.compile(r"-?[0-9]{1,100}(\.[0-9]{1,100})?([eE][-+]?[0-9]{1,3})?", re.ASCII)


def convert_scalar(raw: Any, type_: p.Type, enums: dict[str, tuple[str, ...]]) -> p.Value:
    """Convert a JSON scalar to a policy value of the given type (shared by tables and cases)."""
    base = type_.base
    if base == "boolean" and isinstance(raw, bool):
        return raw
    if base == "number" and not isinstance(raw, bool) and isinstance(raw, int | float | str):
        if isinstance(raw, str) and not _DECIMAL_TEXT.fullmatch(raw):  # not "1_000", "١٢", "1e3"
            raise ValueError(
                f'expected a number (an integer or a decimal string such as "12.50"), found {json.dumps(raw)}'
            )
        try:
            return Decimal(str(raw))
        except InvalidOperation:
            pass
    if base == "string" and isinstance(raw, str):
        return raw
    if base == "date" and isinstance(raw, str):
        return _data_date(raw) or date.min
    if base == "enum" and isinstance(raw, str):
        values = enums.get(type_.enum or "", ())
        if raw in values:
            return raw
        hint = did_you_mean(raw, values)
        raise ValueError(f"`{raw}` is not a value of `{type_.enum}`" + (f" ({hint})" if hint else ""))
    raise ValueError(f"expected a {type_}, found {json.dumps(raw)}")
