"""Code lenses and the commands behind them: intent results per rule, evaluate a case, diff versions.

The intent lens runs the expectations `policy test` runs (`engine.intent`) for this file's
policy id and version, on the policy as it is in the editor, and counts for each rule the
expectations whose case makes it fire (effective or overridden): "4 intent expectations,
all pass". Evaluating a case and diffing against the previous version use the evaluator
and `engine.diff`, exactly as `policy eval --explain` and `policy diff` do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from lsprotocol import types as t

from engine import api
from engine import diff as d
from engine.cases import read_case, read_case_file
from engine.errors import CaseError, PolicyError, UsageError, has_errors
from engine.intent import Expectation, compare, load_expectations
from engine.lsp.features import lsp_range
from engine.lsp.index import Range, range_of
from engine.lsp.workspace import Workspace, universe_root
from engine.models import Decision
from engine.registry import read_versions
from engine.render import render_decision
from engine.runtime import CompiledPolicy

__all__ = ["DIFF_PREVIOUS", "EVALUATE", "Lenses"]

EVALUATE = "policy.evaluateCase"
DIFF_PREVIOUS = "policy.diffPrevious"
FIRED = ("fired", "overridden")


@dataclass
class RuleIntent:
    total: int = 0
    failed: list[str] = field(default_factory=list)


@dataclass
class Lenses:
    """Per-server state of the lenses: where fixtures are, and the last case evaluated per file."""

    ws: Workspace
    intent_dir: Path | None = None
    cases_dir: Path | None = None
    last_case: dict[Path, tuple[str, Decision]] = field(default_factory=dict)
    _intent: dict[tuple[Path, str], dict[str, RuleIntent]] = field(default_factory=dict)

    # -- where the fixtures are --------------------------------------------------------
    def fixtures(self, path: Path) -> tuple[Path | None, Path | None]:
        """Intent and case folders: configured, else `fixtures/intent` and `fixtures/cases` beside
        the policies folder (the layout `policy test` assumes)."""
        base = universe_root(path).parent / "fixtures"
        intent = self.intent_dir or (base / "intent")
        cases = self.cases_dir or (base / "cases")
        return (intent if intent.is_dir() else None, cases if cases.is_dir() else None)

    def policy(self, path: Path) -> api.Policy | None:
        """The version as it is in the editor, compiled; None while it has errors."""
        result = self.ws.check(path)
        if result.program is None or has_errors(result.diagnostics):
            return None
        return api.Policy(CompiledPolicy(result.program), path)

    # -- lenses --------------------------------------------------------------------------
    def lenses(self, path: Path) -> list[t.CodeLens]:
        folder = self.ws.index(path)
        index = folder.files.get(path)
        if index is None or index.tree is None or index.tree.header.kind != "policy":
            return []
        out: list[t.CodeLens] = []
        header_range = range_of(index.tree.header.span)
        header_line = Range(header_range.line, 0, header_range.line, 0)
        previous = self._previous(path)
        if previous is not None:
            out.append(
                t.CodeLens(
                    lsp_range(header_line),
                    t.Command(
                        title=f"diff against previous version ({previous})",
                        command=DIFF_PREVIOUS,
                        arguments=[path.as_uri()],
                    ),
                )
            )
        policy = self.policy(path)
        intents = self.intent(path, policy) if policy is not None else None
        last = self.last_case.get(path)
        if last is not None and policy is not None:
            case, decision = last
            summary = ", ".join(f"{k} = {v.value}" for k, v in decision.decisions.items())
            out.append(
                t.CodeLens(
                    lsp_range(header_line),
                    t.Command(title=f"case {case}: {summary}", command="", arguments=[]),
                )
            )
        for rule in index.tree.rules:
            where = range_of(rule.id.span)
            at = lsp_range(Range(where.line, 0, where.line, 0))
            out.append(
                t.CodeLens(
                    at,
                    t.Command(
                        title=self._intent_title(intents, rule.id.name, policy), command="", arguments=[]
                    ),
                )
            )
            out.append(
                t.CodeLens(
                    at,
                    t.Command(
                        title="evaluate a case", command=EVALUATE, arguments=[path.as_uri(), rule.id.name]
                    ),
                )
            )
            if last is not None and policy is not None:
                status = (
                    next((r.status for r in last[1].trace.rules if r.rule == rule.id.name), None)
                    if last[1].trace
                    else None
                )
                if status is not None:
                    out.append(
                        t.CodeLens(
                            at,
                            t.Command(
                                title=f"{last[0]}: {status.replace('_', ' ')}", command="", arguments=[]
                            ),
                        )
                    )
        return out

    def _intent_title(
        self, intents: dict[str, RuleIntent] | None, rule: str, policy: api.Policy | None
    ) -> str:
        if policy is None:
            return "intent: fix the errors first"
        if intents is None:
            return "intent: no expectations for this version"
        found = intents.get(rule, RuleIntent())
        if found.total == 0:
            return "no intent expectation makes this rule fire"
        if not found.failed:
            return f"{found.total} intent expectation{'s' if found.total != 1 else ''}, all pass"
        return f"{found.total} intent expectations, {len(found.failed)} fail"

    def intent(self, path: Path, policy: api.Policy) -> dict[str, RuleIntent] | None:
        """rule id -> how the expectations whose case fires it went; None without expectations."""
        key = (path, policy.content_hash)
        if key in self._intent:
            return self._intent[key]
        intent_dir, cases_dir = self.fixtures(path)
        if intent_dir is None or cases_dir is None:
            return None
        file = intent_dir / f"{policy.id}.toml"
        if not file.is_file():
            return None
        expectations, _ = load_expectations([file])
        mine = [e for e in expectations if e.version == policy.version]
        if not mine:
            self._intent[key] = None  # type: ignore[assignment]
            return None
        out: dict[str, RuleIntent] = {}
        for expectation in mine:
            decision = self._decide(policy, cases_dir, expectation)
            if decision is None:
                continue
            failed = bool(compare(expectation, decision))
            for rule in decision.trace.rules if decision.trace else []:
                if rule.status in FIRED:
                    entry = out.setdefault(rule.rule, RuleIntent())
                    entry.total += 1
                    if failed:
                        entry.failed.append(expectation.case)
        self._intent[key] = out
        return out

    def _decide(self, policy: api.Policy, cases_dir: Path, expectation: Expectation) -> Decision | None:
        case = _read_case(cases_dir / f"{expectation.case}.json")
        if case is None:
            return None
        try:
            return policy.evaluate(case, trace=True)
        except CaseError:
            return None

    def _previous(self, path: Path) -> str | None:
        entry = self._previous_entry(path)
        return None if entry is None else entry.version

    def _previous_entry(self, path: Path) -> Any:
        try:
            entries = read_versions(path.parent)
        except (OSError, UnicodeDecodeError):
            return None
        names = [e.path.resolve() for e in entries]
        if path not in names:
            return None
        position = names.index(path)
        return entries[position - 1] if position > 0 else None

    # -- commands ----------------------------------------------------------------------------
    def cases(self, path: Path, rule: str | None) -> list[str]:
        """Case names to offer: those the rule fires on under the intent expectations first."""
        _, cases_dir = self.fixtures(path)
        if cases_dir is None:
            return []
        every = sorted(p.stem for p in cases_dir.glob("*.json"))
        policy = self.policy(path)
        if rule is None or policy is None:
            return every
        intents = self.intent(path, policy) or {}
        firing = [c for c in every if c in _firing_cases(self, path, policy, rule)] if intents else []
        return firing + [c for c in every if c not in firing]

    def evaluate(self, path: Path, case: str) -> tuple[Decision, str]:
        """Decide one case with the version in the editor; the explanation as `policy eval --explain` prints it."""
        policy = self.policy(path)
        if policy is None:
            raise UsageError("the policy has errors; fix them to evaluate a case")
        _, cases_dir = self.fixtures(path)
        case_path = Path(case) if case.endswith(".json") else (cases_dir or Path(".")) / f"{case}.json"
        data = _read_case(case_path)
        if data is None:
            raise UsageError(f"cannot read case `{case_path}`", "a case is a JSON object of facts")
        try:
            decision = policy.evaluate(data, trace=True)
        except CaseError as exc:
            raise UsageError(str(exc), "`policy schema` prints the expected input") from None
        self.last_case[path] = (case_path.stem, decision)
        return decision, render_decision(decision, "text", explain=True)

    def diff_previous(self, path: Path) -> str:
        """`policy diff` of the previous version against this one (as in the editor) on the fixture cases."""
        entry = self._previous_entry(path)
        if entry is None:
            raise UsageError("this is the first version of the policy: there is nothing to diff against")
        policy = self.policy(path)
        if policy is None:
            raise UsageError("the policy has errors; fix them to diff it")
        _, cases_dir = self.fixtures(path)
        if cases_dir is None:
            raise UsageError("no fixtures/cases folder beside the policies", "set policy.casesDir")
        try:
            before = d.side_from_entry(entry, entry.version, None)
        except PolicyError as exc:
            raise UsageError(
                f"the previous version `{entry.version}` does not check ({len(exc.diagnostics)} errors)"
            ) from None
        info = policy.info
        after = d.Side(
            policy,
            info.version,
            str(self.ws.engine_path(path)),
            info.status,
            info.effective,
            info.ends,
            info.effective or date.today(),
        )
        cases = [read_case_file(f) for f in d.case_files(cases_dir)]
        report = d.compare(before, after, cases, cases_from=str(self.ws.engine_path(cases_dir)))
        return d.render(report, "text")


def _firing_cases(lenses: Lenses, path: Path, policy: api.Policy, rule: str) -> set[str]:
    intent_dir, cases_dir = lenses.fixtures(path)
    if intent_dir is None or cases_dir is None:
        return set()
    expectations, _ = (
        load_expectations([intent_dir / f"{policy.id}.toml"])
        if (intent_dir / f"{policy.id}.toml").is_file()
        else ([], [])
    )
    found = set()
    for expectation in expectations:
        if expectation.version != policy.version:
            continue
        decision = lenses._decide(policy, cases_dir, expectation)
        if (
            decision
            and decision.trace
            and any(r.rule == rule and r.status in FIRED for r in decision.trace.rules)
        ):
            found.add(expectation.case)
    return found


def _read_case(path: Path) -> dict[str, Any] | None:
    """A case file's facts, or None when it cannot be read as a case (`engine.cases` words why)."""
    try:
        return read_case(path)
    except CaseError:
        return None
