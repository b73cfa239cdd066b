"""`policy check --deep` and `policy why-not`: complete proofs about one version, with z3.

- rules that can never fire (the condition is unsatisfiable with its unless clauses), with the
  clauses that contradict each other (an unsat core);
- rules that fire but never take effect (always overridden), with the exceptions that do it;
- every unresolved conflict: each pair of rules that can both take effect and decide one
  decision differently, with a minimal witness replayed by the evaluator and both spans;
- the region where each decision falls to its default (a note: usual, and worth reading);
- `why_not`: the smallest sets of fact changes that would give a case a wanted outcome,
  each replayed, or "impossible" with the rules that block it.

`SolverReasoner` answers the linter's question ("can this formula be true?") by proof, for
the one reasoner of the engine to plug in behind its interface.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import z3

from engine import program as p
from engine import syntax as s
from engine.api import Policy
from engine.checker import CheckResult, check_file
from engine.errors import CaseError, Diagnostic, Severity, Span, has_errors
from engine.proofs import (
    AtomBook,
    Budget,
    Meaning,
    Output,
    ProofError,
    factor,
    literal_count,
    replayed_values,
    shown_facts,
)
from engine.runtime import CompiledPolicy
from engine.symbolic import Bool, Encoder, FactSpace, conj, disj, neg

#: Lint-style codes of the deep check (docs/analysis.md).
NEVER_FIRES = "rule-never-fires"
NEVER_EFFECTIVE = "rule-shadowed"
CONFLICT_CODE = "conflict"
DEFAULT_REGION = "decision-default-region"
INCOMPLETE = "proof-incomplete"

#: How many default-region parts are written out per decision, and for how long they are sought.
MAX_DEFAULT_PARTS = 12
DEFAULT_REGION_SECONDS = 2.0
MAX_SHORTEST_ATOMS = 200  # above: irredundant parts, not the shortest (a note is not worth seconds)


@dataclass
class DeepResult:
    """The findings of a deep check, and whether a bound stopped any proof."""

    diagnostics: list[Diagnostic]
    incomplete: list[str] = field(default_factory=list)
    queries: int = 0


class _Prover:
    """One version at one date: its formulas, the vocabulary, and a solver per question."""

    def __init__(
        self, policy: CompiledPolicy, at: date | None, budget: Budget, numbers: tuple[Any, ...] = ()
    ):
        self.policy = policy
        self.program = policy.program
        self.at = at or self.program.info.effective or date.today()
        self.budget = budget
        self.space = FactSpace([self.program], numbers)  # a case's own numbers set the search scale too
        self.enc = Encoder(self.program, self.at, self.space)
        self.vocabulary = self.space.constraints()
        self._shared: z3.Solver | None = None

    def solver(self, *formulas: Bool) -> z3.Solver:
        solver = self.budget.solver()
        solver.add(self.vocabulary, *formulas)
        return solver

    @property
    def shared(self) -> z3.Solver:
        """One incremental solver holding the vocabulary: queries are assumptions, so what it
        learns about the policy carries over from one question to the next."""
        if self._shared is None:
            self._shared = self.solver()
        return self._shared

    def sat(self, *formulas: Bool) -> bool | None:
        result = self.budget.check(self.shared, conj(list(formulas)))
        return None if result == z3.unknown else result == z3.sat

    def model_case(self) -> dict[str, Any]:
        """The case of the shared solver's last model."""
        return self.space.case(self.shared.model())

    def witness(self, *formulas: Bool) -> dict[str, Any] | None:
        """A minimal case (fewest facts set) satisfying the formulas."""
        opt = z3.Optimize()
        opt.set("timeout", self.budget.timeout_ms)
        opt.add(self.vocabulary, *formulas)
        for soft in self.space.neutral():
            opt.add_soft(soft)
        if self.budget.check(opt) == z3.sat:
            return self.space.case(opt.model())
        solver = self.solver(*formulas)
        return self.space.case(solver.model()) if self.budget.check(solver) == z3.sat else None

    def replay(self, case: dict[str, Any]) -> Any:
        try:
            return self.policy.resolve(tuple(self.policy.fired(self.policy.validate(case), at=self.at)))
        except CaseError as exc:
            raise ProofError(f"witness {json.dumps(case)} is not a valid case: {exc.problems}") from None


