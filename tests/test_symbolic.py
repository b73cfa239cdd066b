"""Encoding fidelity: the symbolic compiler and the compiled evaluator agree on every case.

Random cases are biased to where encodings go wrong: numbers at and one unit either side of
every constant, dates on every date any policy or table mentions and the day before, empty
sets, absent optional facts, every table key (dated rows included), and strings no policy
mentions. Each case is evaluated on several dates (each table entry's first and last day and
the day before). The evaluator's answer (which rules fired, were unknown, took effect, and
every output) must equal the solver's on the same case: 0 disagreements.
"""

from __future__ import annotations

import glob
import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

z3 = pytest.importorskip("z3")

from engine import api  # noqa: E402
from engine import program as p  # noqa: E402
from engine import symbolic as sy  # noqa: E402
from engine.proofs import Output, all_outputs, output_values, replayed_values  # noqa: E402
from tests.conftest import ROOT  # noqa: E402

VERSIONS = sorted(glob.glob(str(ROOT / "policies" / "*" / "*.policy"))) + sorted(
    glob.glob(str(ROOT / "fixtures" / "language" / "**" / "*.policy"), recursive=True)
)
CASES_PER_EXAMPLE = 60
EXAMPLES = 17  # 1,020 cases per bundled version
FIXTURE_EXAMPLES = 5  # 300 per test fixture (they hold the number, date and string constructs)


def _constants(program: p.Program) -> dict[str, set[Any]]:
    found: dict[str, set[Any]] = {"number": set(), "date": set(), "string": set()}
    nodes: list[p.Node] = [n for r in program.rules for n in (r.condition, *r.unless)]
    nodes += [d.node for d in program.derived.values()]
    while nodes:
        node = nodes.pop()
        if isinstance(node, p.Const):
            values = node.value if isinstance(node.value, frozenset) else [node.value]
            base = node.type.element.base
            if base in found:
                found[base] |= set(values)
        nodes += p.sub_nodes(node)
    for table in program.tables.values():
        for entry in table.entries:
            for value, kind in ((entry.key, table.key_type), (entry.value, table.value_type)):
                base = kind.element.base
                values = value if isinstance(value, frozenset) else [value]
                if base in found:
                    found[base] |= set(values)
            for day in (entry.effective, entry.ends):
                if day is not None:
                    found["date"].add(day)
    return found


def _dates(program: p.Program) -> list[date]:
    """Evaluation dates: the version's, and every table entry's first and last day, and the day before."""
    days = {program.info.effective or date(2021, 1, 1)}
    for table in program.tables.values():
        for entry in table.entries:
            for day in (entry.effective, entry.ends):
                if day is not None:
                    days |= {day, day - timedelta(days=1), day + timedelta(days=1)}
    return sorted(days)


def _scalar(rng: random.Random, kind: p.Type, program: p.Program, consts: dict[str, set[Any]]) -> Any:
    base = kind.base
    if base == "boolean":
        return rng.random() < 0.5
    if base == "enum":
        return rng.choice(program.enums[kind.enum or ""])
    if base == "string":
        pool = sorted(consts["string"])
        return (
            rng.choice(pool) if pool and rng.random() < 0.85 else rng.choice(["", "zz-unmentioned", "EAR99"])
        )
    if base == "number":
        pool = sorted(consts["number"]) or [Decimal(0)]
        unit = Decimal(1).scaleb(-max(-(c.as_tuple().exponent) for c in pool) if pool else 0)  # type: ignore[operator]
        unit = min(unit, Decimal(1))
        pick = rng.choice(pool) + rng.choice([-unit, Decimal(0), unit, -Decimal(1), Decimal(1)])
        return str(pick)
    if base == "date":
        pool = sorted(consts["date"]) or [date(2020, 10, 6)]
        return (rng.choice(pool) + timedelta(days=rng.choice([-1, 0, 0, 1]))).isoformat()
    raise AssertionError(base)


