"""The `policy` command line: thin click commands that parse options, call the API, render, exit.

Exit status everywhere: 0 success, 1 problems found (invalid policy or case, failing
checks), 2 usage error (click's own, or `UsageError` from the engine).
With `--format json`, `eval`, `check` and `lint` print any error as one JSON document on
stdout instead (`engine.commands.options.error_document`, docs/errors.md#errors-as-json).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from datetime import date
from pathlib import Path

import click

from engine import api
from engine.commands.options import (
    DATE,
    DateType,
    JsonErrorsCommand,
    fail_usage,
    load_policy,
    read_case,
    report_case_error,
    report_policy_error,
    version_options,
)
from engine.errors import CaseError, Diagnostic, UsageError, render_all
from engine.parser import parse
from engine.render import FORMATS, render_decision
from engine.syntax import to_data
from engine.terminal import use_color

# The helpers live in engine.commands.options so that no tool imports this module; they stay
# importable from here for code written against earlier releases.
__all__ = [
    "DATE",
    "DateType",
    "fail_usage",
    "load_policy",
    "main",
    "read_case",
    "report_case_error",
    "report_policy_error",
    "version_options",
]


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """`policy --version`: the installed distribution's version (read only when asked, it costs a lookup)."""
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        number = version("policy-engine")
    except PackageNotFoundError:
        number = "unknown (not installed: running from a source checkout)"
    click.echo(f"policy {number} (Python {sys.version.split()[0]})")
    ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Print the engine's version and exit.",
)
def main() -> None:
    """Check, evaluate, explain and compare versioned licensing policies."""


@main.command("parse")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["json"]), default="json", show_default=True)
def parse_command(file: str, fmt: str) -> None:
    """Print the syntax tree of FILE (for debugging and tools)."""
    text = Path(file).read_text(encoding="utf-8")
    result = parse(text, file)
    if result.diagnostics:
        click.echo(render_all(result.diagnostics, {file: text}, color=use_color(sys.stderr)), err=True)
        sys.exit(1)
    click.echo(json.dumps(to_data(result.tree), indent=2, ensure_ascii=False))


@main.command("check", cls=JsonErrorsCommand)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--deep",
    is_flag=True,
    help="Prove with z3: never-firing and shadowed rules, every conflict, default regions.",
)
@click.option("--watch", is_flag=True, help="Check again whenever one of the files changes (Ctrl-C stops).")
def check_command(paths: tuple[str, ...], fmt: str, deep: bool, watch: bool) -> None:
    """Parse and check policy files and folders; report every problem (exit 1 if any error, 3 if --deep is incomplete)."""
    if not watch:
        _check_once(paths, fmt, deep)
        return
    from engine.watch import watch_loop

    try:
        watch_loop(paths, lambda: _check_once(paths, fmt, deep))
    except UsageError as exc:
        fail_usage(exc, fmt)


def _check_once(paths: tuple[str, ...], fmt: str, deep: bool) -> None:
    """One `policy check` run, ending in `sys.exit` with its status (the watch loop catches it)."""
    if deep:  # the solver-backed checks replace the sampled conflict search (z3 is imported only then)
        from engine.deepcheck import check_deep

        results = check_deep(paths)
    else:
        results = api.check(paths)
    diagnostics: list[Diagnostic] = sorted(
        {d for r in results for d in r.diagnostics}, key=Diagnostic.sort_key
    )
    sources = {k: v for r in results for k, v in r.sources.items()}
    errors = sum(d.severity.value == "error" for d in diagnostics)
    if fmt == "json":
        click.echo(json.dumps([d.model_dump(mode="json") for d in diagnostics], indent=2))
    else:
        if diagnostics:
            click.echo(render_all(diagnostics, sources, color=use_color(sys.stdout)) + "\n")
        warnings = sum(d.severity.value == "warning" for d in diagnostics)
        notes = len(diagnostics) - errors - warnings
        click.echo(
            f"checked {len(results)} file(s): {errors} error(s), {warnings} warning(s)"
            + (f", {notes} note(s)" if notes else "")
        )
    incomplete = any(d.code == "proof-incomplete" for d in diagnostics)
    sys.exit(1 if errors else 3 if incomplete else 0)


@main.command("eval", cls=JsonErrorsCommand)
@click.argument("policy")
@click.argument("case")
@version_options
@click.option(
    "--explain", is_flag=True, help="Show every rule: what fired, what was overridden, what did not."
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
def eval_command(
    policy: str, case: str, at: date | None, version: str | None, explain: bool, fmt: str
) -> None:
    """Decide CASE (a JSON file, or - for stdin) under POLICY (a file or a policy folder).

    With `--format json`, every error is one JSON document on stdout (docs/errors.md#errors-as-json).
    """
    loaded = load_policy(policy, version, at, fmt)
    facts = read_case(case, fmt)
    try:
        decision = loaded.evaluate(facts, trace=explain or fmt == "json", at=at)
    except CaseError as exc:
        report_case_error(exc, "<stdin>" if case == "-" else case, fmt)
    if fmt == "json" and not explain:
        decision = decision.model_copy(update={"trace": None})
    click.echo(render_decision(decision, fmt, explain), nl=False)


@main.command("schema")
@click.argument("policy")
@version_options
def schema_command(policy: str, at: date | None, version: str | None) -> None:
    """Print the JSON Schema of POLICY's case input."""
    loaded = load_policy(policy, version, at)
    click.echo(json.dumps(loaded.schema(), indent=2))


@main.command("compile")
@click.argument("policy")
@version_options
def compile_command(policy: str, at: date | None, version: str | None) -> None:
    """Print the Python the compiler generated for POLICY (for debugging the engine)."""
    loaded = load_policy(policy, version, at)
    click.echo(loaded.compiled.rules.source, nl=False)


def _register_plugins() -> None:
    """Commands of the tools (diff, fmt, lint, test, docs, batch) live in `engine.commands`."""
    import engine.commands as package

    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        loaded = importlib.import_module(f"engine.commands.{module.name}")
        command = getattr(loaded, "command", None)
        if isinstance(command, click.Command):
            main.add_command(command)


_register_plugins()