def deep_check(policy: CompiledPolicy, at: date | None = None, budget: Budget | None = None) -> DeepResult:
    """Every never-firing, never-effective rule, every conflict, and each decision's default region."""
    budget = budget or Budget()
    prover = _Prover(policy, at, budget)
    found: list[Diagnostic] = []
    fires, effective = _witnessed(prover)
    for index, rule in enumerate(prover.program.rules):
        found += _reachability(prover, index, rule, index in fires, index in effective)
    for name in prover.program.decisions:
        found += _conflicts(prover, name)
        found += _default_region(prover, name)
    if budget.hit:
        found.append(
            Diagnostic.at(
                INCOMPLETE,
                "the deep check is incomplete: " + "; ".join(dict.fromkeys(budget.hit)),
                _header_span(prover.program),
                "raise --timeout or --max-regions; what is reported was proved, the rest was not",
                severity=Severity.WARNING,
            )
        )
    return DeepResult(found, list(dict.fromkeys(budget.hit)), budget.queries)


def check_deep(paths: Iterable[str | Path], budget: Budget | None = None) -> list[CheckResult]:
    """`policy check --deep`: `api.check` with the complete proofs instead of the sampled conflict search."""
    from engine.api import policy_files

    return deepen([check_file(file) for file in policy_files(paths)], budget)


def deepen(results: list[CheckResult], budget: Budget | None = None) -> list[CheckResult]:
    """`policy check --deep`: each checked policy's sampled conflicts replaced by the complete proofs."""
    out = []
    for result in results:
        program = result.program
        kept = [d for d in result.diagnostics if d.code != CONFLICT_CODE]  # sampled: proved again below
        if (
            program is None
            or has_errors(kept)
            or program.syntax is None
            or program.syntax.header.kind != "policy"
        ):
            out.append(result)
            continue
        deep = deep_check(CompiledPolicy(program), budget=budget or Budget())
        out.append(CheckResult(program, kept + deep.diagnostics, result.sources))
    return out


def _header_span(program: p.Program) -> Span:
    if program.syntax is not None:
        return program.syntax.header.span
    return Span(program.info.path, 1, 1, 1, 1)


def _witnessed(prover: _Prover) -> tuple[set[int], set[int]]:
    """Rules shown to fire and to take effect by some case, many per query.

    Each model the solver gives is decided by the evaluator, and every rule that fires (or takes
    effect) on it is settled at once: with a thousand rules, a few hundred queries, not thousands.
    The evaluator's answer is the witness, so nothing here trusts the solver.
    """
    enc = prover.enc
    count = len(prover.program.rules)
    fired: set[int] = set()
    effective: set[int] = set()
    for wanted, target, formula in (("fires", fired, enc.fires), ("effective", effective, enc.effective)):
        open_ = [i for i in range(count) if i not in target and (wanted == "fires" or i in fired)]
        while open_:
            if prover.budget.check(prover.shared, disj([formula(i) for i in open_[:64]])) != z3.sat:
                if len(open_) <= 64:
                    break
                open_ = open_[64:]  # none of these 64 can: each is settled one by one below
                continue
            resolution = prover.replay(prover.model_case())
            keys = set(resolution.effective) | set(resolution.overridden_by)  # fired: effective or overridden
            got = keys if wanted == "fires" else set(resolution.effective)
            fired |= keys
            effective |= set(resolution.effective)  # the same witness settles both questions
            if not got & set(open_[:64]):
                raise ProofError(
                    f"the evaluator does not confirm a rule that {wanted} on {prover.model_case()}"
                )
            target |= got
            open_ = [i for i in open_ if i not in target]
    return fired, effective


