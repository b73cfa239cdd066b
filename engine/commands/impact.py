"""`policy impact OLD NEW CASES`: what a new version would have decided on every case of the past.

CASES is Parquet (a file, or a folder of files), JSON lines, or a folder of JSON case files.
The work is in `engine.impact`; this module wires options to it and keeps the promise that
nothing is written at a final name unless the run finished.

Exit status: 0 done; 1 a policy could not be loaded, or `--fail-on-change` / `--fail-on-reject`
tripped; 2 usage (bad arguments, columns that do not fit the policy); 130 interrupted
(Ctrl-C or SIGTERM), with no report, rejects or traces written.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import click

from engine import diff as d
from engine.commands.options import DATE, fail_usage, report_policy_error, workers_option
from engine.errors import PolicyError, UsageError

EXIT_INTERRUPTED = 130


def _beside(output: Path | None, suffix: str) -> Path:
    """`report.md` -> `report.rejects.jsonl`; without an output file, `impact.rejects.jsonl` here."""
    if output is None:
        return Path(f"impact{suffix}")
    return output.with_name(output.stem + suffix)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends the run the way Ctrl-C does: temporary files removed, nothing half-written."""

    def handle(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command("impact")
@click.argument("old", metavar="OLD")
@click.argument("new", metavar="NEW")
@click.argument("cases", metavar="CASES")
@click.option("--at", type=DATE, metavar="DATE", help="Decide every case on this date under both versions.")
@click.option("--format", "fmt", type=click.Choice(d.FORMATS), default="text", show_default=True)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the report here."
)
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Cases that could not be decided, with row and reason [default: OUTPUT.rejects.jsonl].",
)
@click.option(
    "--explain",
    type=click.Choice(["changed"]),
    help="Also write both full traces of every changed case (JSON lines).",
)
@click.option(
    "--explain-output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where --explain writes [default: OUTPUT.explain.jsonl].",
)
@click.option(
    "--id-column", metavar="NAME", help="The column naming each case [default: $id, id or case_id]."
)
@workers_option
@click.option(
    "--dask",
    "dask_address",
    metavar="ADDRESS",
    help="Run on a Dask cluster: a scheduler address, or `local` for a LocalCluster of --workers processes.",
)
@click.option(
    "--list",
    "examples",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Cases named per group in text, Markdown and HTML.",
)
@click.option("--fail-on-change", is_flag=True, help="Exit 1 if any case's outcome changes.")
@click.option("--fail-on-reject", is_flag=True, help="Exit 1 if any case was rejected.")
def command(
    old: str,
    new: str,
    cases: str,
    at: date | None,
    fmt: str,
    output: Path | None,
    rejects_path: Path | None,
    explain: str | None,
    explain_output: Path | None,
    id_column: str | None,
    workers: int | None,
    dask_address: str | None,
    examples: int,
    fail_on_change: bool,
    fail_on_reject: bool,
) -> None:
    """Decide every case of CASES under OLD and NEW and report what would change.

    \b
    policy impact policies/ear-742.7@2020-03-09 @2020-10-06 history.parquet --format md -o impact.md
    policy impact old.policy new.policy cases.jsonl --explain changed -o impact.json --format json

    OLD and NEW name versions as for `policy diff` (FOLDER@VERSION, FOLDER@DATE, @VERSION for
    the same folder, or a file). CASES is a Parquet file or folder of Parquet files, a
    JSON-lines file, or a folder of JSON cases. The report lists transition counts over all
    cases and each outcome pattern with its first cases; `--format json` lists every case.
    """
    from engine import batch, impact

    try:
        first = d.Spec.parse(old)
        second = d.Spec.parse(new, previous=first)
        before, after = d.resolve_spec(first, at), d.resolve_spec(second, at)
        source = impact.open_source(cases)
        facts = set(before.policy.compiled.program.facts) | set(after.policy.compiled.program.facts)
        ident = id_column or impact.default_id_column(source, facts)
        if id_column is not None and source.kind != "parquet":
            raise UsageError("--id-column is for Parquet input", "JSON lines name a case with a `$id` key")
        _check_columns(source, before, after, ident)
        rejects = rejects_path or _beside(output, ".rejects.jsonl")
        trace_file = (explain_output or _beside(output, ".explain.jsonl")) if explain else None
        for target in (output, rejects, trace_file):
            if target is not None and Path(cases).resolve() == target.resolve():
                raise UsageError(f"`{target}` is the input; it would be overwritten", "write elsewhere")
    except UsageError as exc:
        fail_usage(exc)
    except PolicyError as exc:
        report_policy_error(exc)
    count = workers or batch.default_workers()
    color = output is None and fmt == "text" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    progress = impact.Progress(source.total, source.kind) if sys.stderr.isatty() else None
    try:
        with _sigterm_as_interrupt(), _executor(dask_address, count) as executor:
            outcome = impact.run(
                before,
                after,
                source,
                fmt=fmt,
                output=output,
                rejects=rejects,
                explain=trace_file,
                id_column=ident,
                executor=executor,
                examples=examples,
                color=color,
                progress=progress,
            )
    except KeyboardInterrupt:
        if progress is not None:
            progress.close()
        click.echo("interrupted: no report, rejects or traces were written", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except UsageError as exc:
        fail_usage(exc)
    sm = outcome.report.summary
    rate = sm.cases / outcome.seconds if outcome.seconds > 0 else 0.0
    where = f"; report in {output}" if output else ""
    click.echo(
        f"{sm.cases:,} cases: {sm.changed:,} changed, {sm.reasons_changed:,} same outcome for different "
        f"reasons, {sm.unchanged:,} unchanged, {sm.rejected:,} rejected in {outcome.seconds:.1f} s "
        f"({rate:,.0f} cases/s){where}",
        err=True,
    )
    if (fail_on_change and sm.changed) or (fail_on_reject and sm.rejected):
        sys.exit(1)


def _check_columns(source: Any, before: d.Side, after: d.Side, ident: str | None) -> None:
    """Columns that do not fit either version are a usage error before any work starts."""
    if source.kind != "parquet":
        return
    from engine.columnar import plan_layout

    both = frozenset(before.policy.compiled.program.facts) | frozenset(after.policy.compiled.program.facts)
    for side in (before, after):
        plan_layout(side.policy.compiled.program, source.schema, ident, both)


@contextmanager
def _executor(address: str | None, workers: int) -> Iterator[Any]:
    from engine import impact

    if address is None:
        yield impact.inline if workers <= 1 else impact.pool(workers)
        return
    from engine import dask as engine_dask

    with engine_dask.executor(address, workers) as execute:
        yield execute
