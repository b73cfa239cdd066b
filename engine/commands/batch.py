"""`policy batch`: decide a JSON-lines stream of cases on every core, in order, in constant memory.

Exit status: 0 the run completed (rejects included, unless `--fail-on-reject`), 1 the policy
could not be loaded (or rejects with `--fail-on-reject`), 2 usage, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import BinaryIO

import click

from engine import batch
from engine.commands.options import fail_usage, load_policy, version_options
from engine.errors import UsageError

EXIT_INTERRUPTED = 130
PARQUET = (".parquet", ".pq", ".parq")


def default_rejects_path(output: str) -> str:
    """`decisions.jsonl` → `decisions.rejects.jsonl`; any other name gets `.rejects.jsonl` appended."""
    if output.endswith(".jsonl"):
        return output[: -len(".jsonl")] + ".rejects.jsonl"
    return output + ".rejects.jsonl"


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one file, so a run never truncates its own input."""
    if a == "-" or b == "-":
        return False
    try:
        return Path(a).resolve() == Path(b).resolve() or os.path.samefile(a, b)
    except OSError:
        return False


def _check_paths(cases: str, output: str, rejects: str | None) -> str:
    """The rejects path to use; a usage error if outputs collide with each other or the input."""
    if rejects is None:
        if output == "-":
            raise UsageError("`--rejects FILE` is required when decisions go to stdout (`-o -`)")
        rejects = default_rejects_path(output)
    if rejects == "-":
        raise UsageError("`--rejects` must be a file", "decisions may go to stdout, rejects may not")
    for target in (output, rejects):
        if _same_file(cases, target):
            raise UsageError(f"`{target}` is the input file; it would be overwritten")
    if output != "-" and (Path(output).resolve() == Path(rejects).resolve() or _same_file(output, rejects)):
        raise UsageError("decisions and rejects must go to different files")
    return rejects