def _reachability(
    prover: _Prover, index: int, rule: p.RuleInfo, seen_firing: bool, seen_effective: bool
) -> list[Diagnostic]:
    enc = prover.enc
    if seen_effective:
        return []
    fires = True if seen_firing else prover.sat(enc.fires(index))
    if fires is None:
        return []
    if not fires:
        return [
            Diagnostic.at(
                NEVER_FIRES,
                f"rule `{rule.id}` can never fire: {_never_fires_reason(prover, rule)}",
                rule.decl.id.span,
                "look for contradictory tests of one fact (`x = A and x = B`), an empty set, "
                "or a test and its negation",
            )
        ]
    overriders = prover.enc.overriders[index]
    if not overriders or prover.sat(enc.effective(index)) is not False:
        return []
    always = [
        prover.program.rules[o].id
        for o in overriders
        if prover.sat(enc.fires(index), neg(enc.effective(o))) is False
    ]
    names = ", ".join(f"`{x}`" for x in always)
    by = names if always else "one of " + ", ".join(f"`{prover.program.rules[o].id}`" for o in overriders)
    return [
        Diagnostic.at(
            NEVER_EFFECTIVE,
            f"rule `{rule.id}` can fire but never takes effect: whenever it fires, {by} overrides it",
            rule.decl.id.span,
            "narrow the exception's condition, or remove the rule it always displaces",
        )
    ]


def _never_fires_reason(prover: _Prover, rule: p.RuleInfo) -> str:
    """The clauses that cannot hold together, from an unsat core over the rule's parts."""
    enc = prover.enc
    parts: list[tuple[str, Bool]] = []
    condition = rule.condition
    conjuncts = condition.operands if isinstance(condition, p.AndNode) else (condition,)
    for node in conjuncts:
        parts.append((f"`{s.unparse(node.source)}`", enc.truth(node)[0]))
    for clause in rule.unless:
        parts.append((f"`unless {s.unparse(clause.source)}`", enc.truth(clause)[1]))
    solver = prover.solver()
    marks = {z3.Bool(f"part{i}"): text for i, (text, _) in enumerate(parts)}
    for mark, (_, formula) in zip(marks, parts, strict=True):
        solver.add(z3.Implies(mark, formula))
    if prover.budget.check(solver, *marks) != z3.unsat:
        return "its condition and unless clauses cannot all hold"
    core = [marks[m] for m in solver.unsat_core() if m in marks]
    core = _shrink(prover, solver, marks, core)
    if len(core) == 1:
        if core[0].startswith("`unless"):
            return f"{core[0]} always holds"
        return f"no valid case makes {core[0]} true"
    if any(c.startswith("`unless") for c in core):
        return (
            "in every case where "
            + " and ".join(c for c in core if not c.startswith("`unless"))
            + ", "
            + " and ".join(c for c in core if c.startswith("`unless"))
            + " holds too"
        )
    return " and ".join(core) + " cannot hold together"


def _shrink(prover: _Prover, solver: z3.Solver, marks: dict[Any, str], core: list[str]) -> list[str]:
    """A minimal core: drop each part the contradiction does not need."""
    by_text = {text: mark for mark, text in marks.items()}
    keep = list(core)
    for text in list(keep):
        trial = [t for t in keep if t != text]
        if trial and prover.budget.check(solver, *[by_text[t] for t in trial]) == z3.unsat:
            keep = trial
    return keep


