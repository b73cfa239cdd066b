"""Evaluation: validate a case, run the compiled rules, apply precedence, build the decision and trace.

A `CompiledPolicy` is immutable after construction and shares nothing mutable between
calls, so one instance serves many threads. Outcome combination depends only on which
rules fired, so it is computed once per distinct set of fired rules and cached.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ValidationError

from engine import program as p
from engine import syntax as s
from engine.cases import pydantic_problem, value_at
from engine.compiler import CompiledRules, Tables, compile_program
from engine.errors import CaseError, case_problem
from engine.frozen import FrozenDict, frozen_dict, frozen_list
from engine.inputs import compile_inputs
from engine.models import (
    ConditionKind,
    ConditionTrace,
    Conflict,
    ConflictClaim,
    Decision,
    DecisionValue,
    OutcomeItem,
    RuleRef,
    RuleStatus,
    RuleTrace,
    Trace,
    case_model,
    to_json_value,
)

Claim = tuple[int, Any, int | None]  # (rule index, constant value, outcome index if computed)
OpenDecision = tuple[tuple[Claim, ...], tuple[int, ...]]


@dataclass(frozen=True)
class Resolution:
    """Precedence applied to one set of fired rules: what is effective and what it decides."""

    effective: tuple[int, ...]
    unknown: tuple[int, ...]
    overridden_by: FrozenDict[int, tuple[int, ...]]  # read-only, like everything in it: a Resolution
    decisions: FrozenDict[str, DecisionValue]  # is shared by every caller with the same fired rules
    obligations: tuple[OutcomeItem, ...]
    recommendations: tuple[OutcomeItem, ...]
    conflicts: tuple[Conflict, ...]
    fired_ids: tuple[str, ...]
    #: Decisions an effective rule computes from the case (`decide d = a / b`): their claims
    #: (rule, constant value or None, outcome index when computed) and undetermined rules.
    #: Settled per case by `CompiledPolicy._settle`; empty for policies of constant outcomes.
    open: dict[str, OpenDecision] = field(default_factory=dict)


@dataclass(frozen=True)
class RawTrace:
    """What the explain path recorded for one case (see `CompiledPolicy.explain_raw`)."""

    resolution: Resolution
    values: list[Any]
    derived: list[Any]
    facts: dict[str, Any]
    when: date


def content_hash(program: p.Program) -> str:
    """sha256 over every file the version was built from: policy, vocabularies and tables."""
    digest = hashlib.sha256()
    for text in program.sources.values():
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


class CompiledPolicy:
    """One checked, compiled policy version. Immutable and thread-safe."""

    def __init__(self, program: p.Program):
        self.program = program
        self.info = program.info
        self.content_hash = content_hash(program)
        self.rules: CompiledRules = compile_program(program)
        self._case_model: type[BaseModel] | None = None
        self._case_model_lock = threading.Lock()
        self._accept, self._trusted = compile_inputs(program)
        self._decide_case = self.rules.decide_case
        self._rule_refs = tuple(
            RuleRef.model_construct(rule=r.id, citations=frozen_list(r.citations), description=r.description)
            for r in program.rules
        )
        self._overriders = self._overrider_index()
        self._order = self._precedence_order()
        self._rank = {rule: position for position, rule in enumerate(self._order)}
        self._expanded_reads = {name: self._expand(name, set()) for name in program.derived}
        self._defaults = {k: f.default for k, f in program.facts.items() if f.default is not None}
        # Everything about a trace that does not depend on the case is worked out once, here.
        self._slot_text = tuple(s.unparse(slot.node.source) for slot in self.rules.slots)
        self._slot_kind: tuple[ConditionKind, ...] = tuple(
            _KIND.get(type(slot.node), "test") for slot in self.rules.slots
        )
        self._slot_computed = tuple(
            tuple(
                (s.unparse(self.rules.computed[i - len(self.rules.slots)].source), i) for i in slot.computed
            )
            for slot in self.rules.slots
        )
        self._slot_reads = tuple(
            () if slot.children else tuple(self._leaf_reads(slot.node)) for slot in self.rules.slots
        )
        self._rule_reads = tuple(
            tuple(dict.fromkeys(n for node in (r.condition, *r.unless) for n in self._leaf_reads(node)))
            for r in program.rules
        )
        self._outcome_texts = tuple(tuple(_outcome_text(o) for o in r.outcomes) for r in program.rules)
        self._decisions_cache: dict[tuple[tuple[int, ...], date], Decision] = {}
        self._resolutions: dict[tuple[int, ...], Resolution] = {}
        self._tables_at: dict[date, Tables] = {}
        self._lock = threading.Lock()
        self._default_tables = self.tables_at(self.info.effective or date.today())

    @property
    def case_model(self) -> type[BaseModel]:
        """The pydantic model of a case, built on first need: exactly-typed cases never reach it
        (`inputs.accept` takes them), so a load and an evaluate of a good case skip building it."""
        model = self._case_model
        if model is None:
            with self._case_model_lock:
                if self._case_model is None:
                    self._case_model = case_model(self.program)
                model = self._case_model
        return model

    # -- public --------------------------------------------------------------
    def evaluate(self, case: Mapping[str, Any], *, trace: bool = False, at: date | None = None) -> Decision:
        """Validate a case and decide it; with `trace=True` the decision carries the full trace."""
        facts = self.validate(case)
        return self.decide_facts(facts, trace=trace, at=at)

    def validate(self, case: Mapping[str, Any]) -> dict[str, Any]:
        """Check a case against the fact declarations; raise `CaseError` listing every bad field."""
        fast = self._accept(case)  # the common, exactly-typed case, without pydantic
        if fast is not None:
            return fast
        if not isinstance(case, Mapping):
            raise CaseError(
                [
                    case_problem(
                        "(case)", f"a case is a JSON object, not {type(case).__name__}", "invalid-case"
                    )
                ]
            )
        data = {k: v for k, v in case.items() if not str(k).startswith("$")}
        try:
            model = self.case_model.model_validate(data)
        except ValidationError as exc:
            raise CaseError([pydantic_problem(e, self.program) for e in exc.errors()]) from None
        return self._flatten(model.model_dump(by_alias=True))

    def decide_facts(self, facts: dict[str, Any], *, trace: bool = False, at: date | None = None) -> Decision:
        """Decide already-validated, flat facts (the path batch jobs and benchmarks use)."""
        when = at or self.info.effective or date.today()
        tables = self.tables_at(when)
        if trace:
            raw = self.explain_raw(facts, at=when)
            return self._decision(raw.resolution, when, self.trace_of(raw))
        key = (tuple(self.rules.decide(facts, tables)), when)
        if self.rules.values is not None:
            resolution = self.resolve(key[0])
            if resolution.open:  # values computed from this case: not cacheable by fired rules
                return self._decision(self._settle(resolution, facts, tables), when, None)
        cached = self._decisions_cache.get(key)
        if cached is None:  # an untraced decision depends only on the fired rules and the date
            cached = self._decision(self.resolve(key[0]), when, None)
            with self._lock:
                cached = self._decisions_cache.setdefault(key, cached)
        return cached

    def decide_trusted(self, case: Mapping[str, Any], at: date | None = None) -> Resolution:
        """Decide a case the caller vouches for (already valid), skipping validation: the raw path.

        The compiled rules read the nested case directly: records as dicts, sets as lists or
        sets, numbers as int or Decimal, dates as `datetime.date`. Give it an invalid case
        and the answer is undefined; use `evaluate` for anything from outside.
        """
        tables = self._default_tables if at is None else self.tables_at(at)
        try:
            key = tuple(self._decide_case(case, tables))
        except (KeyError, TypeError, AttributeError) as exc:
            raise CaseError(
                [
                    case_problem(
                        "(case)",
                        f"is not a valid case ({exc!r}); use evaluate() for unchecked input",
                        "invalid-case",
                    )
                ]
            ) from None
        resolution = self._resolutions.get(key) or self.resolve(key)
        return self._settle(resolution, case, tables, nested=True) if resolution.open else resolution

    def explain_trusted(self, case: Mapping[str, Any], at: date | None = None) -> RawTrace:
        """The raw trace of a trusted case (see `decide_trusted` for what trusted means)."""
        facts = self._trusted(case)
        if facts is None:
            raise CaseError(
                [
                    case_problem(
                        "(case)", "is not a valid case; use evaluate() for unchecked input", "invalid-case"
                    )
                ]
            )
        return self.explain_raw(facts, at=at)

    def explain_raw(self, facts: dict[str, Any], at: date | None = None) -> RawTrace:
        """The whole trace as recorded: every condition's value and precedence applied, no models yet.

        `trace_of` turns it into the pydantic `Trace`; batch jobs that keep only some
        traces pay for the models only for those.
        """
        when = at or self.info.effective or date.today()
        tables = self.tables_at(when)
        values, derived, key = self.rules.explain(facts, tables)
        resolution = self.resolve(tuple(key))
        if resolution.open:
            resolution = self._settle(resolution, facts, tables)
        return RawTrace(resolution, values, derived, facts, when)

    def trace_of(self, raw: RawTrace) -> Trace:
        """The pydantic trace of a raw one."""
        return self._trace(raw.facts, raw.values, raw.derived, raw.resolution)

    def fired(self, facts: dict[str, Any], at: date | None = None) -> list[int]:
        """Indexes of the rules whose conditions hold (before precedence): the raw fast path."""
        return self.rules.decide(facts, self.tables_at(at or self.info.effective or date.today()))

    def tables_at(self, when: date) -> Tables:
        """Each table as a plain dict of the entries in force on a date, cached per date."""
        cached = self._tables_at.get(when)
        if cached is None:
            cached = tuple(_table_snapshot(self.program.tables[n], when) for n in self.rules.table_names)
            with self._lock:
                self._tables_at.setdefault(when, cached)
        return cached

    # -- precedence ---------------------------------------------------------------
    def _overrider_index(self) -> dict[int, tuple[int, ...]]:
        index_of = {r.id: i for i, r in enumerate(self.program.rules)}
        overriders: dict[int, list[int]] = {i: [] for i in range(len(self.program.rules))}
        for i, rule in enumerate(self.program.rules):
            for target in rule.overrides:
                overriders[index_of[target]].append(i)
        return {k: tuple(v) for k, v in overriders.items()}

    def _precedence_order(self) -> tuple[int, ...]:
        """Rules ordered so every overriding rule comes before the rules it overrides."""
        order: list[int] = []
        placed: set[int] = set()

        def place(i: int) -> None:
            if i in placed:
                return
            placed.add(i)
            for o in self._overriders[i]:
                place(o)
            order.append(i)

        for i in range(len(self.program.rules)):
            place(i)
        return tuple(order)

    def resolve(self, fired: tuple[int, ...]) -> Resolution:
        """Apply precedence and combine outcomes; cached per set of fired rules."""
        cached = self._resolutions.get(fired)
        if cached is None:
            cached = self._resolve(fired)
            with self._lock:
                self._resolutions.setdefault(fired, cached)
        return cached

    def _resolve(self, key: tuple[int, ...]) -> Resolution:
        fired_set = {i for i in key if i >= 0}
        unknown = tuple(sorted(~i for i in key if i < 0))
        effective: set[int] = set()
        overridden_by: dict[int, tuple[int, ...]] = {}
        for i in sorted(
            fired_set, key=self._rank.__getitem__
        ):  # only the fired rules: O(fired), not O(rules)
            winners = tuple(o for o in self._overriders[i] if o in effective)
            if winners:
                overridden_by[i] = winners
            else:
                effective.add(i)
        ordered = tuple(sorted(effective))
        unknown = tuple(i for i in unknown if not any(o in effective for o in self._overriders[i]))
        decisions, conflicts, open_ = self._decisions(ordered, unknown)
        return Resolution(
            effective=ordered,
            unknown=unknown,
            overridden_by=frozen_dict(overridden_by),
            decisions=frozen_dict(decisions),
            obligations=self._accumulate(ordered, "require"),
            recommendations=self._accumulate(ordered, "recommend"),
            conflicts=conflicts,
            fired_ids=tuple(self.program.rules[i].id for i in ordered),
            open=open_,
        )

    def _decisions(
        self, effective: tuple[int, ...], unknown: tuple[int, ...]
    ) -> tuple[dict[str, DecisionValue], tuple[Conflict, ...], dict[str, OpenDecision]]:
        """Combine the effective rules' claims per decision; decisions with a computed claim stay open."""
        claims: dict[str, list[Claim]] = {name: [] for name in self.program.decisions}
        for i in effective:
            for k, outcome in enumerate(self.program.rules[i].outcomes):
                if outcome.kind == "decide":
                    claims[outcome.name].append((i, outcome.value, None if outcome.computed is None else k))
        decisions: dict[str, DecisionValue] = {}
        conflicts: list[Conflict] = []
        open_: dict[str, OpenDecision] = {}
        for name in self.program.decisions:
            pending = tuple(i for i in unknown if self._decides(i, name))
            if any(k is not None for _, _, k in claims[name]):  # settled per case (`_settle`)
                open_[name] = (tuple(claims[name]), pending)
                decisions[name] = DecisionValue.model_construct(
                    value=None,
                    rules=frozen_list(self._rule_refs[i] for i, _, _ in claims[name]),
                    undetermined_by=frozen_list(),
                )
                continue
            value, conflict = self._combine(name, [(i, v) for i, v, _ in claims[name]], pending)
            decisions[name] = value
            if conflict is not None:
                conflicts.append(conflict)
        return decisions, tuple(conflicts), open_

    def _combine(
        self, name: str, claims: list[tuple[int, Any]], pending: tuple[int, ...]
    ) -> tuple[DecisionValue, Conflict | None]:
        """One decision's value from its claims: none (the default), one value, or a conflict."""
        info = self.program.decisions[name]
        undetermined = [self._rule_refs[i] for i in pending]
        values = {v for _, v in claims}
        rules = [self._rule_refs[i] for i, _ in claims]
        if not values:
            return _value(info.default, [], undetermined, default=True), None
        if len(values) == 1:
            return _value(values.pop(), rules, undetermined), None
        conflict = Conflict.model_construct(
            decision=name,
            claims=frozen_list(
                ConflictClaim.model_construct(
                    rule=self.program.rules[i].id,
                    value=v,
                    citations=frozen_list(self.program.rules[i].citations),
                )
                for i, v in claims
            ),
        )
        return _value(None, rules, undetermined), conflict

    def _settle(self, res: Resolution, facts: Any, tables: Tables, nested: bool = False) -> Resolution:
        """Fill in the decisions whose value the effective rules compute from this case.

        A computed value that is unknown (a division by zero, a missing fact) leaves its rule
        undetermined for that decision, as a rule that could not be evaluated does.
        """
        if not res.open:
            return res
        compute = self.rules.values_case if nested else self.rules.values
        assert compute is not None
        computed = compute(facts, tables, frozenset(res.effective))
        decisions = dict(res.decisions)
        conflicts = [c for c in res.conflicts if c.decision not in res.open]
        for name, (claims, pending) in res.open.items():
            concrete: list[tuple[int, Any]] = []
            late = list(pending)
            for i, value, k in claims:
                if k is not None:
                    value = computed.get((i, k))
                    if value is None:
                        late.append(i)
                        continue
                concrete.append((i, value))
            decisions[name], conflict = self._combine(name, concrete, tuple(sorted(late)))
            if conflict is not None:
                conflicts.append(conflict)
        order = {name: n for n, name in enumerate(self.program.decisions)}
        conflicts.sort(key=lambda c: order[c.decision])
        return replace(res, decisions=frozen_dict(decisions), conflicts=tuple(conflicts), open={})

    def _decides(self, index: int, decision: str) -> bool:
        return any(o.kind == "decide" and o.name == decision for o in self.program.rules[index].outcomes)

    def _accumulate(self, effective: tuple[int, ...], kind: str) -> tuple[OutcomeItem, ...]:
        by_name: dict[str, list[int]] = {}
        for i in effective:
            for outcome in self.program.rules[i].outcomes:
                if outcome.kind == kind:
                    by_name.setdefault(outcome.name, []).append(i)
        items = []
        for name, rules in by_name.items():
            citations: tuple[str, ...] = ()
            if kind == "require":
                description = self.program.obligations[name]
            else:
                description, citations = self.program.recommendations[name]
            items.append(
                OutcomeItem.model_construct(
                    name=name,
                    description=description,
                    citations=frozen_list(citations),
                    rules=frozen_list(self._rule_refs[i] for i in rules),
                )
            )
        return tuple(items)

    # -- building the answer ------------------------------------------------------------
    def _decision(self, resolution: Resolution, when: date, trace: Trace | None) -> Decision:
        return Decision.model_construct(
            policy=self.info.id,
            version=self.info.version,
            title=self.info.title,
            source=self.info.source,
            content_hash=self.content_hash,
            evaluated_at=when,
            decisions=resolution.decisions,
            obligations=frozen_list(resolution.obligations),
            recommendations=frozen_list(resolution.recommendations),
            conflicts=frozen_list(resolution.conflicts),
            fired=frozen_list(resolution.fired_ids),
            unknown=frozen_list(self.program.rules[i].id for i in resolution.unknown),
            trace=trace,
        )

    def _trace(self, facts: dict[str, Any], values: list[Any], derived: list[Any], res: Resolution) -> Trace:
        derived_map = dict(zip(self.rules.derived_names, derived, strict=True))
        defaults = [k for k, v in facts.items() if v is None and k in self._defaults]
        if defaults:  # show the value the rules used, and say it was the declared default
            facts = {**facts, **{k: self._defaults[k] for k in defaults}}
        known = {**facts, **derived_map}
        rules = []
        for i, rule in enumerate(self.program.rules):
            cond, unless = self.rules.rule_slots[i]
            rules.append(self._rule_trace(i, rule, cond, unless, values, known, res))
        return Trace.model_construct(
            facts={k: to_json_value(v) for k, v in facts.items()},
            derived={k: to_json_value(v) for k, v in derived_map.items()},
            rules=rules,
            defaults=defaults,
        )

    def _rule_trace(
        self,
        i: int,
        rule: p.RuleInfo,
        cond: int,
        unless: tuple[int, ...],
        values: list[Any],
        known: dict[str, Any],
        res: Resolution,
    ) -> RuleTrace:
        condition = self._condition_trace(cond, values, known)
        unless_traces = [self._condition_trace(u, values, known) for u in unless]
        status: RuleStatus
        if i in res.effective:
            status = "fired"
        elif i in res.overridden_by:
            status = "overridden"
        elif values[cond] is not False and all(values[u] is not True for u in unless):
            status = "unknown"  # neither fired nor ruled out: it hangs on a missing value
        else:
            status = "not_fired"
        missing = []
        if status == "unknown":
            missing = sorted(
                n for n in self._rule_reads[i] if known.get(n) is None and n in self.program.facts
            )
        return RuleTrace.model_construct(
            rule=rule.id,
            description=rule.description,
            citations=list(rule.citations),
            status=status,
            overridden_by=[self.program.rules[o].id for o in res.overridden_by.get(i, ())],
            overrides=list(rule.overrides),
            condition=condition,
            unless=unless_traces,
            outcomes=list(self._outcome_texts[i]),
            missing=missing,
        )

    def _expand(self, name: str, seen: set[str]) -> list[str]:
        """The facts and derived facts a derived fact reads, transitively, in order of appearance."""
        out: list[str] = []
        for read in p.reads(self.program.derived[name].node):
            if read in seen:
                continue
            seen.add(read)
            out.append(read)
            if read in self.program.derived:
                out += self._expand(read, seen)
        return out

    def _leaf_reads(self, node: p.Node) -> list[str]:
        """What a condition read, with each derived fact followed by what it was derived from."""
        names: list[str] = []
        for name in p.reads(node):
            for item in [name, *self._expanded_reads.get(name, [])]:
                if item not in names:
                    names.append(item)
        return names

    def _condition_trace(self, index: int, values: list[Any], known: dict[str, Any]) -> ConditionTrace:
        slot = self.rules.slots[index]
        computed = {text: _computed_json(values[i]) for text, i in self._slot_computed[index]}
        return ConditionTrace.model_construct(
            condition=self._slot_text[index],
            kind=self._slot_kind[index],
            value=values[index],
            reads={name: to_json_value(known.get(name)) for name in self._slot_reads[index]},
            computed=computed,
            children=[self._condition_trace(c, values, known) for c in slot.children],
        )

    # -- input ---------------------------------------------------------------------------
    def _flatten(self, dumped: dict[str, Any]) -> dict[str, Any]:
        """Pydantic's nested dump → flat `{"end_user.type": ...}` with sets as frozensets."""
        flat: dict[str, Any] = {}
        for path, fact in self.program.facts.items():
            value = value_at(dumped, path)
            if fact.type.is_set and value is not None:
                value = frozenset(value)
            flat[path] = value
        return flat


def _value(
    value: str | None, rules: list[RuleRef], pending: list[RuleRef], default: bool = False
) -> DecisionValue:
    """A decision value as the caches share it: read-only lists (engine/frozen.py)."""
    return DecisionValue.model_construct(
        value=value, default=default, rules=frozen_list(rules), undetermined_by=frozen_list(pending)
    )


_KIND: dict[type, ConditionKind] = {p.AndNode: "and", p.OrNode: "or", p.NotNode: "not"}


def _outcome_text(outcome: p.OutcomeInfo) -> str:
    if outcome.kind == "decide":
        return f"decide {outcome.name} = {outcome.text if outcome.text is not None else outcome.value}"
    return f"{outcome.kind} {outcome.name}"


def _computed_json(value: Any) -> Any:
    """A computed number as JSON text without the trailing zeros exact division leaves (25.000100)."""
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    return to_json_value(value)


def _table_snapshot(table: p.TableInfo, when: date) -> dict[Any, Any]:
    return {
        e.key: e.value
        for e in table.entries
        if (e.effective is None or e.effective <= when) and (e.ends is None or when <= e.ends)
    }