@contextlib.contextmanager
def _open_input(cases: str) -> Iterator[tuple[BinaryIO, int | None]]:
    """The input as binary lines, with its size in bytes when it is a regular file (for the percentage)."""
    if cases == "-":
        yield sys.stdin.buffer, None
        return
    with open(cases, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size if os.path.isfile(cases) else None
        yield handle, size or None


@contextlib.contextmanager
def _open_output(path: str) -> Iterator[BinaryIO]:
    """Write straight to the final name (not a temporary file): partial output survives an interrupt."""
    if path == "-":
        yield sys.stdout.buffer
        return
    with open(path, "wb") as handle:
        yield handle


def _counts(summary: batch.Summary) -> str:
    text = f"{summary.decisions} decisions, {summary.rejects} rejects"
    if summary.blank:
        text += f", {summary.blank} blank lines skipped"
    return text


def _report(summary: batch.Summary, rejects_path: str) -> None:
    """The closing line: lines = decisions + rejects + blank, always, with the time taken."""
    if summary.interrupted:
        click.echo(
            f"interrupted after {summary.lines} of the input lines: {_counts(summary)} written", err=True
        )
        return
    where = f"; rejects in {rejects_path}" if summary.rejects else ""
    click.echo(
        f"{summary.lines} lines: {_counts(summary)} in {summary.seconds:.1f} s "
        f"({summary.rate:,.0f} lines/s){where}",
        err=True,
    )


@click.command("batch")
@click.argument("policy")
@click.argument("cases", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option(
    "-o", "--output", required=True, metavar="FILE", help="Decisions, one JSON line per case (- for stdout)."
)
@version_options
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Worker processes (default: one per core; 1 decides in this process).",
)
@click.option(
    "--rejects",
    "rejects_path",
    metavar="FILE",
    help="Malformed and invalid lines, with the reason [default: OUTPUT with .rejects.jsonl].",
)
@click.option("--trace", is_flag=True, help="Include the full trace in every decision (much slower).")
@click.option("--fail-on-reject", is_flag=True, help="Exit 1 if any line was rejected.")
def command(
    policy: str,
    cases: str,
    output: str,
    at: date | None,
    version: str | None,
    workers: int | None,
    rejects_path: str | None,
    trace: bool,
    fail_on_reject: bool,
) -> None:
    """Decide every line of CASES (JSON lines, or - for stdin) under POLICY, in input order.

    Each output line is the decision as `policy eval --format json` gives it, without the
    trace unless --trace, with the input line number in "line". Lines that are not JSON or
    not a valid case go to the rejects file with their line number and reason; blank lines
    are skipped and counted. The run goes on either way.

    CASES or OUTPUT ending in `.parquet` reads or writes Parquet (docs/batch.md, "Parquet").
    """
    if cases.endswith(PARQUET) or output.endswith(PARQUET):
        _parquet(policy, cases, output, rejects_path, at, version, workers, trace, fail_on_reject)
        return
    try:
        rejects_file = _check_paths(cases, output, rejects_path)
    except UsageError as exc:
        fail_usage(exc)
    try:
        summary = _execute(policy, cases, output, rejects_file, at, version, workers, trace)
    except KeyboardInterrupt:  # before the run started (loading the policy) or while closing files
        summary = batch.Summary(interrupted=True)
    _report(summary, rejects_file)
    if summary.interrupted:
        sys.exit(EXIT_INTERRUPTED)
    if fail_on_reject and summary.rejects:
        sys.exit(1)


def _execute(
    policy: str,
    cases: str,
    output: str,
    rejects_file: str,
    at: date | None,
    version: str | None,
    workers: int | None,
    trace: bool,
) -> batch.Summary:
    """Load the policy, open the files and run; a policy that cannot be loaded exits 1 here."""
    loaded = load_policy(policy, version, at)
    count = workers or batch.default_workers()
    with (
        _open_input(cases) as (source, size),
        _open_output(output) as out,
        _open_output(rejects_file) as rejects,
    ):
        progress = batch.Progress(size) if sys.stderr.isatty() else None
        try:
            return batch.run(
                loaded, source, out, rejects, at=at, trace=trace, workers=count, progress=progress
            )
        except batch.BatchError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        finally:
            if progress is not None:
                progress.close()


def _parquet(
    policy: str,
    cases: str,
    output: str,
    rejects_path: str | None,
    at: date | None,
    version: str | None,
    workers: int | None,
    trace: bool,
    fail_on_reject: bool,
) -> None:
    """Parquet in (JSON lines or Parquet out): the columnar path of engine/parquet.py."""
    from engine import parquet

    try:
        if not cases.endswith(PARQUET):
            raise UsageError(
                "Parquet output needs Parquet input", "decide JSON lines to JSON lines, or convert the input"
            )
        if rejects_path is None and output.endswith(PARQUET):
            stem = output.rsplit(".", 1)[0]
            rejects_path = stem + ".rejects.jsonl"
        rejects_file = _check_paths(cases, output, rejects_path)
    except UsageError as exc:
        fail_usage(exc)
    loaded = load_policy(policy, version, at)
    progress = batch.Progress(None) if sys.stderr.isatty() else None
    try:
        summary = parquet.run(
            loaded,
            Path(cases),
            None if output == "-" else Path(output),
            Path(rejects_file),
            at=at,
            trace=trace,
            workers=workers or batch.default_workers(),
            progress=progress,
        )
    except UsageError as exc:
        fail_usage(exc)
    except KeyboardInterrupt:
        summary = batch.Summary(interrupted=True)
    finally:
        if progress is not None:
            progress.close()
    if summary.interrupted:
        click.echo("interrupted: nothing was written (Parquet runs write their files at the end)", err=True)
        sys.exit(EXIT_INTERRUPTED)
    _report(summary, rejects_file)
    if fail_on_reject and summary.rejects:
        sys.exit(1)
