"""Click options and error reporting shared by every `policy` command (core and tools alike).

The commands of `engine.commands` import these from here, never from `engine.cli`: the CLI
imports every command module to register it, so a command importing the CLI back would be
an import cycle held together by import order (`tests/test_imports.py` refuses any cycle).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import click

from engine import api, cases
from engine.errors import CaseError, Diagnostic, PolicyError, UsageError, VersionError, render_all
from engine.escape import excerpt, terminal
from engine.terminal import use_color

#: What went wrong, in the JSON error document (docs/errors.md#errors-as-json).
ErrorKind = Literal["case", "policy", "version", "usage"]

#: The fields of each diagnostic in the JSON error document, in this order, always all present.
JSON_DIAGNOSTIC_FIELDS = (
    "code",
    "severity",
    "message",
    "file",
    "line",
    "column",
    "end_line",
    "end_column",
    "field",
    "help",
)


def error_document(kind: ErrorKind, diagnostics: Iterable[Diagnostic]) -> dict[str, Any]:
    """The one JSON shape of every error under `--format json`: a kind and coded diagnostics.

    Every diagnostic carries every field (`field` is null outside a case, `help` may be null),
    so a consumer reads one shape whichever stage failed.
    """
    rows = []
    for d in diagnostics:
        data = d.model_dump(mode="json")
        data.setdefault("field", None)
        rows.append({name: data.get(name) for name in JSON_DIAGNOSTIC_FIELDS})
    return {"error": {"kind": kind, "diagnostics": rows}}


def fail_json(kind: ErrorKind, diagnostics: Iterable[Diagnostic], status: int) -> NoReturn:
    """Print the JSON error document on stdout (where JSON consumers read) and exit with `status`."""
    click.echo(json.dumps(error_document(kind, diagnostics), indent=2, ensure_ascii=False))
    sys.exit(status)


def fail_usage(exc: UsageError, fmt: str = "text") -> NoReturn:
    """Report a usage mistake the way click does, with the engine's help line, and exit 2."""
    if fmt == "json":
        fail_json("version" if isinstance(exc, VersionError) else "usage", exc.diagnostics, 2)
    message = f"error: {exc}"
    if exc.help:
        message += f"\n  = help: {exc.help}"
    click.echo(message, err=True)
    sys.exit(2)


def report_policy_error(exc: PolicyError, fmt: str = "text") -> NoReturn:
    """Print every diagnostic of a policy that failed to load, and exit 1."""
    if fmt == "json":
        fail_json("policy", exc.diagnostics, 1)
    click.echo(render_all(exc.diagnostics, exc.sources, color=use_color(sys.stderr)), err=True)
    sys.exit(1)


def report_case_error(exc: CaseError, source: str, fmt: str = "text") -> NoReturn:
    """Print every bad field of a case that does not match the policy's facts, and exit 1."""
    if fmt == "json":  # the validator does not know where the case came from; the CLI does
        located = [
            d.model_copy(update={"file": source}) if d.file == "<case>" else d for d in exc.diagnostics
        ]
        fail_json("case", located, 1)
    click.echo(f"error[invalid-case]: {terminal(source)} does not match the policy's facts", err=True)
    for path, reason in exc.problems:
        click.echo(f"  {excerpt(path, 200)}: {excerpt(reason, 400)}", err=True)
    click.echo("  = help: `policy schema POLICY` prints the expected input", err=True)
    sys.exit(1)


if TYPE_CHECKING:  # click >= 8.2 types ParamType by its value; older clicks are not generic at run time
    _DateParam = click.ParamType[date]
else:
    _DateParam = click.ParamType


class DateType(_DateParam):
    """A YYYY-MM-DD option value."""

    name = "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.fail(f"`{value}` is not a date; write YYYY-MM-DD", param, ctx)


DATE = DateType()


def version_options(func: Any) -> Any:
    """`--at DATE` and `--version NAME`, shared by every command that picks a policy version."""
    func = click.option("--version", "version", metavar="NAME", help="Pick a version by name (any status).")(
        func
    )
    func = click.option(
        "--at",
        type=DATE,
        metavar="DATE",
        help="Evaluate on this date: picks the in-force version and dates reference tables.",
    )(func)
    return func


def load_policy(path: str, version: str | None, at: date | None, fmt: str = "text") -> api.Policy:
    """Load with the CLI's error handling: diagnostics to stderr and exit 1, usage errors exit 2
    (with `fmt="json"`, the JSON error document on stdout instead)."""
    try:
        return api.load(path, version=version, at=at)
    except UsageError as exc:
        fail_usage(exc, fmt)
    except PolicyError as exc:
        report_policy_error(exc, fmt)


def read_case(source: str, fmt: str = "text") -> dict[str, Any]:
    """A case from a JSON file or `-` (stdin); bad JSON is a located error, exit 1."""
    try:
        return cases.read_case(source)
    except CaseError as exc:
        if fmt == "json":
            fail_json("case", exc.diagnostics, 1)
        (problem,) = exc.case_diagnostics
    if problem.code == "unreadable-case":
        click.echo(f"error: cannot read case `{terminal(source)}`: {problem.message}", err=True)
    else:
        click.echo(
            f"error[{problem.code}]: {terminal(problem.location)}: {terminal(problem.message)}", err=True
        )
        if problem.help:
            click.echo(f"  = help: {problem.help}", err=True)
    sys.exit(1)


def _wants_json(args: Sequence[str]) -> bool:
    """Whether the command line asks for `--format json` (read before click has parsed it)."""
    for i, arg in enumerate(args):
        if arg == "--":
            return False
        if arg == "--format=json" or (arg == "--format" and args[i + 1 : i + 2] == ["json"]):
            return True
    return False


class JsonErrorsCommand(click.Command):
    """A command whose click usage errors (a bad option value, a missing argument) come out as the
    JSON error document when `--format json` is on the command line, like every other error."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        wanted = _wants_json(args)
        try:
            return super().make_context(info_name, list(args), parent, **extra)
        except click.UsageError as exc:
            if not wanted:
                raise
            fail_usage(UsageError(exc.format_message(), "see `--help` for the options"), "json")


#: `--workers N`, shared by the commands that decide cases on a process pool (batch, impact).
workers_option = click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Worker processes (default: one per core; 1 decides in this process).",
)