def _conflicts(prover: _Prover, decision: str) -> list[Diagnostic]:
    """Every pair of rules that can both take effect and decide `decision` differently.

    One query asks for any conflict on the decision (two values each claimed by an effective
    rule: a formula over the values, not over the pairs); the evaluator names the pair on the
    model's case, the pair is excluded and the question repeats until none is left.
    """
    enc = prover.enc
    claims = enc.claims(decision)
    values = list(claims)
    if len(values) < 2:
        return []
    has = {v: disj([enc.effective(i) for i in claims[v]]) for v in values}
    conflict = disj([conj([has[a], has[b]]) for k, a in enumerate(values) for b in values[k + 1 :]])
    deciding = {i: v for v, rules in claims.items() for i in rules}
    found: list[Diagnostic] = []
    reported: set[tuple[int, int]] = set()
    if prover.budget.check(prover.shared, conflict) != z3.sat:
        return found
    for i in sorted(deciding):  # per rule: any rule it can conflict with that is not reported yet?
        while True:
            others = [
                enc.effective(j)
                for j in deciding
                if deciding[j] != deciding[i] and (min(i, j), max(i, j)) not in reported
            ]
            if (
                not others
                or prover.budget.check(prover.shared, conj([enc.effective(i), disj(others)])) != z3.sat
            ):
                break
            resolution = prover.replay(prover.model_case())
            active = sorted(k for k in resolution.effective if k in deciding)
            pairs = [
                (a, b) for n, a in enumerate(active) for b in active[n + 1 :] if deciding[a] != deciding[b]
            ]
            new = [pair for pair in pairs if pair not in reported]
            if not new:
                raise ProofError(
                    f"the evaluator shows no new conflict on `{decision}` for {prover.model_case()}"
                )
            for pair in new:
                reported.add(pair)
                found.append(
                    _conflict(prover, decision, pair, conj([enc.effective(pair[0]), enc.effective(pair[1])]))
                )
            if len(found) > prover.budget.max_regions:
                prover.budget.hit.append(f"more than {prover.budget.max_regions} conflicts on `{decision}`")
                return found
    return found


def _conflict(prover: _Prover, decision: str, pair: tuple[int, int], formula: Bool) -> Diagnostic:
    program = prover.program
    i, j = pair
    a, b = program.rules[i], program.rules[j]
    witness = prover.witness(formula)
    if witness is None:
        raise ProofError(f"no witness for the conflict of `{a.id}` and `{b.id}`")
    resolution = prover.replay(witness)
    if not (i in resolution.effective and j in resolution.effective):
        raise ProofError(f"the evaluator does not confirm the conflict of `{a.id}` and `{b.id}` on {witness}")
    va = next(o.value for o in a.outcomes if o.kind == "decide" and o.name == decision)
    vb = next(o.value for o in b.outcomes if o.kind == "decide" and o.name == decision)
    shown = ", ".join(shown_facts(witness, _reads(prover, formula))) or "every fact at rest"
    return Diagnostic.at(
        CONFLICT_CODE,
        f"rules `{a.id}` and `{b.id}` can both take effect and decide `{decision}` differently "
        f"(`{va}` and `{vb}`)",
        b.decl.id.span,
        f"for example when {shown} (`{a.id}` is at {a.decl.id.span}); "
        f"make one an exception to the other with `overrides {a.id}` (or the reverse), or narrow a condition",
    )


def _reads(prover: _Prover, formula: Bool) -> set[str]:
    from engine.proofs import read_paths

    return read_paths([formula], prover.space)


def _default_region(prover: _Prover, decision: str) -> list[Diagnostic]:
    """Where no rule decides: written as a condition over the rules' own tests (a note)."""
    enc, program = prover.enc, prover.program
    info = program.decisions[decision]
    deciding = [i for rules in enc.claims(decision).values() for i in rules]
    none = conj([neg(enc.effective(i)) for i in deciding])
    if prover.sat(none) is not True:
        return []
    meaning = Meaning(program, prover.at)
    book = AtomBook(enc, enc, meaning, meaning)
    for i in deciding:
        book.collect_rule(program.rules[i], "b")
    for o in {o for i in deciding for o in enc.overriders[i]}:
        book.collect_rule(program.rules[o], "b")
    cubes = _cover(prover, none, book) if deciding else []
    span = info.span
    if not deciding:
        where = "always: no rule decides it"
    elif cubes is None:
        where = f"on some cases (more than {MAX_DEFAULT_PARTS} parts, or too many to write out in {DEFAULT_REGION_SECONDS:g} s)"
    else:
        condition = factor(cubes, book.atoms)
        where = (
            f"when {s.unparse(condition)}"
            if literal_count(condition) <= 24
            else (f"in {len(cubes)} parts, for example when {s.unparse(factor(cubes[:1], book.atoms))}")
        )
    witness = prover.witness(none)
    example = ", ".join(shown_facts(witness or {}, _reads(prover, none))) or "every fact at rest"
    version = f"{program.info.id} {program.info.version}"
    return [
        Diagnostic.at(
            DEFAULT_REGION,
            f"under {version}, decision `{decision}` falls to its default `{info.default}` {where}",
            span,
            severity=Severity.NOTE,
            help=f"for example {example}; no rule decides it there, which is usually the intent "
            "(the language has no `complete` declaration yet, so this is never an error)",
        )
    ]


