"""Every diagnostic code, in one registry: its severity, what it means, where it is documented.

The parser, loader, checker, conflict search, case readers, tools and operator commands
emit only codes listed in `CODES`; the errors gallery test (`tests/test_errors_gallery.py`)
reads this registry to require a gallery file for every `GALLERY_STAGES` code and a section
of `docs/errors.md` for every code, and checks that the source emits no unlisted code.
Lint codes live with the lint rules (`engine.linter.CODES`, documented in
`docs/linting.md`); `all_codes()` lists both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine.errors import Severity

Stage = Literal["parse", "load", "check", "conflicts", "case", "usage", "tool", "operator", "lint"]

#: Stages that read policies: each of their codes has a broken file in fixtures/errors/.
GALLERY_STAGES: frozenset[Stage] = frozenset({"parse", "load", "check", "conflicts"})


@dataclass(frozen=True)
class Code:
    """One diagnostic code: its default severity, one line of meaning, the stage that emits it."""

    code: str
    severity: Severity
    summary: str
    stage: Stage

    @property
    def page(self) -> str:
        return "docs/linting.md" if self.stage == "lint" else "docs/errors.md"

    @property
    def anchor(self) -> str:
        """The documentation link of the code (`docs/errors.md#unknown-fact`)."""
        return f"{self.page}#{self.code}"


_E, _W = Severity.ERROR, Severity.WARNING

#: Every code except the linter's, in the order of the index of docs/errors.md.
CODES: dict[str, Code] = {
    c.code: c
    for c in (
        Code("syntax", _E, "the text does not follow the grammar", "parse"),
        Code(
            "unknown-fact",
            _E,
            "a condition names a fact nobody declared (in a case: a field that is no fact)",
            "check",
        ),
        Code("unknown-value", _E, "a value outside its enumeration", "check"),
        Code("unknown-type", _E, "a type name that is not declared", "check"),
        Code("unknown-group", _E, "a set name that is not declared", "check"),
        Code("unknown-table", _E, "a lookup in a table that is not declared", "check"),
        Code("unknown-rule", _E, "`overrides` names a rule that does not exist", "check"),
        Code("unknown-decision", _E, "`decide` names a decision nobody declared", "check"),
        Code("unknown-obligation", _E, "`require` names an obligation nobody declared", "check"),
        Code("unknown-recommendation", _E, "`recommend` names a recommendation nobody declared", "check"),
        Code(
            "unrounded-division", _E, "a stored number divides without a declared scale and rounding", "check"
        ),
        Code("unknown-function", _E, "a call of a function the language does not have", "check"),
        Code("type-mismatch", _E, "an expression of the wrong type", "check"),
        Code(
            "unrounded-division", _E, "a stored number divides without a declared scale and rounding", "check"
        ),
        Code("unknown-function", _E, "a call of a function the language does not have", "check"),
        Code("duplicate-name", _E, "a name declared twice", "check"),
        Code("duplicate-rule", _E, "two rules with the same id", "check"),
        Code("duplicate-value", _E, "a value listed twice in an enumeration", "check"),
        Code("duplicate-header-field", _E, "a header field given twice", "check"),
        Code("missing-header-field", _E, "a policy header without a required field", "check"),
        Code("missing-default", _E, "a decision without `default`", "check"),
        Code("bad-status", _E, "a status other than draft, proposed, in-force", "check"),
        Code("bad-date-range", _E, "`ends` before `effective`", "check"),
        Code("cyclic-override", _E, "rules that override each other in a circle", "check"),
        Code("cyclic-definition", _E, "a derived fact that depends on itself", "check"),
        Code("cyclic-use", _E, "vocabularies that use each other", "load"),
        Code("use-not-vocabulary", _E, "`use` names a policy file", "load"),
        Code("file-not-found", _E, "a file that cannot be read", "load"),
        Code("table-data", _E, "a table file that does not match its declaration", "check"),
        # Folder and structure checks (engine/versioncheck.py, engine/limits.py): a version folder or
        # a 65-level condition is not a one-file gallery entry, so they are documented without one.
        Code("broken-version", _E, "a version file whose header cannot be read", "tool"),
        Code("wrong-policy", _E, "a version file naming another policy", "tool"),
        Code("overlapping-versions", _E, "two in-force versions on the same day", "tool"),
        Code("too-deep", _E, "nesting or a chain past the engine's limits", "tool"),
        Code("rule-in-vocabulary", _E, "a rule in a vocabulary", "check"),
        Code("presence-of-required", _W, "`is present`/`is missing` on a required fact", "check"),
        Code("conflict", _E, "two rules can decide one decision differently", "conflicts"),
        Code("format-unsafe", _E, "`policy fmt` would change a file's meaning (a formatter bug)", "tool"),
        Code("intent", _E, "`policy test` cannot read an intent expectation file", "tool"),
        Code("invalid-case", _E, "a case does not match the policy's fact declarations", "case"),
        Code("invalid-json", _E, "a case file is not valid JSON", "case"),
        Code("invalid-tokens", _E, "`policy serve`: the tokens file is unreadable or malformed", "operator"),
        Code("non-durable-log", _E, "`policy serve`: the log could lose acknowledged decisions", "operator"),
        Code(
            "log",
            _E,
            "`policy log`, `replay`, `serve`: the decision log cannot be opened, read or written",
            "operator",
        ),
        Code("missing-fact", _E, "a case lacks a required fact", "case"),
        Code("invalid-value", _E, "a case value has the wrong type or is outside its enumeration", "case"),
        Code("unreadable-case", _E, "a case file cannot be read", "case"),
        Code(
            "usage", _E, "the request cannot be met: a missing file, a date that is not YYYY-MM-DD", "usage"
        ),
        Code(
            "version",
            _E,
            "no single version answers: several in force, an unknown name, a broken version file",
            "usage",
        ),
        Code("no-version-in-force", _E, "no version is in force on the date asked", "usage"),
    )
}


def all_codes() -> dict[str, Code]:
    """`CODES` and the linter's codes: everything `policy check`, `policy lint` and the tools can print."""
    from engine.linter import CODES as LINT_CODES  # the linter is a tool above this module

    lint = {c.code: Code(c.code, c.severity, c.summary, "lint") for c in LINT_CODES.values()}
    return {**CODES, **lint}
