"""`policy test`: run intent expectations (fixtures/intent/*.toml) against the policies they describe.

An expectation names a case, a policy version and what the law says the outcome is; the
policy id is the expectation file's name. A failure is reported with the case, the
expected and actual outcome, and the traces of the rules that matter: the ones that
produced the wrong outcome and the ones that should have produced the right one. The
schema is in fixtures/intent/README.md; any key other than the reserved ones names a
decision, so the same files work for any policy's decisions.
"""

from __future__ import annotations

import datetime
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from engine import api
from engine.cases import describe, read_case_file
from engine.errors import CaseError, Diagnostic, PolicyError, Span, UsageError, render_all
from engine.models import Decision, RuleTrace, to_json_value
from engine.render import condition_lines, format_value

#: Keys of an `[[expect]]` table that are not decisions.
RESERVED = ("case", "version", "at", "obligations", "recommendations", "why", "input")

Status = Literal["pass", "fail", "error"]

#: The header line of an expectation table, however TOML allows it to be written
#: (`[[expect]]`, `[[ expect ]]`, `[["expect"]]`, with a trailing comment).
_EXPECT_HEADER = re.compile(r"""^\s*\[\[\s*(?:expect|"expect"|'expect')\s*\]\]\s*(?:#.*)?$""")


@dataclass(frozen=True)
class Expectation:
    """What one case should come to under one version of one policy."""

    policy: str
    case: str
    version: str
    decisions: dict[str, str | bool]  # numbers as exact strings ("25.00"), dates ISO
    obligations: tuple[str, ...] | None
    recommendations: tuple[str, ...] | None
    why: str
    source: Path
    line: int
    at: datetime.date | None = (
        None  # the evaluation date (`at = 2021-06-01`); else the version's effective date
    )
    facts: dict[str, Any] | None = None  # the case written inline (`[expect.input]`), else read from its file

    @property
    def id(self) -> str:
        """`policy/case@version` (`...@version:DATE` with `at`): the test id, unique across the files."""
        when = f":{self.at.isoformat()}" if self.at is not None else ""
        return f"{self.policy}/{self.case}@{self.version}{when}"

    @property
    def location(self) -> str:
        return f"{self.source}:{self.line}"


@dataclass(frozen=True)
class Mismatch:
    """One outcome that differs: a decision, or the obligation or recommendation list."""

    what: str
    expected: Any
    actual: Any


@dataclass
class Result:
    """How one expectation went; a failure carries the decision, an error the reason."""

    expectation: Expectation
    status: Status
    mismatches: list[Mismatch] = field(default_factory=list)
    error: str | None = None
    decision: Decision | None = None
    relevant: list[tuple[RuleTrace, str]] = field(default_factory=list)  # (trace, why it matters)


# ---------------------------------------------------------------------------
# Reading expectations


