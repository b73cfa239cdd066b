"""Properties that must hold for any input, checked with hypothesis.

* Policy text mangled at random (the bundled and fixture policies with tokens and characters
  deleted, inserted, swapped or duplicated, and token soup) never crashes the parser or the
  checker: the only outcome is a list of located diagnostics.
* Printing an expression and reading it back gives the same tree.
* Any valid case (generated from the fact declarations) is decided without error, and the
  traced and untraced paths agree.
* Unknowns are monotone (Kleene): giving a value to a missing optional fact never changes a
  condition that was already true or false.

Sizes are modest (deadline off, up to 150 examples each) so the suite stays quick.
"""

from __future__ import annotations

import copy
import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import engine
from engine import program as p
from engine import syntax as s
from engine.checker import check_text
from engine.errors import Diagnostic
from engine.highlight import KEYWORDS as LEXER_KEYWORDS
from engine.models import ConditionTrace, Decision
from engine.parser import parse
from tests.conftest import HEADER, LANGUAGE, ROOT

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SOURCES = sorted(
    [*LANGUAGE.rglob("*.policy"), *LANGUAGE.rglob("*.vocab"), *(ROOT / "policies").rglob("*.policy")]
)
TEXTS = {path: path.read_text(encoding="utf-8") for path in SOURCES}
TOKEN = re.compile(
    r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|[A-Za-z_][\w-]*|\d{4}-\d{2}-\d{2}|-?\d+(?:\.\d+)?|!=|<=|>=|->|\S'
)
KEYWORDS = sorted(LEXER_KEYWORDS)
JUNK = [
    *KEYWORDS,
    "<",
    ">",
    "(",
    ")",
    "[",
    "]",
    ",",
    ":",
    "=",
    "!=",
    "->",
    ".",
    '"',
    "'",
    "#",
    "\n",
    "{",
    "\\",
    "é",
    "\x00",
]


def assert_located(diagnostics: list[Diagnostic], path: str) -> None:
    for d in diagnostics:
        assert d.code and d.message
        assert d.file, d
        if d.line > 0:
            assert d.column >= 1 and d.end_line >= d.line, d
        else:  # a file-level problem: the file alone
            assert d.location == d.file


def parse_and_check(text: str, path: Path) -> None:
    result = parse(text, str(path))
    assert_located(result.diagnostics, str(path))
    if result.diagnostics:
        assert all(d.code == "syntax" for d in result.diagnostics)
    checked = check_text(text, str(path))
    assert_located(checked.diagnostics, str(path))
    if checked.ok and checked.program is not None:
        engine.api.CompiledPolicy(checked.program)  # what passes the checker compiles


