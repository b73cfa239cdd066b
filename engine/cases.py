"""Cases: reading them from JSON and JSONL, the field paths of their problems, their nested records.

One module answers "what is this case" for every reader (`policy eval`, `policy diff`,
`policy batch`, `policy test`, the Python API): a case is a JSON object of facts whose
dotted fact paths (`end_user.type`) nest as records (`{"end_user": {"type": ...}}`).

Problems are coded `CaseDiagnostic`s carried by a `CaseError`:

* `invalid-json`: the text is not JSON (located at the line and column the parser stopped);
* `invalid-case`: it is JSON but not an object of facts;
* `unreadable-case`: the file cannot be read;
* `missing-fact`, `unknown-fact`, `invalid-value`: it does not fit the fact declarations
  (from the pydantic case model, `pydantic_problem`), each at a field path such as
  `end_user.type` or `control_reason[1]` (`field_path`).

`describe` is the one plain-words wording of a read problem for reports that list problems
as text (the diff report, `policy test`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import program as p
from engine.errors import CaseDiagnostic, CaseError, case_problem

#: What a case is, for messages that say what was expected.
CASE_IS = "a case is a JSON object of facts"


# ---------------------------------------------------------------------------
# Reading


def parse_case(text: str | bytes, source: str = "<case>") -> dict[str, Any]:
    """The facts of one case from JSON text; `CaseError` (`invalid-json`/`invalid-case`) when it is not one."""
    return require_object(decode_json(text, source), source)


def decode_json(text: str | bytes, source: str = "<case>") -> Any:
    """Any JSON value; bad JSON (or bytes that are not UTF-8) is an `invalid-json` diagnostic with its place."""
    try:
        return json.loads(text)
    except UnicodeDecodeError as exc:
        raise _json_error(f"not UTF-8 text ({exc.reason})", source, 1, exc.start + 1) from None
    except json.JSONDecodeError as exc:
        raise _json_error(exc.msg, source, exc.lineno, exc.colno) from None
    except (ValueError, RecursionError) as exc:
        raise _json_error(str(exc) or type(exc).__name__, source, 0, 0) from None


def require_object(data: Any, source: str = "<case>") -> dict[str, Any]:
    """The JSON value itself when it is an object, else an `invalid-case` diagnostic."""
    if not isinstance(data, dict):
        raise CaseError([case_problem("(case)", CASE_IS, "invalid-case", source)])
    return data


def read_case(source: str | Path) -> dict[str, Any]:
    """A case from a JSON file, or from standard input when `source` is `-`."""
    name = "<stdin>" if str(source) == "-" else str(source)
    try:
        text = sys.stdin.read() if str(source) == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise CaseError([case_problem("(case)", str(exc.strerror), "unreadable-case", name)]) from None
    return parse_case(text, name)


def _json_error(message: str, source: str, line: int, column: int) -> CaseError:
    diagnostic = CaseDiagnostic(code="invalid-json", message=message, file=source, line=line, column=column)
    return CaseError([diagnostic])


def describe(diagnostic: CaseDiagnostic) -> str:
    """A read problem in plain words, the same in every report that lists problems as text."""
    if diagnostic.code == "invalid-json":
        where = f"line {diagnostic.line}, column {diagnostic.column}: " if diagnostic.line else ""
        return f"not JSON: {where}{diagnostic.message}"
    if diagnostic.code == "unreadable-case":
        return f"cannot read the file: {diagnostic.message}"
    if diagnostic.code == "invalid-case":
        return diagnostic.message
    return f"{diagnostic.field}: {diagnostic.message}"


@dataclass(frozen=True)
class CaseFile:
    """A case file as read: its facts, or the problem that kept it from being read."""

    name: str
    path: str
    facts: dict[str, Any] | None
    comment: str | None = None
    problem: CaseDiagnostic | None = None

    @property
    def problem_text(self) -> str | None:
        return describe(self.problem) if self.problem is not None else None


def read_case_file(path: Path) -> CaseFile:
    """Read one case file; a bad file becomes its `problem`, never an exception."""
    try:
        facts = read_case(path)
    except CaseError as exc:
        return CaseFile(path.stem, str(path), None, problem=exc.case_diagnostics[0])
    comment = facts.get("$comment")
    return CaseFile(path.stem, str(path), facts, comment if isinstance(comment, str) else None)


# ---------------------------------------------------------------------------
# Field paths


def field_path(location: tuple[int | str, ...] | list[int | str]) -> str:
    """A pydantic error location as the path a case author reads: `end_user.type`, `control_reason[1]`."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(case)"


def pydantic_problem(error: Mapping[str, Any], program: p.Program) -> CaseDiagnostic:
    """One pydantic validation error as a coded case diagnostic, the reason in the engine's words
    (`engine.reasons`: worded from the fact's declared type, never pydantic's message)."""
    from engine.reasons import reason

    location = tuple(error.get("loc", ()))
    path = field_path(location)
    kind = error.get("type", "")
    if kind == "missing":
        return case_problem(path, "is required but missing", "missing-fact")
    if kind == "extra_forbidden":
        return case_problem(path, "is not a fact of this policy", "unknown-fact")
    fact_path = ".".join(str(part) for part in location if not isinstance(part, int))
    return case_problem(path, reason(dict(error), program.facts.get(fact_path), program.enums))


# ---------------------------------------------------------------------------
# Records


@dataclass
class Record:
    """Fact declarations grouped into records, as the case JSON nests them.

    `entries` keeps declaration order, facts and sub-records interleaved as first met, so the
    case model's fields and its JSON Schema list them in the order the policy declares them.
    """

    entries: dict[str, p.FactInfo | Record] = field(default_factory=dict)

    def add(self, parts: list[str], fact: p.FactInfo) -> None:
        if len(parts) == 1:
            self.entries[parts[0]] = fact
            return
        sub = self.entries.setdefault(parts[0], Record())
        assert isinstance(sub, Record), f"`{parts[0]}` is both a fact and a record"
        sub.add(parts[1:], fact)

    def facts(self) -> Iterator[tuple[str, p.FactInfo]]:
        """The facts of this level (key, declaration), in order."""
        return ((k, e) for k, e in self.entries.items() if isinstance(e, p.FactInfo))

    def records(self) -> Iterator[tuple[str, Record]]:
        """The sub-records of this level (key, record), in order."""
        return ((k, e) for k, e in self.entries.items() if isinstance(e, Record))

    def required(self) -> bool:
        """Whether the record holds a required fact (a record of optional facts may be left out)."""
        return any(
            not e.optional if isinstance(e, p.FactInfo) else e.required() for e in self.entries.values()
        )

    def keys(self) -> frozenset[str]:
        return frozenset(self.entries)

    def at(self, prefix: str) -> Record:
        """The record at a dotted prefix (`end_user`)."""
        record = self
        for part in prefix.split("."):
            sub = record.entries[part]
            assert isinstance(sub, Record)
            record = sub
        return record


def records(program: p.Program) -> Record:
    """The record tree of a program's facts (`end_user.type` → record `end_user`, fact `type`)."""
    tree = Record()
    for fact in program.facts.values():
        tree.add(fact.path.split("."), fact)
    return tree


def value_at(case: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted fact path in a nested case, None where a record or the fact is absent."""
    value: Any = case
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value