def intent_files(paths: Iterable[str | Path]) -> list[Path]:
    """The `.toml` files given, and those inside the folders given, in a stable order."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        found += sorted(path.glob("*.toml")) if path.is_dir() else [path]
    return list(dict.fromkeys(found))


def load_expectations(paths: Iterable[str | Path]) -> tuple[list[Expectation], list[Diagnostic]]:
    """Every expectation of the given files, and a located diagnostic for each malformed one."""
    expectations: list[Expectation] = []
    problems: list[Diagnostic] = []
    for path in intent_files(paths):
        found, bad = _read_file(path)
        expectations += found
        problems += bad
    seen: dict[str, Expectation] = {}
    for item in expectations:
        if item.id in seen:
            problems.append(
                _problem(
                    item.source,
                    item.line,
                    f"`{item.case}` under `{item.version}` is expected twice",
                    f"the first is at {seen[item.id].location}; keep one",
                )
            )
        seen.setdefault(item.id, item)
    return list(seen.values()), problems


def _read_file(path: Path) -> tuple[list[Expectation], list[Diagnostic]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return [], [_problem(path, 0, f"cannot read `{path}`: {exc.strerror}")]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = int(m.group(1)) if (m := re.search(r"line (\d+)", str(exc))) else 0
        return [], [_problem(path, line, f"not valid TOML: {exc}")]
    tables = data.get("expect", [])
    lines = [n for n, row in enumerate(text.splitlines(), 1) if _EXPECT_HEADER.match(row)]
    found: list[Expectation] = []
    problems: list[Diagnostic] = []
    for index, table in enumerate(tables if isinstance(tables, list) else []):
        line = lines[index] if index < len(lines) else 0
        item = _expectation(path, line, table, problems)
        if item is not None:
            found.append(item)
    return found, problems


def _expectation(path: Path, line: int, table: Any, problems: list[Diagnostic]) -> Expectation | None:
    """One `[[expect]]` table, checked for the types the schema gives each key."""
    before = len(problems)
    for key in ("case", "version"):
        if not isinstance(table.get(key), str):
            problems.append(
                _problem(path, line, f"`{key}` is missing or not a string", "see fixtures/intent/README.md")
            )
    lists = {}
    for key in ("obligations", "recommendations"):
        value = table.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            problems.append(_problem(path, line, f"`{key}` must be a list of names"))
        lists[key] = tuple(value) if isinstance(value, list) else None
    at = table.get("at")
    if at is not None and (not isinstance(at, datetime.date) or isinstance(at, datetime.datetime)):
        problems.append(_problem(path, line, "`at` must be a date", "write a TOML date: `at = 2021-06-01`"))
    facts = table.get("input")
    if facts is not None and not isinstance(facts, dict):
        problems.append(
            _problem(
                path, line, "`input` must be a table of facts", "write it as `[expect.input]` under the table"
            )
        )
    decisions = {k: v for k, v in table.items() if k not in RESERVED}
    for key, value in decisions.items():
        if not isinstance(value, str | bool):
            problems.append(
                _problem(
                    path,
                    line,
                    f"the expected value of decision `{key}` must be a string or a boolean",
                    'write numbers as exact decimal strings ("25.00") and dates as "YYYY-MM-DD"',
                )
            )
    if len(problems) > before:
        return None
    return Expectation(
        policy=path.stem,
        case=table["case"],
        version=table["version"],
        decisions=decisions,
        obligations=lists["obligations"],
        recommendations=lists["recommendations"],
        why=str(table.get("why", "")),
        source=path,
        line=line,
        at=at,
        facts=_json_facts(facts) if isinstance(facts, dict) else None,
    )


def _json_facts(value: Any) -> Any:
    """TOML values as the JSON a case file would hold: dates become `YYYY-MM-DD` strings.

    So an inline case is read by exactly the validation a case file gets (TOML has native
    dates and times; JSON, and so the engine's case format, has strings).
    """
    if isinstance(value, dict):
        return {k: _json_facts(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_facts(v) for v in value]
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return value


def _problem(path: Path, line: int, message: str, help: str | None = None) -> Diagnostic:
    return Diagnostic.at("intent", message, Span(str(path), line, 1, line, 1), help)


# ---------------------------------------------------------------------------
# Running them


class Runner:
    """Runs expectations; each policy version is loaded once and each case read once."""

    def __init__(self, policies: Path, cases: Path, environment: api.Environment | None = None):
        self.environment = environment or api.default_environment
        self.policies = policies
        self.cases = cases
        self._loaded: dict[tuple[str, str], api.Policy | str] = {}
        self._case_data: dict[str, dict[str, Any] | str] = {}

    def run(self, expectation: Expectation) -> Result:
        policy = self._policy(expectation.policy, expectation.version)
        if isinstance(policy, str):
            return Result(expectation, "error", error=policy)
        case = self._case(expectation.case) if expectation.facts is None else self._inline(expectation)
        if isinstance(case, str):
            return Result(expectation, "error", error=case)
        try:
            decision = policy.evaluate(case, trace=True, at=expectation.at)
        except CaseError as exc:
            problems = "; ".join(describe(d) for d in exc.case_diagnostics)
            return Result(expectation, "error", error=f"the case does not fit the policy's facts: {problems}")
        mismatches = compare(expectation, decision)
        if not mismatches:
            return Result(expectation, "pass", decision=decision)
        relevant = relevant_rules(expectation, decision, policy, mismatches)
        return Result(expectation, "fail", mismatches, decision=decision, relevant=relevant)

    def _policy(self, policy_id: str, version: str) -> api.Policy | str:
        key = (policy_id, version)
        if key not in self._loaded:
            folder = self.policies / policy_id
            if not folder.is_dir():
                self._loaded[key] = f"no policy folder `{folder}` (the policy id is the intent file's name)"
            else:
                try:
                    self._loaded[key] = self.environment.load(folder, version=version)
                except UsageError as exc:
                    self._loaded[key] = str(exc) + (f" ({exc.help})" if exc.help else "")
                except PolicyError as exc:
                    rendered = render_all(exc.diagnostics, exc.sources)
                    self._loaded[key] = f"`{folder}` version `{version}` does not check:\n{rendered}"
        return self._loaded[key]

    def _inline(self, expectation: Expectation) -> dict[str, Any] | str:
        """The inline facts; a case file of the same name too would leave two truths, so it is an error."""
        path = self.cases / f"{expectation.case}.json"
        if path.exists():
            return f"`{expectation.case}` has inline `input` and a case file `{path}`: keep one (or rename the case)"
        assert expectation.facts is not None
        return expectation.facts

    def _case(self, name: str) -> dict[str, Any] | str:
        if name not in self._case_data:
            path = self.cases / f"{name}.json"
            case = read_case_file(path)
            if case.problem is not None and case.problem.code == "unreadable-case":
                self._case_data[name] = f"no case file `{path}`"
            elif case.facts is None:
                self._case_data[name] = f"`{path}`: {case.problem_text}"
            else:
                self._case_data[name] = case.facts
        return self._case_data[name]


def compare(expectation: Expectation, decision: Decision) -> list[Mismatch]:
    """Every outcome that differs from the expectation (lists compare exactly, order included)."""
    found = []
    for name, expected in expectation.decisions.items():
        actual = (
            to_json_value(decision.decisions[name].value)
            if name in decision.decisions
            else "(no such decision)"
        )
        if actual != expected:
            found.append(Mismatch(name, expected, actual))
    if expectation.obligations is not None and tuple(decision.obligation_names) != expectation.obligations:
        found.append(Mismatch("obligations", list(expectation.obligations), decision.obligation_names))
    if (
        expectation.recommendations is not None
        and tuple(decision.recommendation_names) != expectation.recommendations
    ):
        found.append(
            Mismatch("recommendations", list(expectation.recommendations), decision.recommendation_names)
        )
    return found


def relevant_rules(
    expectation: Expectation, decision: Decision, policy: api.Policy, mismatches: list[Mismatch]
) -> list[tuple[RuleTrace, str]]:
    """The rules behind each wrong outcome, and the rules that would have given the expected one."""
    assert decision.trace is not None
    traces = {t.rule: t for t in decision.trace.rules}
    reasons: dict[str, list[str]] = {}
    for rule in policy.compiled.program.rules:
        took_effect = rule.id in traces and traces[rule.id].status == "fired"
        for outcome in rule.outcomes:
            value = outcome.text if outcome.value is None else to_json_value(outcome.value)
            reason = _relevance(outcome.kind, outcome.name, value, mismatches, took_effect)
            if reason is not None:
                reasons.setdefault(rule.id, []).append(reason)
    return [(traces[rule_id], "; ".join(why)) for rule_id, why in reasons.items() if rule_id in traces]


def _relevance(kind: str, name: str, value: Any, mismatches: list[Mismatch], took_effect: bool) -> str | None:
    """Why a rule's outcome matters to a mismatch: it gave the wrong outcome, or would give the right one."""
    shown = f"{kind} {name}" + (f" = {value}" if kind == "decide" else "")
    for mismatch in mismatches:
        if kind == "decide" and mismatch.what == name:
            if value == mismatch.actual and took_effect:
                return f"gave the actual outcome: {shown}"
            if value == mismatch.expected:
                return f"would give the expected outcome: {shown}"
        group = {"require": "obligations", "recommend": "recommendations"}.get(kind)
        if group == mismatch.what:
            if name in mismatch.actual and name not in mismatch.expected and took_effect:
                return f"gave the unexpected outcome: {shown}"
            if name in mismatch.expected and name not in mismatch.actual:
                return f"would give the expected outcome: {shown}"
    return None


# ---------------------------------------------------------------------------
# Reporting


def rule_trace_lines(trace: RuleTrace, indent: str = "    ") -> list[str]:
    """A rule's trace as the explain output shows it: status, then every condition with its value."""
    status = trace.status.replace("_", " ")
    if trace.overridden_by:
        status += " by " + ", ".join(trace.overridden_by)
    if trace.missing:
        status += ", missing " + ", ".join(trace.missing)
    cites = f" [{'; '.join(trace.citations)}]" if trace.citations else ""
    lines = [f"{indent}rule {trace.rule}{cites}: {status}"]
    for line in condition_lines(trace.condition):
        lines.append(_condition_line(indent, line.depth, line.verdict, line.condition, line.reads))
    for clause in trace.unless:
        reads = ", ".join(f"{k} = {format_value(v)}" for k, v in clause.reads.items())
        verdict = {True: "yes", False: "no", None: "unknown"}[clause.value]
        lines.append(_condition_line(indent, 1, verdict, "unless " + clause.condition, reads))
    if trace.outcomes:
        lines.append(f"{indent}  then " + " and ".join(trace.outcomes))
    return lines


def _condition_line(indent: str, depth: int, verdict: str, condition: str, reads: str) -> str:
    text = f"{indent}{'  ' * depth}{verdict:<7} {condition}"
    return f"{text}  ({reads})" if reads else text


def failure_text(result: Result) -> str:
    """The report of one failed or erroneous expectation, in the reviewer's order."""
    item = result.expectation
    head = "ERROR" if result.status == "error" else "FAIL"
    lines = [f"{head} {item.id}", f"  expectation at {item.location}"]
    if result.error:
        lines += ["  " + row for row in result.error.splitlines()]
        return "\n".join(lines)
    for mismatch in result.mismatches:
        lines.append(
            f"  {mismatch.what}: expected {_shown(mismatch.expected)}, got {_shown(mismatch.actual)}"
        )
    if item.why:
        lines.append(f"  why: {item.why}")
    if result.relevant:
        lines.append("  rules:")
        for trace, why in result.relevant:
            lines += rule_trace_lines(trace)
            lines.append(f"      ({why})")
    else:
        lines.append("  no rule of this version gives or removes the differing outcomes")
    return "\n".join(lines)


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(value) + "]"
    return str(value)


def result_data(result: Result) -> dict[str, Any]:
    """One result as JSON for tools (`policy test --format json`)."""
    item = result.expectation
    data: dict[str, Any] = {
        "id": item.id,
        "policy": item.policy,
        "case": item.case,
        "version": item.version,
        "status": result.status,
        "location": item.location,
    }
    if result.error:
        data["error"] = result.error
    if result.mismatches:
        data["mismatches"] = [
            {"what": m.what, "expected": m.expected, "actual": m.actual} for m in result.mismatches
        ]
        data["rules"] = [
            {"why": why, "trace": trace.model_dump(mode="json")} for trace, why in result.relevant
        ]
    return data
