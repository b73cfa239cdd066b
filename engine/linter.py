"""`policy lint`: findings a policy can check but should not ship with (docs/linting.md).

The checker rejects what cannot run; the linter reports what runs but is probably wrong or
hard to maintain: rules without a citation, declarations nothing reads, rules that can
never fire or never take effect, decision values no rule produces, version windows that
overlap or leave a gap, and published versions whose text changed. Every finding has a
code, a location and a help line; severities come from `[tool.policy.lint]` in
pyproject.toml, and a finding is silenced in the source with
`# lint: allow CODE -- reason` on its line or in the comment block just above it.

"Can never fire" is a proof, not a guess: see `Reasoner`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from lark.exceptions import LarkError

from engine import program as p
from engine import syntax as s
from engine.api import Environment, default_environment, policy_files
from engine.checker import CheckResult
from engine.errors import Diagnostic, Severity, Span, UsageError, has_errors
from engine.grammar import item_keywords
from engine.grammar import parser as lark_parser
from engine.loader import Loader
from engine.parser import parse
from engine.registry import VersionEntry, read_versions

# ---------------------------------------------------------------------------
# Codes and configuration


@dataclass(frozen=True)
class LintCode:
    """A kind of finding: its default severity and one line for `policy lint --list-codes`."""

    code: str
    severity: Severity
    summary: str


_W, _E = Severity.WARNING, Severity.ERROR
CODES: dict[str, LintCode] = {
    c.code: c
    for c in (
        LintCode("missing-citation", _W, "a rule cites no source paragraph"),
        LintCode("missing-description", _W, "a rule has no description"),
        LintCode("unused-fact", _W, "a fact no rule reads, directly or through a derived fact"),
        LintCode("unused-derived", _W, "a derived fact no rule reads"),
        LintCode("unused-group", _W, "a group no rule or derived fact uses"),
        LintCode("unused-table", _W, "a reference table nothing looks up"),
        LintCode("unused-outcome", _W, "an obligation or recommendation no rule produces"),
        LintCode("unused-vocabulary", _W, "a vocabulary no policy beside it uses"),
        LintCode(
            "decision-value-never-produced", _W, "a decision value no rule decides (and not the default)"
        ),
        LintCode(
            "unguarded-optional",
            _W,
            "a rule reads an optional fact that has no default and tests no presence of it",
        ),
        LintCode("rule-never-fires", _E, "a rule whose condition can never hold (with its unless clauses)"),
        LintCode("rule-shadowed", _E, "a rule that can fire but is always overridden by an exception"),
        LintCode("version-overlap", _E, "two in-force versions are in force on the same day"),
        LintCode("version-gap", _W, "days between two in-force versions when none is in force"),
        LintCode("version-changed", _E, "the text of a published (locked) version changed"),
        LintCode("version-removed", _E, "a published (locked) version's file is gone"),
        LintCode("version-not-locked", _W, "an in-force version is not yet in versions.lock"),
        LintCode("suppression-without-reason", _E, "`# lint: allow` without `-- reason`"),
        LintCode("unknown-lint-code", _W, "a suppression names a code the linter does not have"),
        LintCode("unused-suppression", _W, "a suppression that silences nothing"),
    )
}

LOCK_FILE = "versions.lock"
_LEVELS = {"error": Severity.ERROR, "warning": Severity.WARNING, "off": None}


@dataclass
class LintConfig:
    """Severity per code (None = off), from `[tool.policy.lint] severity = {code = "error"}`."""

    severity: dict[str, Severity | None] = field(default_factory=dict)
    source: Path | None = None

    def level(self, finding: Diagnostic) -> Severity | None:
        """The severity a finding is reported with; the checker's own diagnostics keep theirs."""
        if finding.code in self.severity:
            return self.severity[finding.code]
        return CODES[finding.code].severity if finding.code in CODES else finding.severity

    @classmethod
    def load(cls, path: Path | None = None, start: Path | None = None) -> LintConfig:
        """Read the given pyproject.toml, or the nearest one above `start` (the cwd); none is fine."""
        found = path or _nearest_pyproject(start or Path.cwd())
        if found is None:
            return cls()
        try:
            data = tomllib.loads(found.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"cannot read `{found}`: {exc}", "fix the TOML, or pass --config") from exc
        table = data.get("tool", {}).get("policy", {}).get("lint", {})
        return cls(_severities(table.get("severity", {}), found), found)


def _nearest_pyproject(start: Path) -> Path | None:
    for folder in [start.resolve(), *start.resolve().parents]:
        if (folder / "pyproject.toml").is_file():
            return folder / "pyproject.toml"
    return None


def _severities(raw: Any, where: Path) -> dict[str, Severity | None]:
    """Validate the severity table: known codes, known levels; a mistake is a usage error."""
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: `[tool.policy.lint] severity` must be a table of code = level")
    out: dict[str, Severity | None] = {}
    for code, level in raw.items():
        if code not in CODES:
            raise UsageError(
                f"{where}: `[tool.policy.lint] severity` names unknown code `{code}`",
                "`policy lint --list-codes` lists the codes",
            )
        if level not in _LEVELS:
            raise UsageError(
                f"{where}: severity of `{code}` is `{level}`", 'a severity is "error", "warning" or "off"'
            )
        out[code] = _LEVELS[level]
    return out


# ---------------------------------------------------------------------------
# The run


