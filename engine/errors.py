"""Diagnostics: typed, coded, located problems, and the one renderer that shows them.

Every stage (parser, checker, loader, case validation) reports problems as `Diagnostic`
values collected into lists; only the API boundary raises, with `PolicyError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from engine.escape import terminal


class Severity(str, Enum):
    """How bad a finding is: errors stop compilation, warnings and notes do not."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True, slots=True)
class Span:
    """A region of a source file. Lines and columns are 1-based; `end_col` is exclusive."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NO_SPAN = Span("<unknown>", 0, 0, 0, 0)


class Diagnostic(BaseModel):
    """One problem found in a policy, a vocabulary, a table file or a case."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    code: str
    severity: Severity = Severity.ERROR
    message: str
    file: str
    line: int = 0
    column: int = 0
    end_line: int = 0
    end_column: int = 0
    help: str | None = None

    @classmethod
    def at(
        cls,
        code: str,
        message: str,
        span: Span,
        help: str | None = None,
        severity: Severity = Severity.ERROR,
    ) -> Diagnostic:
        """Build a diagnostic located at a syntax-tree span."""
        return cls(
            code=code,
            severity=severity,
            message=message,
            file=span.file,
            line=span.line,
            column=span.col,
            end_line=span.end_line,
            end_column=span.end_col,
            help=help,
        )

    @property
    def location(self) -> str:
        """`file:line:col`, the form editors and terminals turn into links."""
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"

    def sort_key(self) -> tuple[str, int, int, str]:
        """Diagnostics are reported in source order, as a reader meets them."""
        return (self.file, self.line, self.column, self.code)


class Error(Exception):
    """The base of every error the engine raises for a user's mistake.

    Each carries `diagnostics`: coded, located findings (a policy file's line and column,
    a case's field path), so an embedding application catches one type and reads one shape.
    """

    diagnostics: list[Diagnostic]

    def __init__(self, message: str, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__(message)


class PolicyError(Error):
    """Raised at the API boundary when a policy cannot be loaded or compiled.

    Carries every diagnostic that was collected, not only the first.
    """

    def __init__(self, diagnostics: Iterable[Diagnostic], sources: Mapping[str, str] | None = None):
        ordered = sorted(diagnostics, key=Diagnostic.sort_key)
        self.sources = dict(sources or {})
        super().__init__(render_all(ordered, self.sources, color=False), ordered)


class CaseDiagnostic(Diagnostic):
    """A problem in a case: where is the field path (`end_user.type`, `control_reason[1]`), not a line."""

    field: str = "(case)"


def case_problem(
    field: str, reason: str, code: str = "invalid-value", source: str = "<case>"
) -> CaseDiagnostic:
    """One coded case diagnostic: the field path, the reason in plain words, where the case came from."""
    return CaseDiagnostic(code=code, message=reason, file=source, field=field)


class CaseError(Error):
    """Raised when a case does not satisfy the policy's fact declarations.

    `diagnostics` holds one `CaseDiagnostic` per bad field (codes `missing-fact`,
    `unknown-fact`, `invalid-value`, `invalid-case`), so an integrator can fix all of them at
    once; `problems` is the same list as `(field path, reason)` pairs.
    """

    diagnostics: list[Diagnostic]

    def __init__(self, problems: Iterable[CaseDiagnostic | tuple[str, str]]):
        found = [p if isinstance(p, CaseDiagnostic) else case_problem(*p) for p in problems]
        lines = [f"  {d.field}: {d.message}" for d in found]
        super().__init__("invalid case:\n" + "\n".join(lines), found)
        self.case_diagnostics = found

    @property
    def problems(self) -> list[tuple[str, str]]:
        """Each bad field as (path, reason), in the order validation found them."""
        return [(d.field, d.message) for d in self.case_diagnostics]


class UsageError(Error):
    """A mistake in how the engine was asked to do something (unknown version, bad date, missing file)."""

    code = "usage"

    def __init__(self, message: str, help: str | None = None):
        self.help = help
        super().__init__(message, [Diagnostic(code=self.code, message=message, file="<usage>", help=help)])


class VersionError(UsageError):
    """No single version of a policy folder answers the request: none in force, several, or an unknown name.

    `code` is `version`, or `no-version-in-force` when the date asked falls before the first
    version or in a gap, so a caller can tell "pick another date" from "fix the folder".
    """

    code = "version"

    def __init__(self, message: str, help: str | None = None, code: str | None = None):
        if code is not None:
            self.code = code
        super().__init__(message, help)


def _source_line(sources: Mapping[str, str], file: str, line: int) -> str | None:
    """The text of one source line, from the given sources or from disk."""
    text = sources.get(file)
    if text is None:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except OSError:
            return None
    lines = text.splitlines()
    if 1 <= line <= len(lines):
        return lines[line - 1]
    return None


TAB_WIDTH = 4


def _displayed(line: str, start: int, end: int) -> tuple[str, str, str]:
    """A source line as printed (tabs expanded, controls escaped), and the parts before and under
    the columns `start`..`end` (1-based, end exclusive), so the underline lines up with the text."""
    expanded = line.expandtabs(TAB_WIDTH)
    first = len(line[: start - 1].expandtabs(TAB_WIDTH))
    last = len(line[: end - 1].expandtabs(TAB_WIDTH))
    return terminal(expanded), terminal(expanded[:first]), terminal(expanded[first:last])


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


_SEVERITY_COLOR = {Severity.ERROR: "1;31", Severity.WARNING: "1;33", Severity.NOTE: "1;36"}


def render(diagnostic: Diagnostic, sources: Mapping[str, str] | None = None, color: bool = False) -> str:
    """Render one diagnostic the way rustc and Cedar do: header, location, source line, underline, help."""
    sources = sources or {}
    head = _paint(
        f"{diagnostic.severity.value}[{diagnostic.code}]", _SEVERITY_COLOR[diagnostic.severity], color
    )
    out = [f"{head}: {terminal(diagnostic.message)}", f"  --> {terminal(diagnostic.location)}"]
    line_text = _source_line(sources, diagnostic.file, diagnostic.line) if diagnostic.line > 0 else None
    if line_text is not None:
        gutter = str(diagnostic.line)
        pad = " " * len(gutter)
        start = max(diagnostic.column, 1)
        if diagnostic.end_line == diagnostic.line and diagnostic.end_column > start:
            end = diagnostic.end_column
        else:
            end = max(len(line_text) + 1, start + 1)
        shown, before, marked = _displayed(line_text, start, end)
        underline = " " * len(before) + "^" * max(len(marked), 1)
        out += [f"{pad} |", f"{gutter} | {shown}", f"{pad} | {_paint(underline, '1;31', color)}"]
    if diagnostic.help:
        out.append(f"  = help: {terminal(diagnostic.help)}")
    return "\n".join(out)


def render_all(
    diagnostics: Iterable[Diagnostic], sources: Mapping[str, str] | None = None, color: bool = False
) -> str:
    """Render many diagnostics separated by blank lines, in source order."""
    ordered = sorted(diagnostics, key=Diagnostic.sort_key)
    return "\n\n".join(render(d, sources, color) for d in ordered)


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    """Whether any finding blocks compilation."""
    return any(d.severity is Severity.ERROR for d in diagnostics)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A `did you mean` help line for a misspelt name, or None when nothing is close."""
    import difflib

    pool = sorted(set(candidates))
    same_letters = [c for c in pool if c.lower() == name.lower()]
    close = same_letters or difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None
