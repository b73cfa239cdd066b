"""Compare two policy versions by what they decide: the diff as data, then renderers over it.

A reviewer of a policy change wants to know which cases now come out differently and why,
not which lines of the file moved. So the diff is built from two `Decision`s with traces
per case (outcome changes, rules aligned by id, conditions whose value changed) plus a
static comparison of the rules (syntax trees, spans ignored). Everything is a pydantic
model: `DiffReport.model_dump(mode="json")` *is* the JSON format (docs/diff-format.md),
and the text, Markdown and HTML reports are jinja2 templates over the same model.
"""

from __future__ import annotations

import difflib
import io
import json
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment
from pydantic import BaseModel, ConfigDict, Field

from engine import api, escape
from engine import program as p
from engine import syntax as s
from engine.cases import CaseFile, describe
from engine.changes import Aspect, aligned, derived_differs, derived_matches, rule_aspects, rule_matches
from engine.errors import CaseError, UsageError, VersionError
from engine.models import (
    ConditionTrace,
    Decision,
    OutcomeItem,
    RuleRef,
    RuleStatus,
    RuleTrace,
    to_json_value,
)
from engine.registry import VersionEntry, read_versions, select_version
from engine.render import format_value, new_environment

#: Bumped when a field of the JSON report changes meaning or disappears (additions keep it).
DIFF_VERSION = 1

FORMATS = ("text", "md", "json", "html")

CaseStatus = Literal["changed", "reasons_changed", "unchanged", "failed"]
OutcomeKind = Literal["decision", "obligation", "recommendation"]
RuleAspect = Literal["wording", "citations", "precedence", "condition", "outcome"]

#: Aspects of a rule that do not change what it decides.
WORDING_ASPECTS = frozenset({"wording", "citations"})

CONFLICT = "(conflict)"
ABSENT = "(no such rule)"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


# ---------------------------------------------------------------------------
# The model (the JSON contract: keep docs/diff-format.md in step)


class VersionInfo(_Model):
    """One side of the comparison: which version, how it was named, and the date cases are decided on."""

    label: str
    policy: str
    version: str
    status: str
    effective: date | None
    ends: date | None
    content_hash: str
    path: str
    evaluated_at: date


class OutcomeSummary(_Model):
    """What one version decided for a case, without the reasons."""

    decisions: dict[str, str]
    obligations: list[str] = Field(default_factory=list)
    recommendations: list[str] = Field(default_factory=list)
    fired: list[str] = Field(default_factory=list)
    unknown: list[str] = Field(default_factory=list)


class OutcomeChange(_Model):
    """One outcome that differs: a decision's value, or an obligation/recommendation gained or lost.

    For a decision `before`/`after` are its values (`(conflict)` when rules conflict); for an
    obligation or recommendation they are its name when present and null when absent.
    """

    kind: OutcomeKind
    name: str
    before: str | None
    after: str | None
    transition: str
    rules_before: list[RuleRef] = Field(default_factory=list)
    rules_after: list[RuleRef] = Field(default_factory=list)


class Transition(_Model):
    """A kind of change and the cases that show it (a case may show several)."""

    key: str
    label: str
    kind: OutcomeKind
    name: str
    before: str | None
    after: str | None
    count: int
    cases: list[str]


class Summary(_Model):
    """Counts over all cases; `changed` counts outcome changes only."""

    compared: int
    changed: int
    reasons_changed: int
    unchanged: int
    failed: int
    transitions: list[Transition] = Field(default_factory=list)


class ConditionSide(_Model):
    """A condition in one version: its text, truth value (null = unknown), depth in its rule's tree, reads."""

    condition: str
    value: bool | None
    depth: int = 0
    reads: dict[str, Any] = Field(default_factory=dict)


class ConditionRow(_Model):
    """A condition line of a rule, aligned between the versions (null: not in that version's rule).

    `changed`: the line differs in any way (value, wording, or present on one side only);
    `reads_changed`: values read by a line worded alike on both sides that differ.
    """

    depth: int
    clause: Literal["if", "unless"]
    before: ConditionSide | None
    after: ConditionSide | None
    changed: bool
    reads_changed: dict[str, list[Any]] = Field(default_factory=dict)


class RuleSide(_Model):
    status: RuleStatus
    citations: list[str] = Field(default_factory=list)
    overridden_by: list[str] = Field(default_factory=list)
    outcomes: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)


class RuleRow(_Model):
    """One rule's trace in both versions, matched by id (null: the rule is not in that version).

    `status_changed` treats a missing rule as not fired; `changed` is true when the status
    changed or a condition worded alike on both sides came out differently (a rewritten
    condition alone shows under the rule changes, not here).
    """

    rule: str
    description: str | None
    before: RuleSide | None
    after: RuleSide | None
    status_changed: bool
    changed: bool
    conditions: list[ConditionRow] = Field(default_factory=list)

    @property
    def citations(self) -> list[str]:
        """Citations of both versions of the rule, without repeats."""
        both = (self.before.citations if self.before else []) + (self.after.citations if self.after else [])
        return list(dict.fromkeys(both))


class ValueChange(_Model):
    """A derived fact whose value differs; `defined_*` is false where a version does not define it."""

    name: str
    before: Any
    after: Any
    defined_before: bool = True
    defined_after: bool = True