def _cover(prover: _Prover, region: Bool, book: AtomBook) -> list[tuple[tuple[str, bool], ...]] | None:
    from engine.proofs import _generalise, cube_formula

    finder = prover.solver(region)
    cubes: list[tuple[tuple[str, bool], ...]] = []
    started = time.perf_counter()
    while len(cubes) < MAX_DEFAULT_PARTS and prover.budget.check(finder) == z3.sat:
        if time.perf_counter() - started > DEFAULT_REGION_SECONDS:
            return None  # a note, not a proof obligation: large policies get the example only
        cube = _generalise(
            finder.model(),
            region,
            book.atoms,
            prover.space,
            prover.vocabulary,
            prover.budget,
            shortest=len(book.atoms) <= MAX_SHORTEST_ATOMS,
        )
        if cube is None:
            return None
        cubes.append(cube)
        finder.add(neg(cube_formula(cube, book.atoms)))
    if len(cubes) >= MAX_DEFAULT_PARTS and prover.budget.check(finder) == z3.sat:
        return None
    return cubes


# ---------------------------------------------------------------------------
# The seam for the engine's one reasoner


class SolverReasoner:
    """The linter's questions, answered by proof: can a condition hold, a rule fire, take effect?

    Answers are True (a witness exists), False (proved impossible) or None (the solver timed
    out: no finding), the contract of `linter.Reasoner.satisfiable`, so the reasoner module can
    put this behind its interface and drop the sampler.
    """

    def __init__(self, policy: CompiledPolicy, at: date | None = None, budget: Budget | None = None):
        self._prover = _Prover(policy, at, budget or Budget())
        self._index = {r.id: i for i, r in enumerate(policy.program.rules)}

    def can_hold(self, node: p.Node) -> bool | None:
        """Some valid case makes the condition true."""
        return self._prover.sat(self._prover.enc.truth(node)[0])

    def can_fire(self, rule_id: str) -> bool | None:
        return self._prover.sat(self._prover.enc.fires(self._index[rule_id]))

    def can_take_effect(self, rule_id: str) -> bool | None:
        return self._prover.sat(self._prover.enc.effective(self._index[rule_id]))

    def can_conflict(self, first: str, second: str) -> dict[str, Any] | None:
        """A minimal case on which both rules take effect (replayed), or None."""
        i, j = self._index[first], self._index[second]
        formula = conj([self._prover.enc.effective(i), self._prover.enc.effective(j)])
        if self._prover.sat(formula) is not True:
            return None
        witness = self._prover.witness(formula)
        if witness is None:
            return None
        resolution = self._prover.replay(witness)
        if not (i in resolution.effective and j in resolution.effective):
            raise ProofError(f"the evaluator does not confirm `{first}` and `{second}` on {witness}")
        return witness


# ---------------------------------------------------------------------------
# why-not


@dataclass(frozen=True)
class Want:
    """A wanted outcome: `DECISION=VALUE`, `+OBLIGATION` (or recommendation), `-OBLIGATION`."""

    kind: Literal["decision", "obligation", "recommendation"]
    name: str
    value: str  # a decision value, or "yes" / "no" for an outcome

    @classmethod
    def parse(cls, text: str, program: p.Program) -> Want:
        """Read `--want`; raises ValueError with a message that says what is accepted."""
        text = text.strip()
        if text[:1] in "+-":
            name = text[1:].strip()
            kind: Literal["obligation", "recommendation"]
            if name in program.obligations:
                kind = "obligation"
            elif name in program.recommendations:
                kind = "recommendation"
            else:
                known = ", ".join(sorted([*program.obligations, *program.recommendations]))
                raise ValueError(
                    f"`{name}` is not an obligation or recommendation of this policy (it has: {known})"
                )
            return cls(kind, name, "yes" if text[0] == "+" else "no")
        name, eq, value = text.partition("=")
        name, value = name.strip(), value.strip()
        if not eq or name not in program.decisions:
            known = ", ".join(sorted(program.decisions))
            raise ValueError(
                f"`{text}` is not DECISION=VALUE or +OUTCOME (decisions of this policy: {known})"
            )
        values = program.enums[program.decisions[name].enum]
        if value not in values:
            raise ValueError(f"`{value}` is not a value of `{name}` (its values: {', '.join(values)})")
        return cls("decision", name, value)

    def label(self) -> str:
        if self.kind == "decision":
            return f"{self.name} = {self.value}"
        return f"{'+' if self.value == 'yes' else '-'} {self.name}"