def _case(
    rng: random.Random, program: p.Program, consts: dict[str, set[Any]], keys: dict[str, list[Any]]
) -> dict[str, Any]:
    case: dict[str, Any] = {}
    for path, fact in program.facts.items():
        if fact.optional and rng.random() < 0.3:
            continue
        kind = fact.type
        if kind.is_set:
            if kind.element.base == "enum":
                universe = list(program.enums[kind.element.enum or ""])
            else:
                universe = [*sorted(consts["string"]), "zz-unmentioned"]
            size = rng.choice([0, 0, 1, 1, 2, 3, len(universe)])
            value: Any = sorted(rng.sample(universe, min(size, len(universe))))
        elif path in keys and rng.random() < 0.6:
            value = rng.choice(keys[path])
            if isinstance(value, date):
                value = value.isoformat()
        else:
            value = _scalar(rng, kind, program, consts)
        target = case
        parts = path.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return case


def _table_keys(program: p.Program) -> dict[str, list[Any]]:
    """Facts used as table keys, with every key of those tables (so dated rows are hit)."""
    found: dict[str, list[Any]] = {}
    nodes: list[p.Node] = [n for r in program.rules for n in (r.condition, *r.unless)]
    nodes += [d.node for d in program.derived.values()]
    while nodes:
        node = nodes.pop()
        if isinstance(node, p.TableLookup | p.TableHas) and isinstance(node.key, p.FactRead):
            keys = sorted({e.key for e in program.tables[node.table].entries}, key=str)
            found.setdefault(node.key.path, []).extend(keys)
        nodes += p.sub_nodes(node)
    return found


class Oracle:
    """Symbolic formulas of one version, evaluated on a concrete case by pinning every fact."""

    def __init__(self, policy: api.Policy):
        self.policy = policy
        self.program = policy.compiled.program
        self.space = sy.FactSpace([self.program])
        self.encoders: dict[Any, Any] = {}
        self.solver = z3.Solver()
        self.solver.add(self.space.constraints())

    def at(self, when: date) -> Any:
        """The formulas on a date (one encoding per distinct set of table snapshots)."""
        enc = sy.Encoder(self.program, when, self.space)
        key = tuple(frozenset(enc.snapshot(name).items()) for name in self.program.tables)
        if key not in self.encoders:
            outs = {o: output_values(enc, o) for o in all_outputs([self.program])}
            polar: dict[tuple[str, int], dict[bool, Any]] = {}
            for i in range(len(self.program.rules)):
                for name, formula in (("fires", enc.fires(i)), ("effective", enc.effective(i))):
                    polar[(name, i)] = {True: formula, False: z3.Not(formula)}
            self.encoders[key] = (enc, outs, polar)
        return self.encoders[key]

    def compare(self, case: dict[str, Any], when: date) -> list[str]:
        """Every disagreement between the evaluator and the solver on one case and date.

        Fast path: one solver call checks that, with every fact pinned to the case, the
        formulas cannot disagree with the evaluator's answer (unsat); only a disagreement is
        then explained term by term.
        """
        decision = self.policy.evaluate(case, at=when)
        facts = self.policy.validate(case)
        keys = self.policy.compiled.fired(facts, at=when)
        fired = {k for k in keys if k >= 0}
        resolution = self.policy.compiled.resolve(tuple(keys))
        enc, outs, polar = self.at(when)
        expected = []
        for i in range(len(self.program.rules)):
            expected.append(polar[("fires", i)][i in fired])
            expected.append(polar[("effective", i)][i in resolution.effective])
        for out, values in outs.items():
            expected.append(values[replayed_values(decision, out)])
        pins = [c for _, parts in self.space.pin(case) for c in parts]
        verdict = _check_fast(self.solver, pins, expected)
        if verdict == z3.unsat:
            return []
        return [
            f"the solver disagrees with the evaluator ({verdict}): {self.explain(pins, enc, outs, decision)}"
        ]

    def explain(
        self, pins: list[Any], enc: sy.Encoder, outs: dict[Output, dict[str, Any]], decision: Any
    ) -> list[str]:
        solver = z3.Solver()
        solver.add(*pins, self.space.constraints())
        if solver.check() != z3.sat:
            return ["the case violates the vocabulary constraints"]
        model = solver.model()
        found = []
        for out, values in outs.items():
            got = [v for v, c in values.items() if z3.is_true(model.eval(c, model_completion=True))]
            want = replayed_values(decision, out)
            if got != [want]:
                found.append(f"{out.kind} {out.name}: solver {got}, evaluator {want}")
        return found or ["rule statuses differ"]