@dataclass
class LintResult:
    """Every finding of one run, in source order, with the texts needed to render them."""

    findings: list[Diagnostic]
    sources: dict[str, str]
    files: list[Path]
    locks_written: list[Path] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(d.severity is Severity.ERROR for d in self.findings)


def lint(
    paths: Iterable[str | Path],
    config: LintConfig | None = None,
    *,
    update_lock: bool = False,
    progress: Callable[[str], None] | None = None,
    environment: Environment | None = None,
) -> LintResult:
    """Lint files and folders; with `update_lock`, first lock in-force versions not yet locked.

    `progress` is called with each file's name once it is checked (the CLI's counter line).
    """
    run = _Run(config or LintConfig(), environment or default_environment)
    files = policy_files(paths)
    locks = run.update_locks(files) if update_lock else []
    findings = run.lint(files, progress)
    return LintResult(findings, run.sources, files, locks)


class _Run:
    """One lint run: checked programs are shared between the files that need them."""

    def __init__(self, config: LintConfig, environment: Environment):
        self.config = config
        self.environment = environment  # holds the one cache of checked files
        self.sources: dict[str, str] = {}

    def check(self, path: Path) -> CheckResult:
        result = self.environment.check_file(path)
        self.sources.update(result.sources)
        return result

    def lint(self, files: list[Path], progress: Callable[[str], None] | None = None) -> list[Diagnostic]:
        raw: list[Diagnostic] = []
        trees: dict[Path, s.SourceFile] = {}
        for path in files:
            result = self.check(path)
            if progress is not None:
                progress(str(path))
            raw += result.diagnostics
            tree = _tree(path, self.sources, self.environment.loader)
            if tree is None:
                continue
            trees[path] = tree
            if tree.header.kind == "policy":
                raw += _rule_hygiene(tree)
                if result.program is not None and not has_errors(result.diagnostics):
                    raw += _rule_reachability(result.program)
                    raw += _unguarded_optionals(result.program)
        raw += self._unused(trees)
        raw += _versions([p for p, t in trees.items() if t.header.kind == "policy"], self.environment.loader)
        return self._finish(raw, trees)

    # -- declarations nothing uses --------------------------------------------
    def _unused(self, trees: dict[Path, s.SourceFile]) -> list[Diagnostic]:
        found: list[Diagnostic] = []
        for path, tree in trees.items():
            users = self._users(path, tree)
            if users is None:
                continue
            if not users:
                found.append(
                    Diagnostic.at(
                        "unused-vocabulary",
                        f"no policy under `{_universe_root(path)}` uses vocabulary `{tree.header.id}`, "
                        "so its declarations were not checked for use",
                        tree.header.span,
                        f'policies use it with `use "{path.name}"` (the path relative to the policy)',
                    )
                )
                continue
            found += _unused_declarations(tree, path, users)
        return found

    def _users(self, path: Path, tree: s.SourceFile) -> list[p.Program] | None:
        """The checked programs that can see a file's declarations; None if one failed to check.

        A policy is its own only user. A vocabulary's users are the policies under the folder
        above its own (`policies/` for `policies/shared/x.vocab`) that use it, directly or
        through another vocabulary: a vocabulary fact one policy ignores is still used if
        another policy reads it.
        """
        target = path.resolve()
        candidates = (
            [path]
            if tree.header.kind == "policy"
            else [f for f in policy_files([_universe_root(path)]) if f.suffix == ".policy"]
        )
        users: list[p.Program] = []
        for candidate in candidates:
            result = self.check(candidate)
            reads = {Path(f).resolve() for f in result.sources}
            if target not in reads:
                continue
            if result.program is None or has_errors(result.diagnostics):
                return None
            users.append(result.program)
        return users

    # -- lock files -------------------------------------------------------------
    def update_locks(self, files: list[Path]) -> list[Path]:
        written = []
        for folder in _policy_folders(files):
            if update_lock_file(folder):
                written.append(folder / LOCK_FILE)
        return written

    # -- suppression and severity ---------------------------------------------------
    def _finish(self, raw: list[Diagnostic], trees: dict[Path, s.SourceFile]) -> list[Diagnostic]:
        """Drop suppressed findings, report bad suppressions in the linted files, apply severities."""
        suppressions = {str(path): _suppressions(tree, self.sources) for path, tree in trees.items()}
        out: list[Diagnostic] = []
        for finding in raw:
            if finding.file not in suppressions:
                tree = _tree(Path(finding.file), self.sources, self.environment.loader)
                suppressions[finding.file] = _suppressions(tree, self.sources) if tree else []
            if finding.code in CODES and any(a.covers(finding) for a in suppressions[finding.file]):
                continue
            out.append(finding)
        for path in trees:
            out += _suppression_findings(suppressions[str(path)])
        leveled = []
        for finding in {(d.file, d.line, d.column, d.code, d.message): d for d in out}.values():
            level = self.config.level(finding)
            if level is not None:
                leveled.append(finding.model_copy(update={"severity": level}))
        return sorted(leveled, key=Diagnostic.sort_key)


def _tree(path: Path, sources: dict[str, str], loader: Loader | None = None) -> s.SourceFile | None:
    """A file's tree, parsed through the run's loader (whose cache a long-running caller keeps)."""
    text = sources.get(str(path))
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            return None
        sources[str(path)] = text
    return (loader.parse(text, str(path)) if loader is not None else parse(text, str(path))).tree


