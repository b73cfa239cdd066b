"""`policy lint`: report findings (docs/linting.md); exit 1 when any has error severity.

Exit status: 0 no error-severity finding, 1 at least one, 2 usage error (a bad
`[tool.policy.lint]` table, a missing path). With `--format json` the findings are a JSON
list and a usage error is the JSON error document (docs/errors.md#errors-as-json), on stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from engine.api import policy_files
from engine.commands.options import JsonErrorsCommand, fail_usage
from engine.errors import UsageError, render_all
from engine.linter import CODES, LintConfig, lint
from engine.terminal import Counter, use_color


@click.command("lint", cls=JsonErrorsCommand)
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--update-lock",
    is_flag=True,
    help="Record in-force versions not yet in their folder's versions.lock (never rewrites a recorded one).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="pyproject.toml to read [tool.policy.lint] from (default: the nearest one above the cwd).",
)
@click.option("--list-codes", is_flag=True, help="List the lint codes and their default severities.")
def command(
    paths: tuple[str, ...], fmt: str, update_lock: bool, config_path: Path | None, list_codes: bool
) -> None:
    """Lint policies, vocabularies and policy folders: citations, unused declarations, dead rules, versions."""
    if list_codes:
        for code in CODES.values():
            click.echo(f"{code.code:<32} {code.severity.value:<8} {code.summary}")
        return
    if not paths:
        fail_usage(
            UsageError("give at least one file or folder to lint", "for example `policy lint policies`"),
            fmt,
        )
    try:
        config = LintConfig.load(config_path)
        with Counter("policy lint:", len(policy_files(paths))) as counter:
            result = lint(paths, config, update_lock=update_lock, progress=counter.step)
    except UsageError as exc:
        fail_usage(exc, fmt)
    for lock in result.locks_written:
        click.echo(f"updated {lock}", err=True)
    if fmt == "json":
        click.echo(json.dumps([d.model_dump(mode="json") for d in result.findings], indent=2))
    else:
        if result.findings:
            click.echo(render_all(result.findings, result.sources, color=use_color(sys.stdout)) + "\n")
        warnings = len(result.findings) - result.errors
        click.echo(f"linted {len(result.files)} file(s): {result.errors} error(s), {warnings} warning(s)")
    sys.exit(1 if result.errors else 0)