@dataclass(frozen=True)
class FactChange:
    fact: str
    before: Any
    after: Any


@dataclass(frozen=True)
class WhyNot:
    """The answer: already so, up to three verified change sets, or impossible with the blockers."""

    want: Want
    status: Literal["already", "changes", "impossible", "incomplete"]
    options: tuple[tuple[FactChange, ...], ...] = ()
    blocking: tuple[str, ...] = ()
    reason: str = ""

    def dump(self) -> dict[str, Any]:
        return {
            "want": self.want.label(),
            "status": self.status,
            "options": [
                [{"fact": c.fact, "before": c.before, "after": c.after} for c in option]
                for option in self.options
            ],
            "blocking": list(self.blocking),
            "reason": self.reason,
        }


def why_not(
    policy: CompiledPolicy | Policy,
    case: dict[str, Any],
    want: Want | str,
    *,
    at: date | None = None,
    limit: int = 3,
    budget: Budget | None = None,
) -> WhyNot:
    """Up to `limit` smallest sets of fact changes that give `case` the wanted outcome.

    Each set is minimal (no subset works) and verified by deciding the changed case with the
    compiled evaluator. When no case at all gets the outcome, the rules that block it come from
    an unsat core over the rules' precedence (which rules' effects make it impossible).
    """
    if isinstance(policy, Policy):
        at = at or policy.at
        policy = policy.compiled
    if isinstance(want, str):
        want = Want.parse(want, policy.program)
    budget = budget or Budget()
    facts = policy.validate(case)  # raises CaseError for a bad case, as evaluate does
    numbers = tuple(
        Decimal(str(v))
        for path, v in facts.items()
        if v is not None and path in policy.program.facts and policy.program.facts[path].type == p.NUMBER
    )
    prover = _Prover(policy, at, budget, numbers)  # raises CaseError for a bad case, as evaluate does
    current = prover.replay(case)
    decision = policy.evaluate(case, at=prover.at)
    output = Output(want.kind, want.name)
    if replayed_values(decision, output) == want.value:
        return WhyNot(want, "already")
    goal = _goal(prover, want)
    if prover.sat(goal) is False:
        return WhyNot(
            want, "impossible", blocking=_blockers(prover, want), reason=_impossible_reason(prover, want)
        )
    pins = prover.space.pin(case)
    opt_rounds: list[tuple[FactChange, ...]] = []
    blocked: list[Bool] = []
    flat_before = _flat(case)
    for _ in range(limit):
        opt = z3.Optimize()
        opt.set("timeout", budget.timeout_ms)
        opt.add(prover.vocabulary, goal, *blocked)
        keep = {path: conj(parts) for path, parts in pins}
        for formula in keep.values():
            opt.add_soft(formula)
        result = budget.check(opt)
        if result != z3.sat:
            break
        model = opt.model()
        changed = [
            path
            for path, formula in keep.items()
            if not z3.is_true(model.eval(formula, model_completion=True))
        ]
        changed = _minimise(prover, goal, keep, changed, blocked)
        after_case = _apply(case, changed, prover.space.case(model, changed))
        option = tuple(
            FactChange(path, flat_before.get(path), _flat(after_case).get(path)) for path in changed
        )
        got = policy.evaluate(after_case, at=prover.at)
        if replayed_values(got, output) != want.value:
            raise ProofError(
                f"the evaluator does not give {want.label()} on the changed case {json.dumps(after_case)}"
            )
        opt_rounds.append(option)
        blocked.append(disj([keep[path] for path in changed]))  # no superset of this change set
    del facts, current
    if not opt_rounds:
        return WhyNot(want, "incomplete", reason="; ".join(budget.hit) or "no change set found")
    ordered = sorted(opt_rounds, key=lambda option: (len(option), [c.fact for c in option]))  # stable output
    return WhyNot(want, "changes", options=tuple(ordered))