def _universe_root(vocabulary: Path) -> Path:
    return vocabulary.parent.parent


# ---------------------------------------------------------------------------
# Rule hygiene


def _rule_hygiene(tree: s.SourceFile) -> list[Diagnostic]:
    found = []
    for rule in tree.rules:
        if not rule.citations:
            found.append(
                Diagnostic.at(
                    "missing-citation",
                    f"rule `{rule.id.name}` cites no source",
                    rule.id.span,
                    'add a line `cite "..."` under the rule\'s description naming the section or '
                    "paragraph of the text it implements",
                )
            )
        if not rule.description:
            found.append(
                Diagnostic.at(
                    "missing-description",
                    f"rule `{rule.id.name}` has no description",
                    rule.id.span,
                    f'say in plain words what it does: `rule {rule.id.name} "..."`',
                )
            )
    return found


# ---------------------------------------------------------------------------
# Use: what the rules of a program read, following derived facts


@dataclass
class _Uses:
    """Names a program's rules reach, and who reads each declaration at all (live or not)."""

    live: set[tuple[str, str]] = field(default_factory=set)  # (kind, name)
    readers: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # -> derived facts reading it
    produced: dict[str, set[str]] = field(default_factory=dict)  # decision -> values decided


def _uses(program: p.Program) -> _Uses:
    uses = _Uses()
    for name, info in program.derived.items():
        for ref in _references(program, info.node):
            uses.readers.setdefault(ref, set()).add(name)
    todo: list[tuple[str, str]] = []
    for rule in program.rules:
        for node in (rule.condition, *rule.unless):
            todo += _references(program, node)
        for outcome in rule.outcomes:
            if outcome.kind == "decide" and isinstance(outcome.value, str):
                uses.produced.setdefault(outcome.name, set()).add(outcome.value)
            else:
                uses.live.add((outcome.kind, outcome.name))
    while todo:
        ref = todo.pop()
        if ref in uses.live:
            continue
        uses.live.add(ref)
        if ref[0] == "derived":
            todo += _references(program, program.derived[ref[1]].node)
    return uses


def _references(program: p.Program, node: p.Node) -> list[tuple[str, str]]:
    """The declarations one IR node names directly: facts, derived facts, tables, groups."""
    found: list[tuple[str, str]] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, p.FactRead | p.PresenceNode):
            found.append(("fact", current.path))
        elif isinstance(current, p.DerivedRead):
            found.append(("derived", current.name))
        elif isinstance(current, p.TableLookup | p.TableHas):
            found.append(("table", current.table))
        elif (
            isinstance(current, p.Const)
            and isinstance(current.source, s.Ref)
            and current.source.dotted in program.groups
        ):
            found.append(("group", current.source.dotted))
        stack += p.sub_nodes(current)
    return found


def _unguarded_optionals(program: p.Program) -> list[Diagnostic]:
    """Rules and derived facts that read an optional fact with no default and never test its presence.

    Such a rule is *unknown* on every case that leaves the fact out, and the decisions it could
    make stay undetermined: usually the author meant a default or a presence guard. The finding
    is where the read is written (a rule, or the derived fact that reads it), once.
    """
    found = []
    sites: list[tuple[str, str, Span, tuple[p.Node, ...]]] = [
        ("derived fact", name, info.span, (info.node,)) for name, info in program.derived.items()
    ]
    sites += [("rule", r.id, r.decl.id.span, (r.condition, *r.unless)) for r in program.rules]
    for kind, name, span, nodes in sites:
        refs = [ref for node in nodes for ref in _direct_reads(node)]
        guarded = {path for what, path in refs if what == "presence"}
        for path in dict.fromkeys(path for what, path in refs if what == "fact"):
            fact = program.facts.get(path)
            if fact is None or not fact.nullable or path in guarded:
                continue
            found.append(
                Diagnostic.at(
                    "unguarded-optional",
                    f"{kind} `{name}` reads optional fact `{path}`, which has no default: "
                    "on a case without it, it is unknown",
                    span,
                    f"give the fact a default (`fact {path}: ... default VALUE`), or test "
                    f"`{path} is present` here",
                )
            )
    return found


def _direct_reads(node: p.Node) -> list[tuple[str, str]]:
    """Facts a node reads (`fact`) and tests for presence (`presence`), not through derived facts."""
    found: list[tuple[str, str]] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, p.PresenceNode):
            found.append(("presence", current.path))
        elif isinstance(current, p.FactRead):
            found.append(("fact", current.path))
        stack += p.sub_nodes(current)
    return found


_UNUSED = {
    "fact": "unused-fact",
    "derived": "unused-derived",
    "group": "unused-group",
    "table": "unused-table",
}
_WORDS = {"fact": "fact", "derived": "derived fact", "group": "group", "table": "table"}


def _declarations(tree: s.SourceFile) -> Iterator[tuple[str, str, Span]]:
    """(kind, name, where) for each declaration of a file that can go unused."""
    for item in tree.items:
        if isinstance(item, s.FactDecl):
            yield "fact", item.dotted, item.span
        elif isinstance(item, s.DefineDecl):
            yield "derived", item.name.name, item.name.span
        elif isinstance(item, s.GroupDecl):
            yield "group", item.name.name, item.name.span
        elif isinstance(item, s.TableDecl):
            yield "table", item.name.name, item.name.span
        elif isinstance(item, s.ObligationDecl):
            yield "require", item.name.name, item.name.span
        elif isinstance(item, s.RecommendationDecl):
            yield "recommend", item.name.name, item.name.span