def _check_fast(solver: Any, pins: list[Any], expected: list[Any]) -> Any:
    """`solver.check(*pins, Not(And(expected)))` through z3's C API: z3py's argument checks
    cost more than the solving here, and the test makes thousands of these calls."""
    ctx = solver.ctx
    terms = (z3.Ast * len(expected))()
    for i, term in enumerate(expected):
        terms[i] = term.as_ast()
    wrong = z3.Z3_mk_not(ctx.ref(), z3.Z3_mk_and(ctx.ref(), len(expected), terms))
    assumptions = (z3.Ast * (len(pins) + 1))()
    for i, term in enumerate(pins):
        assumptions[i] = term.as_ast()
    assumptions[len(pins)] = wrong
    return z3.CheckSatResult(
        z3.Z3_solver_check_assumptions(ctx.ref(), solver.solver, len(pins) + 1, assumptions)
    )


@pytest.mark.parametrize("path", VERSIONS, ids=lambda v: v.split("/", 3)[-1] if "/" in v else v)
def test_solver_agrees_with_evaluator(path: str) -> None:
    policy = api.load(path)
    program = policy.compiled.program
    if any(o.computed is not None for r in program.rules for o in r.outcomes):
        # issue 12: `decide D = EXPR` values are computed per case after precedence
        # (OutcomeInfo.computed); the encoder keys decision values by constants only, for now.
        pytest.skip("computed decision values are not encoded yet")
    oracle = Oracle(policy)
    consts = _constants(program)
    keys = _table_keys(program)
    dates = _dates(program)
    counted = [0]

    bundled = "/policies/" in path
    examples = EXAMPLES if bundled else FIXTURE_EXAMPLES

    @settings(max_examples=examples, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(st.randoms(use_true_random=False))
    def check(rng: random.Random) -> None:
        for _ in range(CASES_PER_EXAMPLE):
            case = _case(rng, program, consts, keys)
            when = rng.choice(dates)
            problems = oracle.compare(case, when)
            assert not problems, f"case {case} on {when}: {problems}"
            counted[0] += 1

    check()
    assert counted[0] >= (1_000 if bundled else 300)


def test_encoding_covers_every_ir_node() -> None:
    """Each node kind of the IR has its own case in `Encoder.value` (the `match` ends in assert_never)."""
    import inspect

    source = inspect.getsource(sy.Encoder.value)
    for node in p.Node.__args__:  # type: ignore[attr-defined]
        assert f"p.{node.__name__}" in source, node.__name__
    assert "assert_never" in source


def test_import_engine_does_not_import_z3() -> None:
    import subprocess
    import sys

    code = "import sys, engine, engine.cli; sys.exit(1 if 'z3' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False).returncode == 0


def test_fidelity_check_sees_a_disagreement() -> None:
    """The fast check is not vacuous: a wrong expectation on a real case is reported."""
    policy = api.load(ROOT / "policies" / "ear-742.7" / "2020-10-06.policy")
    oracle = Oracle(policy)
    case = {
        "eccn": "0A978",
        "control_reason": ["CC"],
        "capability": [],
        "destination": "CN",
        "end_user": {"type": "government"},
        "license_required": True,
        "civil_disorder": False,
        "hr_violation_evidence": False,
        "hr_abuse_risk": True,
    }
    when = date(2020, 10, 6)
    assert oracle.compare(case, when) == []
    _, outs, _ = oracle.at(when)
    review = outs[Output("decision", "license_review")]
    pins = [c for _, parts in oracle.space.pin(case) for c in parts]
    assert _check_fast(oracle.solver, pins, [review["not_favorable"]]) == z3.unsat
    assert _check_fast(oracle.solver, pins, [review["favorable"]]) == z3.sat