class CaseProblem(_Model):
    """Why a case could not be compared: which side failed and every reason given."""

    side: Literal["before", "after", "case"]
    version: str
    problems: list[str]


class CaseDiff(_Model):
    """One case compared; `facts` is its input as given (notes, the `$` keys, left out)."""

    case: str
    path: str
    comment: str | None = None
    facts: dict[str, Any] = Field(default_factory=dict)
    status: CaseStatus
    before: OutcomeSummary | None = None
    after: OutcomeSummary | None = None
    changes: list[OutcomeChange] = Field(default_factory=list)
    transitions: list[str] = Field(default_factory=list)
    derived: list[ValueChange] = Field(default_factory=list)
    rules: list[RuleRow] = Field(default_factory=list)
    errors: list[CaseProblem] = Field(default_factory=list)


class RuleText(_Model):
    """A rule as written in one version (expressions printed canonically)."""

    description: str | None
    citations: list[str]
    overrides: list[str]
    condition: str
    unless: list[str]
    outcomes: list[str]


class RuleChange(_Model):
    """A rule added, removed or changed between the versions; `aspects` tell what kind of change."""

    rule: str
    change: Literal["added", "removed", "changed"]
    aspects: list[RuleAspect] = Field(default_factory=list)
    wording_only: bool = False
    before: RuleText | None
    after: RuleText | None

    @property
    def citations(self) -> list[str]:
        both = (self.before.citations if self.before else []) + (self.after.citations if self.after else [])
        return list(dict.fromkeys(both))


class DefinitionChange(_Model):
    """A derived fact added, removed or redefined (rules that read it may decide differently)."""

    name: str
    change: Literal["added", "removed", "changed"]
    before: str | None
    after: str | None


class HeaderChange(_Model):
    """A header field (`title`, `source`, `description`, `effective`, `ends`, `status`...) that differs."""

    field: str
    before: str | None
    after: str | None


class CommentChange(_Model):
    """A comment block whose words differ, placed by the declaration it precedes or sits in.

    `anchor` is `rule X`, `fact X`, ... , `(header)` or `(end of file)`; the text is the
    comment block with `#` and line breaks removed, so re-wrapping or re-indenting a comment
    (layout) is no change, while any change of words is.
    """

    anchor: str
    before: str | None
    after: str | None


class DiffReport(_Model):
    """Everything `policy diff` found; the JSON report is this model's dump."""

    diff_version: int = DIFF_VERSION
    mode: Literal["cases", "case"] = "cases"
    before: VersionInfo
    after: VersionInfo
    cases_from: str
    summary: Summary
    cases: list[CaseDiff]
    rule_changes: list[RuleChange]
    definition_changes: list[DefinitionChange] = Field(default_factory=list)
    header_changes: list[HeaderChange] = Field(default_factory=list)
    comment_changes: list[CommentChange] = Field(default_factory=list)

    @property
    def decisions_changed(self) -> bool:
        """Whether any case's outcome differs (what `--fail-on-change` gates on)."""
        return self.summary.changed > 0


# ---------------------------------------------------------------------------
# Choosing the two sides


@dataclass(frozen=True)
class Side:
    """A loaded version with how the user named it and the date its cases are decided on."""

    policy: api.Policy
    label: str
    path: str
    status: str
    effective: date | None
    ends: date | None
    at: date

    def info(self) -> VersionInfo:
        return VersionInfo(
            label=self.label,
            policy=self.policy.id,
            version=self.policy.version,
            status=self.status,
            effective=self.effective,
            ends=self.ends,
            content_hash=self.policy.content_hash,
            path=self.path,
            evaluated_at=self.at,
        )


@dataclass(frozen=True)
class Spec:
    """`POLICY@VERSION` split up: a file or folder, and an optional version name or date."""

    path: Path
    selector: str | None

    @classmethod
    def parse(cls, text: str, previous: Spec | None = None) -> Spec:
        """`path@sel`, `path`, or `@sel` (the previous spec's path: `ear-742.7@A @B`)."""
        path, at_sign, selector = text.rpartition("@")
        if not at_sign:
            return cls(Path(text), None)
        if not path:
            if previous is None:
                raise UsageError(f"`{text}` names a version but no policy", "write POLICY@VERSION first")
            return cls(previous.path, selector)
        return cls(Path(path), selector or None)


def side_from_entry(entry: VersionEntry, label: str, at: date | None, display: str | None = None) -> Side:
    """Load a version file found in a policy folder (or given directly)."""
    policy = api.load(entry.path)
    when = at or policy.info.effective or date.today()
    return Side(policy, label, display or str(entry.path), entry.status, entry.effective, entry.ends, when)


def side_from_file(path: Path, label: str, at: date | None, display: str | None = None) -> Side:
    """Load a `.policy` file that may live outside any policy folder (two files, a git copy)."""
    policy = api.load(path)
    info = policy.info
    when = at or info.effective or date.today()
    return Side(policy, label, display or str(path), info.status, info.effective, info.ends, when)