def _unused_declarations(tree: s.SourceFile, path: Path, users: list[p.Program]) -> list[Diagnostic]:
    uses = [_uses(program) for program in users]
    scope = _scope_words(tree, len(users))
    optional = {i.dotted: i.type.optional for i in tree.items if isinstance(i, s.FactDecl)}
    found: list[Diagnostic] = []
    for kind, name, span in _declarations(tree):
        if any((kind, name) in u.live for u in uses):
            continue
        if kind in ("require", "recommend"):
            word = "obligation" if kind == "require" else "recommendation"
            found.append(
                Diagnostic.at(
                    "unused-outcome",
                    f"no rule {'requires' if kind == 'require' else 'recommends'} {word} `{name}`{scope}",
                    span,
                    f"remove it, or add the rule that should `{kind} {name}`",
                )
            )
            continue
        readers = sorted(set().union(*(u.readers.get((kind, name), set()) for u in uses)))
        because = (
            f"; only {_names(readers)} read{'s' if len(readers) == 1 else ''} it, and no rule reads "
            f"{'that' if len(readers) == 1 else 'those'}"
            if readers
            else ""
        )
        found.append(
            Diagnostic.at(
                _UNUSED[kind],
                f"{_WORDS[kind]} `{name}` is declared but no rule uses it{scope}{because}",
                span,
                _unused_help(kind, tree, optional.get(name, False)),
            )
        )
    found += _decision_values(tree, users, uses, scope)
    return found


def _scope_words(tree: s.SourceFile, users: int) -> str:
    if tree.header.kind == "policy":
        return ""
    if users == 1:
        return " (in the one policy version that uses this vocabulary)"
    return f" (in any of the {users} policy versions that use this vocabulary)"


def _unused_help(kind: str, tree: s.SourceFile, optional: bool) -> str:
    if kind == "fact" and not optional:
        return "remove it: every case must supply a required fact, even one nothing reads"
    if tree.header.kind == "vocabulary":
        return "remove it, or suppress with `# lint: allow CODE -- reason` if a future policy needs it"
    return "remove it, or use it in a rule"