@st.composite
def mutated(draw: st.DrawFn) -> tuple[Path, str]:
    path = draw(st.sampled_from(SOURCES))
    tokens = [m.group() for m in TOKEN.finditer(TEXTS[path])]
    spaces = [" "] * len(tokens)
    for _ in range(draw(st.integers(1, 4))):
        if not tokens:
            break
        i = draw(st.integers(0, len(tokens) - 1))
        op = draw(st.sampled_from(["delete", "insert", "swap", "duplicate", "chars", "newline"]))
        if op == "delete":
            del tokens[i], spaces[i]
        elif op == "insert":
            tokens.insert(i, draw(st.sampled_from(JUNK + tokens)))
            spaces.insert(i, " ")
        elif op == "swap":
            j = draw(st.integers(0, len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif op == "duplicate":
            tokens.insert(i, tokens[i])
            spaces.insert(i, " ")
        elif op == "chars":
            token = tokens[i]
            k = draw(st.integers(0, len(token)))
            tokens[i] = token[:k] + draw(st.text(max_size=3)) + token[k + 1 :]
        else:
            spaces[i] = "\n"
    # keep comments on their own lines so they do not swallow what follows
    text = "".join(t + ("\n" if t.startswith("#") else sp) for t, sp in zip(tokens, spaces, strict=True))
    return path, text


@SETTINGS
@given(mutated())
def test_mutated_policies_give_only_located_diagnostics(sample: tuple[Path, str]) -> None:
    path, text = sample
    parse_and_check(text, path)


@SETTINGS
@given(st.lists(st.sampled_from([*JUNK, "a", "b.c", '"x"', "3", "2021-01-01", "CC"]), max_size=40))
def test_token_soup_gives_only_located_diagnostics(tokens: list[str]) -> None:
    parse_and_check(HEADER + " ".join(tokens), LANGUAGE / "soup.policy")


@SETTINGS
@given(st.text(max_size=200))
def test_any_text_gives_only_located_diagnostics(text: str) -> None:
    parse_and_check(text, LANGUAGE / "text.policy")


# ---------------------------------------------------------------------------
# unparse / parse round trip

NAMES = st.sampled_from(["a", "b", "end_user.type", "CC", "IN", "hr-risk", "x_1"])


def _ref(name: str) -> s.Ref:
    return s.Ref(tuple(name.split(".")))


LITERALS = st.one_of(
    st.text(alphabet=st.characters(blacklist_characters="\n\r", blacklist_categories=["Cs"]), max_size=8),
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-1000, max_value=1000),
    st.dates(min_value=date(1900, 1, 1), max_value=date(2999, 12, 31)),
    st.booleans(),
).map(s.Literal)
OPERANDS = st.one_of(NAMES.map(_ref), LITERALS)
SETS = st.lists(st.one_of(NAMES.filter(lambda n: "." not in n).map(_ref), LITERALS), max_size=3).map(
    lambda items: s.SetLiteral(tuple(items))
)
PREDICATES = st.one_of(
    NAMES.map(_ref),
    st.builds(s.Compare, st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), OPERANDS, OPERANDS),
    st.builds(s.Member, OPERANDS, st.one_of(SETS, NAMES.map(_ref))),
    st.builds(s.Includes, NAMES.map(_ref), OPERANDS, st.just("one")),
    st.builds(s.Includes, NAMES.map(_ref), st.one_of(SETS, NAMES.map(_ref)), st.sampled_from(["any", "all"])),
    st.builds(s.Presence, NAMES.map(_ref), st.booleans()),
    st.builds(
        lambda t, k: s.Compare("=", s.Lookup(s.Ident(t), k), s.Literal("x")),
        st.sampled_from(["t"]),
        NAMES.map(_ref),
    ),
)


def _flat(cls: type[s.And] | type[s.Or], items: list[s.Expr]) -> s.Expr:
    """And/Or as the parser builds them: nested ones of the same kind are flattened."""
    out: list[s.Expr] = []
    for item in items:
        out.extend(item.operands if isinstance(item, s.And | s.Or) and type(item) is cls else [item])
    return cls(tuple(out))


EXPRESSIONS = st.recursive(
    PREDICATES,
    lambda inner: st.one_of(
        inner.map(s.Not),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: _flat(s.And, xs)),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: _flat(s.Or, xs)),
    ),
    max_leaves=8,
)


@SETTINGS
@given(EXPRESSIONS)
def test_unparse_then_parse_gives_the_same_tree(expr: s.Expr) -> None:
    text = s.unparse(expr)
    result = parse(HEADER + f"rule r if {text} then require x\n")
    assert result.diagnostics == [], text
    assert result.tree is not None
    assert result.tree.rules[0].condition == expr, text


# ---------------------------------------------------------------------------
# Valid cases never crash the evaluator; traced and untraced agree

POLICIES = [
    *(
        LANGUAGE / name
        for name in (
            "constructs.policy",
            "precedence.policy",
            "conflict.policy",
            "surveillance.policy",
            "defaults.policy",
            "numbers.policy",
            "outputs.policy",
        )
    ),
    *sorted(ROOT.glob("policies/*/*.policy")),
]


def _scalar(type_: p.Type, enums: dict[str, tuple[str, ...]], hints: list[str]) -> st.SearchStrategy[Any]:
    if type_.base == "boolean":
        return st.booleans()
    if type_.base == "number":
        return st.one_of(
            st.integers(-5, 500),
            st.decimals(min_value=-10, max_value=1000, places=2, allow_nan=False).map(str),
        )
    if type_.base == "date":
        return st.dates(min_value=date(2015, 1, 1), max_value=date(2030, 12, 31)).map(date.isoformat)
    if type_.base == "enum":
        return st.sampled_from(enums[type_.enum or ""])
    return st.one_of(st.sampled_from(hints or ["x"]), st.text(max_size=6))


def _strings_in(program: p.Program) -> list[str]:
    """String constants and string table keys: so generated strings sometimes match."""
    found = {
        v
        for table in program.tables.values()
        if table.key_type.base == "string"
        for e in table.entries
        for v in [e.key]
        if isinstance(v, str)
    }
    for text in program.sources.values():
        found.update(re.findall(r'"([0-9A-Z][0-9A-Za-z.()]{2,12})"', text))
    return sorted(found)