def resolve_spec(spec: Spec, at: date | None) -> Side:
    """The side a spec names: a folder's version by name, the version in force on a date, or a file."""
    if not spec.path.exists():
        raise UsageError(
            f"`{spec.path}` does not exist", "give a policy folder, a `.policy` file, or FOLDER@VERSION"
        )
    if spec.path.is_dir():
        if spec.selector is None:
            raise UsageError(
                f"`{spec.path}` is a folder: say which version", "write FOLDER@VERSION or FOLDER@DATE"
            )
        return _side_in_folder(spec.path, spec.selector, at)
    if spec.selector is not None:
        raise UsageError(
            f"`{spec.path}` is a single file, so `@{spec.selector}` cannot pick a version",
            "use FOLDER@VERSION, or give the file alone",
        )
    return side_from_file(spec.path, str(spec.path), at)


def _side_in_folder(folder: Path, selector: str, at: date | None) -> Side:
    """A version name wins; otherwise a date picks the version in force and is the evaluation date.

    The side is labelled with the version the date picked (the date shows as `evaluated_at`):
    a report saying "not in 2099-01-01" would name no version at all.
    """
    entries = read_versions(folder)
    if any(selector in (e.version, e.path.stem) for e in entries):
        return side_from_entry(select_version(folder, version=selector), selector, at)
    try:
        when = date.fromisoformat(selector)
    except ValueError:
        names = [e.version for e in entries]
        hint = difflib.get_close_matches(selector, names, n=1)
        help_line = f"its versions are {', '.join(names)}" + (f"; did you mean `{hint[0]}`?" if hint else "")
        raise VersionError(f"`{folder.name}` has no version `{selector}`", help_line) from None
    entry = select_version(folder, at=when)
    return side_from_entry(entry, entry.version, at or when)  # label the version, not the date


def latest_two(folder: Path, at: date | None) -> tuple[Side, Side]:
    """The two most recent versions of a folder (by effective date), whatever their status."""
    entries = read_versions(folder)
    if len(entries) < 2:
        raise VersionError(
            f"`{folder}` has {len(entries)} version(s); a diff needs two",
            "name two versions (FOLDER@A FOLDER@B), or compare a file with --against git:HEAD",
        )
    older, newer = entries[-2], entries[-1]
    return side_from_entry(older, older.version, at), side_from_entry(newer, newer.version, at)


def _git(cwd: Path, *args: str, binary: bool = False) -> subprocess.CompletedProcess[Any]:
    """Run git in `cwd`; a missing git is a usage error, not a traceback."""
    try:
        return subprocess.run(
            ["git", "-C", str(cwd), *args], capture_output=True, check=False, text=not binary
        )
    except OSError as exc:
        raise UsageError(f"cannot run git: {exc.strerror}", "install git, or compare two files") from None


def verify_revision(cwd: Path, revision: str) -> str:
    """The commit `revision` names, checked before git sees it anywhere else.

    A revision is user input that reaches git's command line: one starting with `-` would be
    read as an option (`git:--output=PATH` makes git write a file), so it is refused outright,
    and the rest is resolved with `rev-parse --verify --end-of-options REV^{commit}` so only a
    commit id ever reaches `git archive`.
    """
    if not revision or revision.startswith("-") or any(c in revision for c in "\0\n\r"):
        raise UsageError(
            f"`git:{revision}` is not a git revision", "write --against git:HEAD (or a branch, tag or commit)"
        )
    proc = _git(cwd, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}")
    commit = proc.stdout.strip() if proc.returncode == 0 else ""
    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", commit):
        raise UsageError(
            f"`{revision}` is not a commit of the repository holding `{cwd}`",
            "`git log --oneline` lists commits; a branch, tag, HEAD~N or commit id all work",
        )
    return commit


