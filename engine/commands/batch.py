"""`policy batch`: decide a JSON-lines stream of cases on every core, in order, in constant memory.

Exit status: 0 the run completed (rejects included, unless `--fail-on-reject`), 1 the policy
could not be loaded (or rejects with `--fail-on-reject`), 2 usage, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import BinaryIO, NoReturn

import click

from engine import batch
from engine.commands.options import fail_usage, load_policy, version_options, workers_option
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


class OutputError(Exception):
    """An output location that cannot be written (a folder, read-only, missing, full)."""


class Output:
    """One output file, written to a temporary file beside its final name (docs/batch.md).

    Nothing at the final name is touched until `commit`: a run that fails to open its other
    output, or stops on a write fault, leaves the previous file exactly as it was. `commit`
    renames the temporary file into place (atomic on POSIX: a reader sees the old file or the
    new one, never a mix). `-` is stdout, written directly.
    """

    def __init__(self, path: str):
        self.path = path
        self.temp: str | None = None
        self.handle: BinaryIO | None = None

    def open(self) -> BinaryIO:
        if self.path == "-":
            self.handle = sys.stdout.buffer
            return self.handle
        target = Path(self.path)
        if target.is_dir():
            raise OutputError(f"cannot write `{self.path}`: it is a folder", "give a file name")
        if not target.parent.is_dir():
            raise OutputError(
                f"cannot write `{self.path}`: the folder `{target.parent}` does not exist", "create it first"
            )
        if target.exists() and not os.access(target, os.W_OK):
            raise OutputError(f"cannot write `{self.path}`: the file is read-only")
        try:
            fd, self.temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
        except OSError as exc:
            raise OutputError(f"cannot write in `{target.parent}`: {exc.strerror}") from None
        os.chmod(self.temp, target.stat().st_mode & 0o7777 if target.exists() else _default_mode())
        self.handle = os.fdopen(fd, "wb")
        return self.handle

    def commit(self) -> None:
        """Close and move the new content into place."""
        if self.handle is None or self.temp is None:
            return
        self.handle.close()
        os.replace(self.temp, self.path)
        self.temp = None

    def discard(self) -> None:
        """Close and delete the temporary file; the final name keeps what it had."""
        if self.handle is not None and self.temp is not None:
            with contextlib.suppress(OSError):
                self.handle.close()
            with contextlib.suppress(OSError):
                os.unlink(self.temp)
            self.temp = None


def _default_mode() -> int:
    """The mode `open()` would give a new file (0o666 less the umask); mkstemp's is 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def _open_outputs(*paths: str) -> Iterator[list[Output]]:
    """Open every output (as temporaries) before writing any; on any exception discard them all.

    The caller commits them (success, or an interrupt: the clean prefix is kept, as documented)
    or leaves them to be discarded (a write fault: the previous files stay as they were).
    """
    outputs = [Output(path) for path in paths]
    try:
        for output in outputs:
            output.open()
        yield outputs
    finally:
        for output in outputs:
            output.discard()


def _counts(summary: batch.Summary) -> str:
    text = f"{summary.decisions} decisions, {summary.rejects} rejects"
    if summary.blank:
        text += f", {summary.blank} blank lines skipped"
    return text


def _report(summary: batch.Summary, rejects_path: str, output: str = "", cases: str = "") -> None:
    """The closing line: lines = decisions + rejects + blank, always, with the time taken."""
    if summary.fault is not None:
        click.echo(
            f"error: cannot write the output: {summary.fault}; stopped after {summary.lines} of the input "
            f"lines ({_counts(summary)} decided)\n"
            f"  = note: nothing was changed: `{output}` and `{rejects_path}` keep their previous content\n"
            "  = help: free space (or fix the output location) and run the batch again",
            err=True,
        )
        return
    if summary.interrupted:
        click.echo(
            f"interrupted after {summary.lines} of the input lines: {_counts(summary)} written", err=True
        )
        if summary.lines and cases not in ("", "-"):
            click.echo(
                f"  = resume: tail -n +{summary.lines + 1} {cases} | policy batch POLICY - -o REST.jsonl "
                "--rejects REST.rejects.jsonl (then add "
                f"{summary.lines} to each `line`)",
                err=True,
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
@workers_option
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
    _report(summary, rejects_file, output, cases)
    if summary.fault is not None:
        sys.exit(1)
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
    try:
        opened = _open_outputs(output, rejects_file)
        with _open_input(cases) as (source, size), opened as outputs:
            out, rejects = (o.handle for o in outputs)
            assert out is not None and rejects is not None
            progress = batch.Progress(size) if sys.stderr.isatty() else None
            try:
                summary = batch.run(
                    loaded, source, out, rejects, at=at, trace=trace, workers=count, progress=progress
                )
            except batch.BatchError as exc:
                click.echo(f"error: {exc}", err=True)
                sys.exit(1)
            finally:
                if progress is not None:
                    progress.close()
            if summary.fault is None:  # done, or interrupted: the clean prefix goes into place
                for item in outputs:
                    item.commit()
            return summary
    except OutputError as exc:
        message, *help = exc.args
        fail_output(message, help[0] if help else None)
    except OSError as exc:  # reading the input, or renaming into place
        fail_output(f"{exc.strerror or exc}" + (f": `{exc.filename}`" if exc.filename else ""), None)


def fail_output(message: str, help: str | None) -> NoReturn:
    """An output location that cannot be used: say so (no traceback), exit 1, nothing changed."""
    click.echo(f"error: {message}" + (f"\n  = help: {help}" if help else ""), err=True)
    sys.exit(1)


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
