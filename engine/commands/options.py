"""Click options and error reporting shared by every `policy` command (core and tools alike).

The commands of `engine.commands` import these from here, never from `engine.cli`: the CLI
imports every command module to register it, so a command importing the CLI back would be
an import cycle held together by import order (`tests/test_imports.py` refuses any cycle).
"""

from __future__ import annotations

import sys
from datetime import date
from typing import TYPE_CHECKING, Any, NoReturn

import click

from engine import api, cases
from engine.errors import CaseError, PolicyError, UsageError, render_all
from engine.escape import excerpt, terminal
from engine.terminal import use_color


def fail_usage(exc: UsageError) -> NoReturn:
    """Report a usage mistake the way click does, with the engine's help line, and exit 2."""
    message = f"error: {exc}"
    if exc.help:
        message += f"\n  = help: {exc.help}"
    click.echo(message, err=True)
    sys.exit(2)


def report_policy_error(exc: PolicyError) -> NoReturn:
    """Print every diagnostic of a policy that failed to load, and exit 1."""
    click.echo(render_all(exc.diagnostics, exc.sources, color=use_color(sys.stderr)), err=True)
    sys.exit(1)


def report_case_error(exc: CaseError, source: str) -> NoReturn:
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


def load_policy(path: str, version: str | None, at: date | None) -> api.Policy:
    """Load with the CLI's error handling: diagnostics to stderr and exit 1, usage errors exit 2."""
    try:
        return api.load(path, version=version, at=at)
    except UsageError as exc:
        fail_usage(exc)
    except PolicyError as exc:
        report_policy_error(exc)


def read_case(source: str) -> dict[str, Any]:
    """A case from a JSON file or `-` (stdin); bad JSON is a located error, exit 1."""
    try:
        return cases.read_case(source)
    except CaseError as exc:
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


#: `--workers N`, shared by the commands that decide cases on a process pool (batch, impact).
workers_option = click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Worker processes (default: one per core; 1 decides in this process).",
)