@contextmanager
def git_tree(path: Path, revision: str) -> Iterator[Path]:
    """`path` as it is in the policy tree committed at `revision`: the file inside a temporary copy.

    The whole top-level folder holding the file (e.g. `policies/`, with the shared
    vocabularies and tables) is exported with `git archive`, so the `use` and table paths of
    the committed version resolve to their committed files too. The copy is removed on exit.
    """
    cwd = path.resolve().parent
    top = _git(cwd, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise UsageError(f"`{path}` is not in a git repository", "--against git:REV needs a git checkout")
    root = Path(top.stdout.strip()).resolve()
    commit = verify_revision(cwd, revision)
    relative = path.resolve().relative_to(root)
    tree = relative.parts[0] if len(relative.parts) > 1 else "."
    archive = _git(root, "archive", "--format=tar", commit, "--", tree, binary=True)
    if archive.returncode != 0:
        reason = (archive.stderr.decode("utf-8", "replace").strip().splitlines() or ["git archive failed"])[
            -1
        ]
        raise UsageError(
            f"cannot read `{path}` at `{revision}`: {reason}",
            "is the file committed at that revision? `git log -- FILE` lists its commits",
        )
    with tempfile.TemporaryDirectory(prefix="policy-diff-git-") as scratch:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(scratch, filter="data")
        copy = Path(scratch) / relative
        if not copy.is_file():
            raise UsageError(
                f"cannot read `{path}` at `{revision}`: the file is not in that commit",
                "is the file committed at that revision? `git log -- FILE` lists its commits",
            )
        yield copy


def policy_file(spec: Spec) -> Path:
    """The single file a spec names (for `--against`): a file, or FOLDER@VERSION."""
    if spec.path.is_dir():
        if spec.selector is None:
            raise UsageError(
                f"`{spec.path}` is a folder: --against compares one file",
                "write FOLDER@VERSION or give the `.policy` file",
            )
        return select_version(spec.path, version=spec.selector).path
    if not spec.path.exists():
        raise UsageError(f"`{spec.path}` does not exist", "give the `.policy` file you are editing")
    return spec.path


# ---------------------------------------------------------------------------
# Cases


def case_files(folder: Path) -> list[Path]:
    """Every `*.json` case in a folder, by name, so reports are stable."""
    if not folder.is_dir():
        raise UsageError(
            f"`{folder}` is not a folder of cases", "give --cases DIR with one JSON case per file"
        )
    files = sorted(folder.glob("*.json"))
    if not files:
        raise UsageError(f"`{folder}` holds no `*.json` cases", "each case is a JSON file of facts")
    return files


# ---------------------------------------------------------------------------
# Comparing one case


def compare_case(case: CaseFile, before: Side, after: Side) -> CaseDiff:
    """Decide a case under both versions and diff the results (failures are reported, not raised)."""
    if case.facts is None:
        problem = CaseProblem(side="case", version="", problems=[case.problem_text or "unreadable"])
        return CaseDiff(case=case.name, path=case.path, status="failed", errors=[problem])
    decisions: list[Decision] = []
    errors: list[CaseProblem] = []
    for role, side in (("before", before), ("after", after)):
        try:
            decisions.append(side.policy.evaluate(case.facts, trace=True, at=side.at))
        except CaseError as exc:
            reasons = [describe(d) for d in exc.case_diagnostics]
            errors.append(CaseProblem(side=role, version=side.label, problems=reasons))
    if errors:
        return CaseDiff(
            case=case.name,
            path=case.path,
            comment=case.comment,
            facts=input_facts(case),
            status="failed",
            errors=errors,
        )
    return diff_decisions(case, decisions[0], decisions[1])


def input_facts(case: CaseFile) -> dict[str, Any]:
    """The facts a case file gives, without its `$` notes: what a reviewer reads the outcome against."""
    return {k: v for k, v in (case.facts or {}).items() if not str(k).startswith("$")}


def fact_lines(facts: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """`(dotted name, value as an author writes it)` for every fact, records flattened."""
    lines: list[tuple[str, str]] = []
    for key, value in facts.items():
        if isinstance(value, dict):
            lines += fact_lines(value, f"{prefix}{key}.")
        else:
            lines.append((f"{prefix}{key}", format_value(value)))
    return lines


def diff_decisions(case: CaseFile, before: Decision, after: Decision) -> CaseDiff:
    """The data of one case's diff, from the two decisions with their traces."""
    changes = outcome_changes(before, after)
    rows = rule_rows(before, after)
    if changes:
        status: CaseStatus = "changed"
    elif any(r.status_changed for r in rows):
        status = "reasons_changed"
    else:
        status = "unchanged"
    return CaseDiff(
        case=case.name,
        path=case.path,
        comment=case.comment,
        facts=input_facts(case),
        status=status,
        before=outcome_summary(before),
        after=outcome_summary(after),
        changes=changes,
        transitions=[c.transition for c in changes],
        derived=derived_changes(before, after),
        rules=rows,
    )


def outcome_summary(decision: Decision) -> OutcomeSummary:
    return OutcomeSummary(
        decisions={k: _shown(v.value) for k, v in decision.decisions.items()},
        obligations=decision.obligation_names,
        recommendations=decision.recommendation_names,
        fired=decision.fired,
        unknown=decision.unknown,
    )


def outcome_changes(before: Decision, after: Decision) -> list[OutcomeChange]:
    """Decisions whose value changed, then obligations and recommendations gained or lost."""
    changes = []
    for name in _union(list(before.decisions), list(after.decisions)):
        old, new = before.decisions.get(name), after.decisions.get(name)
        old_value = None if old is None else _shown(old.value)
        new_value = None if new is None else _shown(new.value)
        if old_value != new_value:
            changes.append(
                OutcomeChange(
                    kind="decision",
                    name=name,
                    before=old_value,
                    after=new_value,
                    transition=transition_key("decision", name, old_value, new_value),
                    rules_before=old.rules if old else [],
                    rules_after=new.rules if new else [],
                )
            )
    accumulated: list[tuple[OutcomeKind, list[OutcomeItem], list[OutcomeItem]]] = [
        ("obligation", before.obligations, after.obligations),
        ("recommendation", before.recommendations, after.recommendations),
    ]
    for kind, old_items, new_items in accumulated:
        old_by = {i.name: i for i in old_items}
        new_by = {i.name: i for i in new_items}
        for name in _union(list(old_by), list(new_by)):
            if (name in old_by) == (name in new_by):
                continue
            had, has = (name if name in old_by else None), (name if name in new_by else None)
            changes.append(
                OutcomeChange(
                    kind=kind,
                    name=name,
                    before=had,
                    after=has,
                    transition=transition_key(kind, name, had, has),
                    rules_before=old_by[name].rules if name in old_by else [],
                    rules_after=new_by[name].rules if name in new_by else [],
                )
            )
    return changes


def _shown(value: Any) -> str:
    """A decision value as the diff shows it: as written in a policy (`true`, `25.00`), or a conflict."""
    if value is None:
        return CONFLICT
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(to_json_value(value))


def transition_key(kind: OutcomeKind, name: str, before: str | None, after: str | None) -> str:
    """A stable, URL-safe id for a transition (used by the HTML filter: `#transition=KEY`)."""
    if kind == "decision":
        parts = [name, before or "none", "to", after or "none"]
    else:
        parts = [kind, "added" if after else "removed", name]
    return "--".join(_slug(part) for part in parts)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "-", text).strip("-") or "_"


def transition_label(change: OutcomeChange | Transition) -> str:
    """How a transition reads: `license_review: favorable -> not_favorable`, `+ human-rights review`."""
    if change.kind == "decision":
        return f"{change.name}: {change.before or '(none)'} -> {change.after or '(none)'}"
    sign = "+" if change.after else "-"
    word = "" if change.kind == "obligation" else "recommend "
    return f"{sign} {word}{change.name}"


def derived_changes(before: Decision, after: Decision) -> list[ValueChange]:
    """Derived facts whose value differs (a redefinition, or dated tables read on another date)."""
    old = before.trace.derived if before.trace else {}
    new = after.trace.derived if after.trace else {}
    return [
        ValueChange(
            name=n, before=old.get(n), after=new.get(n), defined_before=n in old, defined_after=n in new
        )
        for n in _union(list(old), list(new))
        if old.get(n) != new.get(n) or (n in old) != (n in new)
    ]


# -- rules aligned by id ------------------------------------------------------


def rule_rows(before: Decision, after: Decision) -> list[RuleRow]:
    """Every rule of either version, matched by id, in the newer version's order."""
    old = {r.rule: r for r in (before.trace.rules if before.trace else [])}
    new = {r.rule: r for r in (after.trace.rules if after.trace else [])}
    return [_rule_row(old.get(i), new.get(i)) for i in aligned(list(old), list(new))]


def _rule_row(old: RuleTrace | None, new: RuleTrace | None) -> RuleRow:
    conditions = _condition_rows(old, new)
    old_status = old.status if old else "not_fired"
    new_status = new.status if new else "not_fired"
    status_changed = old_status != new_status or (
        old is not None and new is not None and old.overridden_by != new.overridden_by
    )
    changed = status_changed or any(_value_changed(c) for c in conditions)
    some = new or old
    assert some is not None
    return RuleRow(
        rule=some.rule,
        description=some.description,
        before=_rule_side(old),
        after=_rule_side(new),
        status_changed=status_changed,
        changed=changed,
        conditions=conditions,
    )


def _value_changed(row: ConditionRow) -> bool:
    """The same condition, worded alike in both versions, came out differently (a rewrite is not counted)."""
    return (
        row.before is not None
        and row.after is not None
        and row.before.condition == row.after.condition
        and row.before.value != row.after.value
    )


def _rule_side(trace: RuleTrace | None) -> RuleSide | None:
    if trace is None:
        return None
    return RuleSide(
        status=trace.status,
        citations=trace.citations,
        overridden_by=trace.overridden_by,
        outcomes=trace.outcomes,
        missing=trace.missing,
    )


@dataclass(frozen=True)
class _Line:
    depth: int
    clause: Literal["if", "unless"]
    trace: ConditionTrace

    @property
    def key(self) -> tuple[str, str]:
        """Lines match by clause and text, not depth: `a` still matches when it becomes `a or b`'s child."""
        return (self.clause, self.trace.condition)


def _flatten(trace: RuleTrace | None) -> list[_Line]:
    """A rule's condition tree as lines (parents first), then each `unless` clause."""
    if trace is None:
        return []

    def walk(node: ConditionTrace, depth: int, clause: Literal["if", "unless"]) -> list[_Line]:
        lines = [_Line(depth, clause, node)]
        for child in node.children:
            lines += walk(child, depth + 1, clause)
        return lines

    lines = walk(trace.condition, 0, "if")
    for clause in trace.unless:
        lines += walk(clause, 0, "unless")
    return lines


def _condition_rows(old: RuleTrace | None, new: RuleTrace | None) -> list[ConditionRow]:
    """Align condition lines by text; a rewritten line is paired with the line it replaced."""
    left, right = _flatten(old), _flatten(new)
    matcher = difflib.SequenceMatcher(a=[x.key for x in left], b=[x.key for x in right], autojunk=False)
    rows: list[ConditionRow] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal" or tag == "replace":
            width = max(i2 - i1, j2 - j1)
            for k in range(width):
                a = left[i1 + k] if i1 + k < i2 else None
                b = right[j1 + k] if j1 + k < j2 else None
                rows.append(_condition_row(a, b))
        elif tag == "delete":
            rows += [_condition_row(a, None) for a in left[i1:i2]]
        else:
            rows += [_condition_row(None, b) for b in right[j1:j2]]
    return rows


def _condition_row(a: _Line | None, b: _Line | None) -> ConditionRow:
    some = b or a
    assert some is not None
    sides = [
        None
        if x is None
        else ConditionSide(
            condition=x.trace.condition, value=x.trace.value, depth=x.depth, reads=x.trace.reads
        )
        for x in (a, b)
    ]
    reads_changed: dict[str, list[Any]] = {}
    if a is not None and b is not None and a.trace.condition == b.trace.condition:
        for name in _union(list(a.trace.reads), list(b.trace.reads)):
            if a.trace.reads.get(name) != b.trace.reads.get(name):
                reads_changed[name] = [a.trace.reads.get(name), b.trace.reads.get(name)]
    changed = (
        a is None or b is None or a.trace.condition != b.trace.condition or a.trace.value != b.trace.value
    )
    return ConditionRow(
        depth=some.depth,
        clause=some.clause,
        before=sides[0],
        after=sides[1],
        changed=changed,
        reads_changed=reads_changed,
    )


def _union(first: list[str], second: list[str]) -> list[str]:
    return list(dict.fromkeys([*first, *second]))


# ---------------------------------------------------------------------------
# Comparing the rules themselves (syntax trees, spans ignored)


def rule_changes(before: p.Program, after: p.Program) -> list[RuleChange]:
    """Rules added, removed or changed, matched by id (`engine.changes`: layout, comments and the
    order of `overrides` are not changes)."""
    changes = []
    for rule_id, a, b in rule_matches(before, after):
        aspects: list[RuleAspect] = []
        if a is not None and b is not None:
            kinds = rule_aspects(a.decl, b.decl)
            if not kinds:
                continue
            aspects = [aspect for aspect, folds in DIFF_ASPECTS if set(folds) & set(kinds)]
        changes.append(
            RuleChange(
                rule=rule_id,
                change="added" if a is None else "removed" if b is None else "changed",
                aspects=aspects,
                wording_only=bool(aspects) and set(aspects) <= WORDING_ASPECTS,
                before=_rule_text(a.decl if a else None),
                after=_rule_text(b.decl if b else None),
            )
        )
    return changes


#: The diff report's aspects, in its fixed order, and the `engine.changes` aspects each stands for.
DIFF_ASPECTS: tuple[tuple[RuleAspect, tuple[Aspect, ...]], ...] = (
    ("wording", ("description",)),
    ("citations", ("citations",)),
    ("precedence", ("overrides",)),
    ("condition", ("condition", "unless")),
    ("outcome", ("outcomes",)),
)


def _rule_text(decl: s.RuleDecl | None) -> RuleText | None:
    if decl is None:
        return None
    return RuleText(
        description=decl.description,
        citations=list(decl.citations),
        overrides=[o.name for o in decl.overrides],
        condition=s.unparse(decl.condition),
        unless=[s.unparse(u) for u in decl.unless],
        outcomes=[_outcome_source(o) for o in decl.outcomes],
    )


def _outcome_source(outcome: s.Outcome) -> str:
    if isinstance(outcome, s.Decide):
        return f"decide {outcome.decision.name} = {s.unparse(outcome.value)}"
    word = "require" if isinstance(outcome, s.Require) else "recommend"
    return f"{word} {outcome.name.name}"


def definition_changes(before: p.Program, after: p.Program) -> list[DefinitionChange]:
    """Derived facts whose definition differs (`engine.changes.derived_differs`: syntax or type)."""
    changes = []
    for name, a, b in derived_matches(before, after):
        if a is not None and b is not None and not derived_differs(a, b):
            continue
        changes.append(
            DefinitionChange(
                name=name,
                change="added" if a is None else "removed" if b is None else "changed",
                before=None if a is None else s.unparse(a.node.source),
                after=None if b is None else s.unparse(b.node.source),
            )
        )
    return changes


def header_changes(before: p.Program, after: p.Program) -> list[HeaderChange]:
    """Header fields whose value differs (the version's own name and dates included)."""
    if before.syntax is None or after.syntax is None:
        return []
    old = {f.name: str(f.value) for f in before.syntax.header.fields}
    new = {f.name: str(f.value) for f in after.syntax.header.fields}
    return [
        HeaderChange(field=name, before=old.get(name), after=new.get(name))
        for name in aligned(list(old), list(new))
        if old.get(name) != new.get(name)
    ]


def _item_anchor(item: Any) -> str:
    """How a reviewer names a declaration: `rule cc-favorable`, `fact end_user.type`, `use "../x.vocab"`."""
    kind = type(item).__name__.removesuffix("Decl").lower()
    if isinstance(item, s.RuleDecl):
        return f"rule {item.id.name}"
    if isinstance(item, s.FactDecl):
        return f"fact {'.'.join(item.path)}"
    if isinstance(item, s.Use):
        return f'use "{item.path}"'
    name = getattr(item, "name", None)
    return f"{kind} {getattr(name, 'name', name)}"


def comment_blocks(tree: s.SourceFile) -> dict[str, str]:
    """Each declaration's comments (those above it and inside it), words only, by anchor."""
    items = sorted(tree.items, key=lambda i: i.span.line)
    blocks: dict[str, list[str]] = {}
    for comment in tree.comments:
        line = comment.span.line
        owner = next((i for i in items if i.span.end_line >= line), None)
        if owner is None:
            anchor = "(end of file)"
        elif owner is items[0] and line < owner.span.line and line <= tree.header.span.end_line + 1:
            anchor = "(header)"
        else:
            anchor = _item_anchor(owner)
        blocks.setdefault(anchor, []).append(comment.text.lstrip("#").strip())
    return {anchor: " ".join(" ".join(parts).split()) for anchor, parts in blocks.items()}


def comment_changes(before: p.Program, after: p.Program) -> list[CommentChange]:
    """Comment blocks whose words differ; layout (wrapping, indentation, blank lines) is not a change."""
    if before.syntax is None or after.syntax is None:
        return []
    old, new = comment_blocks(before.syntax), comment_blocks(after.syntax)
    return [
        CommentChange(anchor=anchor, before=old.get(anchor), after=new.get(anchor))
        for anchor in aligned(list(old), list(new))
        if old.get(anchor) != new.get(anchor)
    ]


# ---------------------------------------------------------------------------
# The whole report


def compare(
    before: Side,
    after: Side,
    cases: Sequence[CaseFile],
    *,
    cases_from: str,
    single: bool = False,
    progress: Callable[[str], None] | None = None,
) -> DiffReport:
    """Diff every case; unchanged cases are counted but only kept when one case was asked for.

    `progress` is called with each case's name once it is compared (the CLI's counter line).
    """
    diffs = []
    for case in cases:
        diffs.append(compare_case(case, before, after))
        if progress is not None:
            progress(case.name)
    kept = diffs if single else [d for d in diffs if d.status != "unchanged"]
    return DiffReport(
        mode="case" if single else "cases",
        before=before.info(),
        after=after.info(),
        cases_from=cases_from,
        summary=summarise(diffs),
        cases=kept,
        rule_changes=rule_changes(before.policy.compiled.program, after.policy.compiled.program),
        definition_changes=definition_changes(before.policy.compiled.program, after.policy.compiled.program),
        header_changes=header_changes(before.policy.compiled.program, after.policy.compiled.program),
        comment_changes=comment_changes(before.policy.compiled.program, after.policy.compiled.program),
    )


def summarise(diffs: Sequence[CaseDiff]) -> Summary:
    """Counts by status and, per transition, the cases that show it (most cases first)."""
    groups: dict[str, tuple[OutcomeChange, list[str]]] = {}
    for diff in diffs:
        for change in diff.changes:
            groups.setdefault(change.transition, (change, []))[1].append(diff.case)
    transitions = [
        Transition(
            key=key,
            label=transition_label(change),
            kind=change.kind,
            name=change.name,
            before=change.before,
            after=change.after,
            count=len(names),
            cases=names,
        )
        for key, (change, names) in groups.items()
    ]
    transitions.sort(key=lambda t: (-t.count, t.kind != "decision", t.label))
    statuses = [d.status for d in diffs]
    return Summary(
        compared=sum(x != "failed" for x in statuses),
        changed=statuses.count("changed"),
        reasons_changed=statuses.count("reasons_changed"),
        unchanged=statuses.count("unchanged"),
        failed=statuses.count("failed"),
        transitions=transitions,
    )


# ---------------------------------------------------------------------------
# Rendering


VERDICT = {True: "yes", False: "no", None: "unknown"}
STATUS_WORDS = {"fired": "fired", "not_fired": "not fired", "overridden": "overridden", "unknown": "unknown"}

_COLOURS = {"add": "32", "remove": "31", "change": "33", "head": "1", "dim": "2"}


def _painter(color: bool) -> Callable[[str, str], str]:
    def paint(text: str, style: str) -> str:
        if color and text:
            return escape.trusted(f"\x1b[{_COLOURS[style]}m{escape.terminal(text)}\x1b[0m")
        return text

    return paint


def status_text(side: RuleSide | None, absent: str = "(not in this version)") -> str:
    """A rule's status in plain words, with who overrode it."""
    if side is None:
        return absent
    text = STATUS_WORDS[side.status]
    if side.overridden_by:
        text += " by " + ", ".join(side.overridden_by)
    if side.missing:
        text += " (missing " + ", ".join(side.missing) + ")"
    return text


def condition_text(side: ConditionSide | None) -> str:
    """`yes     text`, indented by the condition's depth in its own version's tree."""
    return "" if side is None else "  " * side.depth + f"{VERDICT[side.value]:<7} {side.condition}"


def reads_text(row: ConditionRow) -> str:
    return ", ".join(
        f"{k} {format_value(v[0])} -> {format_value(v[1])}" for k, v in row.reads_changed.items()
    )


def markdown_cell(text: str) -> str:
    """Text safe inside a Markdown table cell: no pipes or line breaks."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_code(text: Any) -> str:
    """Inline code that holds any text: a fence longer than any run of backticks inside, one line."""
    body = markdown_cell(str(text))
    fence = "`" * (max((len(run) for run in re.findall(r"`+", body)), default=0) + 1)
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def rule_ids(refs: Sequence[RuleRef]) -> str:
    """`rule`, `rule`: the rules behind an outcome, by id only (their citations are listed once, per rule)."""
    if not refs:
        return "no rule (default)"
    return ", ".join(markdown_code(r.rule) for r in refs)


def rule_refs(refs: Sequence[RuleRef]) -> str:
    """`rule [cite; cite], rule [...]`, or the default when no rule decided."""
    if not refs:
        return "no rule (default)"
    return ", ".join(f"{r.rule} [{'; '.join(r.citations)}]" if r.citations else r.rule for r in refs)


@dataclass(frozen=True)
class Row:
    """One line of two traces shown side by side; `kind` is outcome, derived, rule, status or condition."""

    kind: str
    label: str
    before: str
    after: str
    differs: bool


def side_by_side(diff: CaseDiff) -> list[Row]:
    """The two traces of a case next to each other, outcomes first, then every rule by id."""
    rows: list[Row] = []
    if diff.before is None or diff.after is None:
        return rows
    for name in _union(list(diff.before.decisions), list(diff.after.decisions)):
        old, new = diff.before.decisions.get(name, "-"), diff.after.decisions.get(name, "-")
        rows.append(Row("outcome", name, old, new, old != new))
    for label, old_list, new_list in (
        ("obligations", diff.before.obligations, diff.after.obligations),
        ("recommendations", diff.before.recommendations, diff.after.recommendations),
    ):
        old_text, new_text = ", ".join(old_list) or "-", ", ".join(new_list) or "-"
        rows.append(Row("outcome", label, old_text, new_text, set(old_list) != set(new_list)))
    for value in diff.derived:
        rows.append(
            Row(
                "derived",
                value.name,
                _defined(value.before, value.defined_before),
                _defined(value.after, value.defined_after),
                True,
            )
        )
    for rule in diff.rules:
        cites = f" [{'; '.join(rule.citations)}]" if rule.citations else ""
        rows.append(Row("rule", rule.rule + cites, "", "", rule.changed))
        rows.append(
            Row(
                "status",
                "status",
                status_text(rule.before, ABSENT),
                status_text(rule.after, ABSENT),
                rule.status_changed,
            )
        )
        one_sided = rule.before is None or rule.after is None
        for cond in rule.conditions:
            word = cond.clause if cond.depth == 0 else ""
            rows.append(
                Row(
                    "condition",
                    word,
                    condition_text(cond.before),
                    condition_text(cond.after),
                    rule.changed if one_sided else cond.changed,
                )
            )
    return rows


def listed_rules(diff: CaseDiff) -> list[RuleRow]:
    """The rules a case's Markdown lists: those that changed, and those an outcome change names
    (in trace order), each once with its description and citations."""
    named = {ref.rule for change in diff.changes for ref in (*change.rules_before, *change.rules_after)}
    return [rule for rule in diff.rules if rule.changed or rule.rule in named]


def _defined(value: Any, defined: bool) -> str:
    return format_value(value) if defined else "(not defined)"


@cache
def environment(html: bool = False) -> Environment:
    """jinja2 for the diff reports; HTML escapes everything, the plain formats nothing."""
    env = new_environment(autoescape=html)
    env.filters["refs"] = rule_refs
    env.filters["status"] = status_text
    env.filters["label"] = transition_label
    env.filters["cond"] = condition_text
    env.filters["reads"] = reads_text
    env.filters["verdict"] = lambda v: VERDICT[v]
    env.filters["short"] = lambda h: h[:12]
    env.filters["cell"] = markdown_cell
    env.filters["code"] = markdown_code
    env.filters["ids"] = rule_ids
    env.filters["facts"] = fact_lines
    return env


def _context(report: DiffReport, color: bool = False) -> dict[str, Any]:
    sections = [
        ("Changed cases", [c for c in report.cases if c.status == "changed"]),
        ("Same outcome, different reasons", [c for c in report.cases if c.status == "reasons_changed"]),
        ("Cases that could not be compared", [c for c in report.cases if c.status == "failed"]),
    ]
    return {
        "r": report,
        "a": report.before,
        "b": report.after,
        "paint": _painter(color),
        "sections": sections,
        "side_by_side": side_by_side,
        "listed_rules": listed_rules,
    }


def render_text(report: DiffReport, color: bool = False) -> str:
    """The terminal report (colour only when asked, i.e. on a terminal)."""
    name = "diff.case.txt.j2" if report.mode == "case" else "diff.txt.j2"
    return _tidy(environment().get_template(name).render(**_context(report, color)))


def render_markdown(report: DiffReport) -> str:
    """A report for a pull-request comment."""
    return _tidy(environment().get_template("diff.md.j2").render(**_context(report)))


def render_json(report: DiffReport) -> str:
    """The stable JSON report: the model's dump (docs/diff-format.md)."""
    return escape.json_text(json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False)) + "\n"


def render_html(report: DiffReport) -> str:
    """A self-contained page (inline CSS and JS, no network) a reviewer opens in a browser."""
    env = environment(html=True)
    return env.get_template("diff.html.j2").render(**_context(report))


def render(report: DiffReport, fmt: str, color: bool = False) -> str:
    """Render a report in one of FORMATS."""
    if fmt == "json":
        return render_json(report)
    if fmt == "md":
        return render_markdown(report)
    if fmt == "html":
        return render_html(report)
    return render_text(report, color)


def _tidy(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, one final newline."""
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line == "" and (not out or out[-1] == ""):
            continue
        out.append(line)
    return "\n".join(out).rstrip("\n") + "\n"