def _goal(prover: _Prover, want: Want) -> Bool:
    enc = prover.enc
    if want.kind == "decision":
        return enc.decision(want.name).get(want.value, z3.BoolVal(False))
    kind = "require" if want.kind == "obligation" else "recommend"
    produced = enc.produced(kind, want.name)
    return produced if want.value == "yes" else neg(produced)


def _minimise(
    prover: _Prover, goal: Bool, keep: dict[str, Bool], changed: list[str], blocked: list[Bool]
) -> list[str]:
    """Drop changes that are not needed (a subset-minimal change set)."""
    current = list(changed)
    for path in list(current):
        trial = [x for x in current if x != path]
        fixed = [formula for name, formula in keep.items() if name not in trial]
        if prover.sat(goal, *fixed, *blocked) is True:
            current = trial
    return current


def _apply(case: dict[str, Any], changed: list[str], values: dict[str, Any]) -> dict[str, Any]:
    """The case with the changed facts set to their new values (absent from `values`: removed)."""
    result: dict[str, Any] = json.loads(json.dumps(case))
    for path in changed:
        parts = path.split(".")
        target = result
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        new = _flat(values).get(path, _ABSENT)
        if new is _ABSENT:
            target.pop(parts[-1], None)
        else:
            target[parts[-1]] = new
    return result


_ABSENT = object()


def _flat(case: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in case.items():
        if key.startswith("$"):
            continue
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _blockers(prover: _Prover, want: Want) -> tuple[str, ...]:
    """Rules whose effect makes the outcome impossible: an unsat core over "this rule behaves as written"."""
    enc, program = prover.enc, prover.program
    # Free each rule's effectiveness behind a switch: with the switch off the rule may or may
    # not take effect; the core names the rules that must behave as written to block the goal.
    switches = {z3.Bool(f"as-written-{r.id}"): r.id for r in program.rules}
    free = {i: z3.Bool(f"effective-{r.id}") for i, r in enumerate(program.rules)}
    solver = prover.solver()
    for i, (switch, _) in enumerate(switches.items()):
        solver.add(z3.Implies(switch, free[i] == enc.effective(i)))
    solver.add(_goal_over(prover, want, free))
    if prover.budget.check(solver, *switches) != z3.unsat:
        return ()
    return tuple(sorted(switches[m] for m in solver.unsat_core() if m in switches))


def _goal_over(prover: _Prover, want: Want, free: dict[int, Bool]) -> Bool:
    program = prover.program
    if want.kind == "decision":
        claims = prover.enc.claims(want.name)
        has = {v: disj([free[i] for i in rules]) for v, rules in claims.items()}
        others = [neg(h) for v, h in has.items() if v != want.value]
        if want.value == program.decisions[want.name].default:
            return conj(others)
        return conj([has.get(want.value, z3.BoolVal(False)), *others])
    kind = "require" if want.kind == "obligation" else "recommend"
    rules = [
        i
        for i, r in enumerate(program.rules)
        if any(o.kind == kind and o.name == want.name for o in r.outcomes)
    ]
    produced = disj([free[i] for i in rules])
    return produced if want.value == "yes" else neg(produced)


def _impossible_reason(prover: _Prover, want: Want) -> str:
    program = prover.program
    if want.kind == "decision":
        deciders = prover.enc.claims(want.name).get(want.value, [])
        if not deciders and want.value != program.decisions[want.name].default:
            return f"no rule decides {want.name} = {want.value}, and it is not the default"
    return "no valid case gets this outcome"


__all__ = ["DeepResult", "FactChange", "SolverReasoner", "Want", "WhyNot", "deep_check", "deepen", "why_not"]