def case_strategy(program: p.Program) -> st.SearchStrategy[dict[str, Any]]:
    hints = _strings_in(program)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for path, fact in program.facts.items():
        value = _scalar(fact.type.element, program.enums, hints)
        if fact.type.is_set:
            value = st.lists(value, max_size=4)
        if fact.optional:
            value = st.one_of(st.none(), value)
        fields[path] = value

    def nest(flat: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for path, value in flat.items():
            *records, leaf = path.split(".")
            node = out
            for record in records:
                node = node.setdefault(record, {})
            if value is not None:
                node[leaf] = value
        return out

    return st.fixed_dictionaries(fields).map(nest)


def _outcome(decision: Decision) -> dict[str, Any]:
    return decision.model_dump(mode="json", exclude={"trace"})


DATES = st.one_of(st.none(), st.dates(min_value=date(2019, 1, 1), max_value=date(2026, 12, 31)))


@pytest.mark.parametrize("path", POLICIES, ids=lambda q: f"{q.parent.name}/{q.name}")
def test_random_valid_cases_never_crash_and_traced_equals_untraced(path: Path) -> None:
    policy = engine.load(path)

    @SETTINGS
    @given(case_strategy(policy.compiled.program), DATES)
    def run(case: dict[str, Any], at: date | None) -> None:
        traced = policy.evaluate(case, trace=True, at=at)
        untraced = policy.evaluate(case, at=at)
        assert _outcome(traced) == _outcome(untraced)
        assert traced.trace is not None
        assert len(traced.trace.rules) == len(policy.compiled.program.rules)

    run()


def _condition_values(trace: ConditionTrace) -> list[bool | None]:
    out = [trace.value]
    for child in trace.children:
        out += _condition_values(child)
    return out


def _uses_presence(program: p.Program) -> bool:
    return any(re.search(r"\bis\s+(missing|present)\b", text) for text in program.sources.values())


@pytest.mark.parametrize(
    "path",
    [q for q in POLICIES if not _uses_presence(engine.load(q).compiled.program)],
    ids=lambda q: f"{q.parent.name}/{q.name}",
)
def test_knowing_a_missing_fact_never_changes_a_known_condition(path: Path) -> None:
    policy = engine.load(path)
    program = policy.compiled.program
    # Facts with a default are never missing: leaving one out means its default, not unknown.
    optional = [f for f, info in program.facts.items() if info.nullable]
    if not optional:
        pytest.skip("no optional facts")
    strategy = case_strategy(program)

    # With a single optional fact, half the drawn pairs fill nothing in and are filtered out.
    @settings(SETTINGS, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(strategy, strategy)
    def run(partial: dict[str, Any], full: dict[str, Any]) -> None:
        # `partial` misses some optional facts; `complete` is partial with them filled in from `full`
        complete = _fill(partial, full, optional)
        assume(complete != partial)
        before = policy.evaluate(partial, trace=True)
        after = policy.evaluate(complete, trace=True)
        assert before.trace is not None and after.trace is not None
        for old, new in zip(before.trace.rules, after.trace.rules, strict=True):
            for clause_old, clause_new in zip(
                [old.condition, *old.unless], [new.condition, *new.unless], strict=True
            ):
                for was, now in zip(
                    _condition_values(clause_old), _condition_values(clause_new), strict=True
                ):
                    if was is not None:
                        assert now == was, (old.rule, clause_old.condition)

    run()


def _fill(partial: dict[str, Any], full: dict[str, Any], optional: list[str]) -> dict[str, Any]:
    out = copy.deepcopy(partial)
    for path in optional:
        *records, leaf = path.split(".")
        source: Any = full
        for record in records:
            source = source.get(record, {})
        target = out
        for record in records:
            target = target.setdefault(record, {})
        if leaf not in target and leaf in source:
            target[leaf] = source[leaf]
    return out


def test_decimal_strings_and_integers_are_the_same_number() -> None:
    policy = engine.load(LANGUAGE / "constructs.policy")
    base = {
        "eccn": "EAR99",
        "control_reason": [],
        "capability": [],
        "destination": "US",
        "end_user": {"type": "private"},
        "hr_abuse_risk": False,
        "civil_disorder": False,
        "tags": [],
    }
    for a, b in [(10, "10.00"), ("9.5", "9.50"), (100, "1E2")]:
        assert policy.validate({**base, "quantity": a})["quantity"] == Decimal(b)
        assert _outcome(policy.evaluate({**base, "quantity": a})) == _outcome(
            policy.evaluate({**base, "quantity": b})
        )
