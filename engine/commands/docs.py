"""`policy docs`: render every bundled policy and version to Markdown reference pages.

The pages are committed beside the code, so the command is also the staleness check:
`--check` renders in memory and exits 1 listing each page that would change, which is
what CI and `tests/test_policy_docs.py` rely on.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from engine.commands.options import fail_usage, report_policy_error
from engine.errors import PolicyError, UsageError
from engine.policydocs import render_docs, stale_pages, write_pages


@click.command("docs")
@click.argument("policies_dir", default="policies", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    "out_dir",
    default="docs/policies",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the pages into.",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if any page is missing or out of date.")
def command(policies_dir: Path, out_dir: Path, check: bool) -> None:
    """Render every policy under POLICIES_DIR (default: policies) and each of its versions to Markdown."""
    try:
        pages = render_docs(policies_dir, out_dir)
    except UsageError as exc:
        fail_usage(exc)
    except PolicyError as exc:
        report_policy_error(exc)
    if check:
        report_stale(out_dir, stale_pages(out_dir, pages))
        return
    moved = write_pages(out_dir, pages)
    for line in moved:
        click.echo(line)
    click.echo(f"{len(pages)} page(s) in {out_dir}: {len(moved)} written or removed, the rest unchanged")


def report_stale(out_dir: Path, problems: list[str]) -> None:
    """Print what is stale and exit 1, or say the pages are current."""
    if not problems:
        click.echo(f"{out_dir} is up to date")
        return
    for problem in problems:
        click.echo(f"stale: {out_dir / problem}", err=True)
    click.echo("  = help: run `policy docs` and commit the result", err=True)
    sys.exit(1)