def _names(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _decision_values(
    tree: s.SourceFile, users: list[p.Program], uses: list[_Uses], scope: str
) -> list[Diagnostic]:
    found = []
    for item in tree.items:
        if not isinstance(item, s.DecisionDecl):
            continue
        name = item.name.name
        type_name = item.type.name
        enum = next(
            (u.enums.get(type_name) for u in users if type_name in u.enums and not item.type.is_set), None
        )
        if enum is None:
            continue
        produced = set().union(*(u.produced.get(name, set()) for u in uses))
        if isinstance(item.default, s.Ref):
            produced.add(item.default.dotted)
        for value in enum:
            if value not in produced:
                found.append(
                    Diagnostic.at(
                        "decision-value-never-produced",
                        f"decision `{name}` never takes the value `{value}`: no rule decides it{scope}, "
                        "and it is not the default",
                        item.name.span,
                        f"add the rule that should `decide {name} = {value}`, or drop `{value}` from "
                        f"`{item.type.name}`",
                    )
                )
    return found


# ---------------------------------------------------------------------------
# Rules that can never fire or never take effect


def _rule_reachability(program: p.Program) -> list[Diagnostic]:
    reasoner = Reasoner(program)
    found: list[Diagnostic] = []
    index = {rule.id: rule for rule in program.rules}
    for rule in program.rules:
        fires = reasoner.fires(rule)
        if reasoner.satisfiable(fires) is False:
            found.append(_never_fires(rule, reasoner))
            continue
        overriders = [r for r in program.rules if rule.id in r.overrides]
        if overriders and reasoner.satisfiable(reasoner.effective(rule, index)) is False:
            always = [
                o.id
                for o in overriders
                if reasoner.satisfiable(("and", (fires, ("not", reasoner.effective(o, index))))) is False
            ]
            by = _names(always) if always else "one of " + _names([o.id for o in overriders])
            found.append(
                Diagnostic.at(
                    "rule-shadowed",
                    f"rule `{rule.id}` can fire but never takes effect: whenever it fires, {by} overrides it",
                    rule.decl.id.span,
                    "narrow the exception's condition, or remove the rule it always displaces",
                )
            )
    return found


def _never_fires(rule: p.RuleInfo, reasoner: Reasoner) -> Diagnostic:
    alone = reasoner.satisfiable(reasoner.formula(rule.condition)) is False
    if alone:
        why = f"no case the declared facts allow makes its condition `{s.unparse(rule.decl.condition)}` true"
    else:
        condition = reasoner.formula(rule.condition)
        always = [
            f"`unless {s.unparse(clause.source)}`"
            for clause in rule.unless
            if reasoner.satisfiable(("and", (condition, ("not", reasoner.formula(clause))))) is False
        ]
        culprit = always[0] if len(always) == 1 else "an `unless` clause"
        why = f"in every case where its condition holds, {culprit} holds too"
    return Diagnostic.at(
        "rule-never-fires",
        f"rule `{rule.id}` can never fire: {why}",
        rule.decl.id.span,
        "look for contradictory tests of one fact (`x = A and x = B`), an empty set, "
        "or a test and its negation",
    )


Formula = tuple[Any, ...]
_UNKNOWN_ATOM = (True, False, None)


@dataclass
class _Var:
    """A value the reasoner chooses: a fact, or a table lookup (any value of its type)."""

    key: str
    type: p.Type
    nullable: bool
    atoms: list[int] = field(default_factory=list)


class Reasoner:
    """Decides whether a condition can be true for some case; sound, and complete for simple tests.

    A condition becomes a formula over *atoms*. An atom that tests one fact (or one table
    lookup) against constants is exact: the reasoner enumerates representative values of
    that fact (every enumeration value; for sets, one subset per pattern of the values the
    tests mention; numbers and dates around each constant), plus *missing* for optional
    facts, and keeps each distinct row of truth values. Any other test (two facts compared,
    `x in TABLE`) is an opaque atom that may be true, false or unknown. Derived facts are
    expanded. The search assigns each fact one row and evaluates the formula in
    three-valued logic, pruning partial assignments that can no longer make it true.

    `satisfiable` answers False only after an exhaustive search, so "never fires" is a
    proof; when the search would be too large it answers None (no finding).
    """

    MAX_ROWS = 4096
    MAX_STEPS = 200_000

    def __init__(self, program: p.Program):
        self.program = program
        self.atoms: list[p.Node] = []
        self._atom_index: dict[str, int] = {}
        self.vars: dict[str, _Var] = {}
        self.opaque: list[int] = []
        self._effective: dict[str, Formula] = {}

    # -- building formulas ------------------------------------------------------
    def fires(self, rule: p.RuleInfo) -> Formula:
        """True exactly when the rule fires: condition true and every unless clause false."""
        parts = [self.formula(rule.condition), *(("not", self.formula(u)) for u in rule.unless)]
        return ("and", tuple(parts))

    def effective(self, rule: p.RuleInfo, index: dict[str, p.RuleInfo]) -> Formula:
        """True exactly when the rule takes effect: it fires and no exception to it does."""
        if rule.id not in self._effective:
            overriders = [r for r in index.values() if rule.id in r.overrides]
            parts = [self.fires(rule), *(("not", self.effective(o, index)) for o in overriders)]
            self._effective[rule.id] = ("and", tuple(parts))
        return self._effective[rule.id]

    def formula(self, node: p.Node) -> Formula:
        if isinstance(node, p.AndNode):
            return ("and", tuple(self.formula(o) for o in node.operands))
        if isinstance(node, p.OrNode):
            return ("or", tuple(self.formula(o) for o in node.operands))
        if isinstance(node, p.NotNode):
            return ("not", self.formula(node.operand))
        if isinstance(node, p.DerivedRead) and node.type == p.BOOLEAN:
            return self.formula(self.program.derived[node.name].node)
        if isinstance(node, p.Const):
            return ("const", node.value)
        return ("atom", self._atom(node))

    def _atom(self, node: p.Node) -> int:
        key = s.unparse(node.source)
        if key in self._atom_index:
            return self._atom_index[key]
        index = len(self.atoms)
        self.atoms.append(node)
        self._atom_index[key] = index
        leaves = self._leaves(node)
        if leaves is not None and len(leaves) == 1:
            var = next(iter(leaves.values()))
            self.vars.setdefault(var.key, var).atoms.append(index)
        else:
            self.opaque.append(index)  # no fact (a constant test) is opaque too: rare, and safe
        return index

    def _leaves(self, node: p.Node) -> dict[str, _Var] | None:
        """The values a test reads; None when it cannot be evaluated from them (a table key test)."""
        if isinstance(node, p.FactRead | p.PresenceNode):
            fact = self.program.facts[node.path]
            return {node.path: _Var(node.path, fact.type, fact.nullable)}
        if isinstance(node, p.TableLookup):
            key = s.unparse(node.source)
            return {key: _Var(key, node.type, True)}
        if isinstance(node, (p.TableHas, *p.COMPUTED_NODES)):
            return None  # arithmetic is opaque to the search: a free atom, so no false proof
        if isinstance(node, p.DerivedRead):
            return self._leaves(self.program.derived[node.name].node)
        found: dict[str, _Var] = {}
        for child in p.sub_nodes(node):
            leaves = self._leaves(child)
            if leaves is None:
                return None
            found.update(leaves)
        return found

    # -- deciding -------------------------------------------------------------------
    def satisfiable(self, formula: Formula) -> bool | None:
        """True if some case makes the formula true, False if none can, None if too large to tell."""
        wanted = _atoms_of(formula)
        variables = [v for v in self.vars.values() if wanted.intersection(v.atoms)]
        choices: list[tuple[list[int], list[tuple[bool | None, ...]]]] = []
        for var in variables:
            rows = self._rows(var)
            if rows is None:
                return None
            choices.append((var.atoms, rows))
        choices += [([a], [(v,) for v in _UNKNOWN_ATOM]) for a in self.opaque if a in wanted]
        choices.sort(key=lambda c: len(c[1]))
        steps = [0]
        found = self._search(formula, choices, {}, steps)
        return None if found is None else found

    def _search(
        self,
        formula: Formula,
        choices: list[tuple[list[int], list[tuple[bool | None, ...]]]],
        assigned: dict[int, bool | None],
        steps: list[int],
    ) -> bool | None:
        steps[0] += 1
        if steps[0] > self.MAX_STEPS:
            return None
        can_true, _ = _possible(formula, assigned)
        if not can_true:
            return False
        if not choices:
            return True
        (atoms, rows), rest = choices[0], choices[1:]
        for row in rows:
            result = self._search(formula, rest, {**assigned, **dict(zip(atoms, row, strict=True))}, steps)
            if result is not False:
                return result
        return False

    def _rows(self, var: _Var) -> list[tuple[bool | None, ...]] | None:
        """The distinct truth-value rows of a variable's atoms over its representative values."""
        nodes = [self.atoms[a] for a in var.atoms]
        values = self._representatives(var, nodes)
        if values is None:
            return None
        rows = {tuple(_truth(self._value(n, {var.key: v})) for n in nodes) for v in values}
        return sorted(rows, key=repr)

    def _representatives(self, var: _Var, nodes: list[p.Node]) -> list[Any] | None:
        constants = self._constants(nodes, var.type.element)
        element = var.type.element
        if var.type.is_set:
            universe = (
                list(self.program.enums[element.enum or ""])
                if element.base == "enum"
                else [*sorted(constants, key=repr), _Fresh()]
            )
            values = _subsets(universe, self._mentioned_sets(nodes, element), self.MAX_ROWS)
            if values is None:
                return None
        else:
            values = _scalars(element, constants, self.program)
        return [*values, None] if var.nullable else values

    def _constants(self, nodes: list[p.Node], element: p.Type) -> set[Any]:
        found: set[Any] = set()
        for sets in self._mentioned_sets(nodes, element):
            found |= sets
        return found

    def _mentioned_sets(self, nodes: list[p.Node], element: p.Type) -> list[frozenset[Any]]:
        """Every constant of the element type the tests use, as sets (a scalar as a singleton)."""
        found: list[frozenset[Any]] = []
        stack = list(nodes)
        while stack:
            node = stack.pop()
            if isinstance(node, p.Const) and node.type.element == element:
                value = node.value
                found.append(value if isinstance(value, frozenset) else frozenset([value]))
            if isinstance(node, p.DerivedRead):
                stack.append(self.program.derived[node.name].node)
            stack += p.sub_nodes(node)
        return found

    def _value(self, node: p.Node, env: dict[str, Any]) -> Any:
        """Evaluate a test with the compiler's semantics, given the value of its one variable."""
        if isinstance(node, p.FactRead):
            return env[node.path]
        if isinstance(node, p.TableLookup):
            return env[s.unparse(node.source)]
        if isinstance(node, p.DerivedRead):
            return self._value(self.program.derived[node.name].node, env)
        if isinstance(node, p.Const):
            return node.value
        if isinstance(node, p.PresenceNode):
            return (env[node.path] is not None) == node.present
        if isinstance(node, p.NotNode):
            inner = self._value(node.operand, env)
            return None if inner is None else not inner
        if isinstance(node, p.AndNode | p.OrNode):
            values = [self._value(o, env) for o in node.operands]
            return _and3(values) if isinstance(node, p.AndNode) else _or3(values)
        if isinstance(node, p.CompareNode):
            return _compare(node.op, self._value(node.left, env), self._value(node.right, env))
        if isinstance(node, p.MemberNode):
            item, collection = self._value(node.item, env), self._value(node.collection, env)
            return _overlap(item, collection) if node.any_of else _contains(collection, item)
        if isinstance(node, p.IncludesNode):
            collection, item = self._value(node.collection, env), self._value(node.item, env)
            if node.mode == "one":
                return _contains(collection, item)
            if node.mode == "any":
                return _overlap(item, collection)
            return None if item is None or collection is None else item <= collection
        raise TypeError(f"not evaluable alone: {node!r}")


class _Fresh:
    """A value no test mentions (a string or number nobody wrote): stands for all of them."""

    def __repr__(self) -> str:
        return "<other>"


def _truth(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _and3(values: list[Any]) -> bool | None:
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def _or3(values: list[Any]) -> bool | None:
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


def _compare(op: str, left: Any, right: Any) -> bool | None:
    if left is None or right is None:
        return None
    if isinstance(left, _Fresh) or isinstance(right, _Fresh):
        return {"=": left is right, "!=": left is not right}.get(op)  # order tests on fresh: opaque
    answer: bool = {
        "=": left == right,
        "!=": left != right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]
    return answer


def _contains(collection: Any, item: Any) -> bool | None:
    return None if collection is None or item is None else item in collection


def _overlap(items: Any, collection: Any) -> bool | None:
    return None if items is None or collection is None else not frozenset(items).isdisjoint(collection)


def _scalars(element: p.Type, constants: set[Any], program: p.Program) -> list[Any]:
    """Representative scalar values: one per class of values the tests cannot tell apart."""
    if element.base == "boolean":
        return [True, False]
    if element.base == "enum":
        return list(program.enums[element.enum or ""])
    if element.base == "string":
        return [*sorted(constants, key=str), _Fresh()]
    ordered = sorted(constants)
    if element.base == "number":
        step: Any = Decimal(1)
        between = [(a + b) / 2 for a, b in itertools.pairwise(ordered)]
        base: list[Any] = [Decimal(0)]
    else:
        step = timedelta(days=1)
        between = [
            date.fromordinal((a.toordinal() + b.toordinal()) // 2) for a, b in itertools.pairwise(ordered)
        ]
        base = [date(2000, 1, 1)]
    around = [c + d for c in ordered for d in (step, -step)]
    return list(dict.fromkeys([*base, *ordered, *between, *around]))


def _subsets(universe: list[Any], sets: list[frozenset[Any]], limit: int) -> list[frozenset[Any]] | None:
    """One subset of the universe per pattern the tests can distinguish.

    Values that belong to exactly the same mentioned sets are interchangeable, so the
    universe splits into regions; a subset only matters through whether it holds none,
    some or all of each region.
    """
    regions: dict[tuple[bool, ...], list[Any]] = {}
    for value in universe:
        regions.setdefault(tuple(value in group for group in sets), []).append(value)
    states = [
        [frozenset(), frozenset(r[:1]), frozenset(r)] if len(r) > 1 else [frozenset(), frozenset(r)]
        for r in regions.values()
    ]
    total = 1
    for options in states:
        total *= len(options)
    if total > limit:
        return None
    return [frozenset().union(*combo) for combo in itertools.product(*states)]


def _atoms_of(formula: Formula) -> set[int]:
    if formula[0] == "atom":
        return {formula[1]}
    if formula[0] == "const":
        return set()
    if formula[0] == "not":
        return _atoms_of(formula[1])
    return set().union(*(_atoms_of(f) for f in formula[1]))


def _possible(formula: Formula, assigned: dict[int, bool | None]) -> tuple[bool, bool]:
    """(can be true, can be false) for a partial assignment: unassigned atoms may be anything."""
    kind = formula[0]
    if kind == "atom":
        if formula[1] not in assigned:
            return True, True
        value = assigned[formula[1]]
        return value is True, value is False
    if kind == "const":
        return formula[1] is True, formula[1] is False
    if kind == "not":
        can_true, can_false = _possible(formula[1], assigned)
        return can_false, can_true
    parts = [_possible(f, assigned) for f in formula[1]]
    if kind == "and":
        return all(t for t, _ in parts), any(f for _, f in parts)
    return any(t for t, _ in parts), all(f for _, f in parts)


# ---------------------------------------------------------------------------
# Versions: windows and the lock file


def _policy_folders(files: Iterable[Path]) -> list[Path]:
    return list(dict.fromkeys(f.parent for f in files if f.suffix == ".policy"))


def _versions(policies: list[Path], loader: Loader | None = None) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for folder in _policy_folders(policies):
        entries = read_versions(folder, loader)
        found += _windows(entries)
        found += _lock_findings(folder, entries)
    return found


def _header_span(entry: VersionEntry, field_name: str) -> Span:
    tree = parse(entry.path.read_text(encoding="utf-8"), str(entry.path)).tree
    if tree is None:
        return Span(str(entry.path), 1, 1, 1, 1)
    found = tree.header.get(field_name)
    return found.span if found is not None else tree.header.span


def _windows(entries: list[VersionEntry]) -> list[Diagnostic]:
    """In-force versions, by effective date, must follow each other with no overlap and no gap."""
    in_force = [e for e in entries if e.status == "in-force" and e.effective is not None]
    found = []
    for before, after in itertools.pairwise(in_force):
        assert after.effective is not None
        if before.ends is None or before.ends >= after.effective:
            until = f"ends {before.ends}" if before.ends else "has no `ends`"
            found.append(
                Diagnostic.at(
                    "version-overlap",
                    f"versions `{before.version}` and `{after.version}` are both in force on "
                    f"{after.effective}: `{before.version}` {until}",
                    _header_span(after, "effective"),
                    f"give `{before.version}` the line `ends {after.effective - timedelta(days=1)}`",
                )
            )
        elif before.ends + timedelta(days=1) < after.effective:
            first, last = before.ends + timedelta(days=1), after.effective - timedelta(days=1)
            found.append(
                Diagnostic.at(
                    "version-gap",
                    f"no version is in force from {first} to {last}, between `{before.version}` "
                    f"and `{after.version}`",
                    _header_span(after, "effective"),
                    f"if the gap is not intended, make `{before.version}` end on {last}",
                )
            )
    return found


def version_hash(path: Path) -> str:
    """sha256 of a version file's text without its `ends` field: what the lock file records.

    Closing a published version's window when the next version arrives (`ends DATE`) is the
    one edit a published version admits; everything else about it is append-only. The
    window checks (`version-overlap`, `version-gap`) keep the `ends` dates consistent.
    """
    text = path.read_text(encoding="utf-8")
    return hashlib.sha256(_without_ends(text).encode("utf-8")).hexdigest()


_ITEM_KEYWORDS = {keyword.upper() for keyword in item_keywords()}  # Lark names a keyword token by its word


def _without_ends(text: str) -> str:
    """The text with the header's `ends DATE` (and the line it leaves blank) cut out."""
    try:
        tokens = list(lark_parser().lex(text))
    except LarkError:
        return text  # an unreadable file is hashed as it is; the checker reports it
    for index, token in enumerate(tokens):
        if token.type in _ITEM_KEYWORDS:
            break
        if token.type == "ENDS" and index + 1 < len(tokens) and tokens[index + 1].type == "DATE":
            start, end = token.start_pos or 0, tokens[index + 1].end_pos or 0
            line_start = text.rfind("\n", 0, start) + 1
            line_end = text.find("\n", end)
            if not text[line_start:start].strip() and line_end != -1 and not text[end:line_end].strip():
                start, end = line_start, line_end + 1  # the field was a line of its own
            return text[:start] + text[end:]
    return text


def read_lock(folder: Path) -> dict[str, str]:
    lock = folder / LOCK_FILE
    if not lock.is_file():
        return {}
    data = json.loads(lock.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def update_lock_file(folder: Path) -> bool:
    """Add every in-force version not yet locked; never rewrite a locked hash. True if written.

    An unreadable lock file is left alone (linting reports it).
    """
    try:
        lock = read_lock(folder)
    except (json.JSONDecodeError, OSError):
        return False
    added = {
        e.version: version_hash(e.path)
        for e in read_versions(folder)
        if e.status == "in-force" and e.version not in lock
    }
    if not added:
        return False
    merged = dict(sorted({**lock, **added}.items()))
    (folder / LOCK_FILE).write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
    return True


def _lock_findings(folder: Path, entries: list[VersionEntry]) -> list[Diagnostic]:
    try:
        lock = read_lock(folder)
    except (json.JSONDecodeError, OSError) as exc:
        span = Span(str(folder / LOCK_FILE), 1, 1, 1, 1)
        return [
            Diagnostic.at(
                "version-changed",
                f"cannot read {LOCK_FILE}: {exc}",
                span,
                "restore it from version control; it maps each published version to its hash",
            )
        ]
    found = []
    by_version = {e.version: e for e in entries}
    for version, digest in lock.items():
        entry = by_version.get(version)
        if entry is None:
            found.append(
                Diagnostic.at(
                    "version-removed",
                    f"published version `{version}` is locked but its file is gone",
                    Span(str(folder / LOCK_FILE), 1, 1, 1, 1),
                    "published versions are append-only: restore the file; publish a change as a new version",
                )
            )
        elif version_hash(entry.path) != digest:
            found.append(
                Diagnostic.at(
                    "version-changed",
                    f"version `{version}` was published (it is in {LOCK_FILE}) and its text has changed",
                    _header_span(entry, "version"),
                    "published versions are append-only: undo the edit and publish the change as a new "
                    "version (a new file with its own `effective` date)",
                )
            )
    for entry in entries:
        if entry.status == "in-force" and entry.version not in lock:
            found.append(
                Diagnostic.at(
                    "version-not-locked",
                    f"in-force version `{entry.version}` is not in {LOCK_FILE}",
                    _header_span(entry, "status"),
                    f"once it is published, record it: `policy lint --update-lock {folder}`",
                )
            )
    return found


# ---------------------------------------------------------------------------
# Inline suppressions

_SUPPRESSION = re.compile(r"#\s*lint:\s*allow\b(?P<codes>[^#]*?)(?:--(?P<reason>.*))?$")


@dataclass
class _Allow:
    """One `# lint: allow CODE[, CODE] -- reason` comment and the lines it covers."""

    comment: s.Comment
    codes: tuple[str, ...]
    reason: str
    lines: range
    used: set[str] = field(default_factory=set)

    def covers(self, finding: Diagnostic) -> bool:
        if not self.reason or finding.code not in self.codes or finding.line not in self.lines:
            return False
        self.used.add(finding.code)
        return True


def _suppressions(tree: s.SourceFile, sources: dict[str, str]) -> list[_Allow]:
    """Suppressions of a file: each covers its own line, and one on a line of its own also
    covers the rest of its comment block and the line of code just below it."""
    lines = sources.get(tree.path, "").splitlines()
    own_lines = {c.span.line for c in tree.comments if not lines[c.span.line - 1][: c.span.col - 1].strip()}
    found = []
    for comment in tree.comments:
        match = _SUPPRESSION.search(comment.text)
        if match is None:
            continue
        codes = tuple(c for c in re.split(r"[\s,]+", match.group("codes").strip()) if c)
        reason = (match.group("reason") or "").strip()
        last = comment.span.line
        if last in own_lines:
            while last + 1 in own_lines:  # the rest of the comment block above the code
                last += 1
            last += 1
        found.append(_Allow(comment, codes, reason, range(comment.span.line, last + 1)))
    return found


def _suppression_findings(allowed: list[_Allow]) -> list[Diagnostic]:
    found = []
    for allow in allowed:
        span = allow.comment.span
        if not allow.reason:
            found.append(
                Diagnostic.at(
                    "suppression-without-reason",
                    "this suppression gives no reason, so it is ignored",
                    span,
                    "say why the finding is acceptable: `# lint: allow CODE -- reason`",
                )
            )
            continue
        for code in allow.codes:
            if code not in CODES:
                found.append(
                    Diagnostic.at(
                        "unknown-lint-code",
                        f"`{code}` is not a lint code",
                        span,
                        "`policy lint --list-codes` lists them",
                    )
                )
            elif code not in allow.used:
                found.append(
                    Diagnostic.at(
                        "unused-suppression",
                        f"nothing here is reported as `{code}`",
                        span,
                        "remove the suppression",
                    )
                )
        if not allow.codes:
            found.append(
                Diagnostic.at(
                    "unknown-lint-code",
                    "the suppression names no code",
                    span,
                    "write `# lint: allow CODE -- reason`",
                )
            )
    return found
