"""`policy fmt`: rewrite policy and vocabulary files in the canonical layout (docs/formatting.md).

Exit status: 0 nothing to do (or files rewritten), 1 `--check` found files that would
change, 123 a file could not be formatted (it does not parse, or the result would not parse
back to the same tree: then the file is left alone). The status follows black's, so editor
and CI integrations written for it work unchanged.
"""

from __future__ import annotations

import difflib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click

from engine.api import policy_files
from engine.errors import render_all
from engine.formatter import FormatError, UnsafeFormat, format_text
from engine.terminal import use_color

EXIT_WOULD_CHANGE = 1
EXIT_CANNOT_FORMAT = 123


@dataclass
class _Tally:
    changed: int = 0
    unchanged: int = 0
    failed: int = 0


@click.command("fmt")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, allow_dash=True))
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if any file would be reformatted.")
@click.option("--diff", "show_diff", is_flag=True, help="Write nothing; print a unified diff of the changes.")
def command(paths: tuple[str, ...], check: bool, show_diff: bool) -> None:
    """Format .policy and .vocab files (folders are searched; - reads stdin, writes stdout)."""
    tally = _Tally()
    if paths == ("-",):
        _format_stdin(check, show_diff, tally)
    else:
        for path in policy_files(p for p in paths if p != "-"):
            _format_file(path, check, show_diff, tally)
        _summary(tally, check or show_diff)
    if tally.failed:
        sys.exit(EXIT_CANNOT_FORMAT)
    sys.exit(EXIT_WOULD_CHANGE if check and tally.changed else 0)


def _format_file(path: Path, check: bool, show_diff: bool, tally: _Tally) -> None:
    """Format one file; report, show or write the result as the options ask."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        click.echo(f"error: cannot read `{path}`: {exc}", err=True)
        tally.failed += 1
        return
    formatted = _formatted(text, str(path), tally)
    if formatted is None:
        return
    if formatted == text:
        tally.unchanged += 1
        return
    tally.changed += 1
    if show_diff:
        click.echo(_diff(text, formatted, str(path)), nl=False)
    if check or show_diff:
        click.echo(f"would reformat {path}", err=True)
        return
    try:
        write_atomically(path, formatted)
    except OSError as exc:
        click.echo(f"error: cannot write `{path}`: {exc.strerror}", err=True)
        tally.failed += 1
        tally.changed -= 1
        return
    click.echo(f"reformatted {path}", err=True)


def _format_stdin(check: bool, show_diff: bool, tally: _Tally) -> None:
    """Editors pipe the buffer through `policy fmt -`: the result goes to stdout."""
    text = sys.stdin.read()
    formatted = _formatted(text, "<stdin>", tally)
    if formatted is None:
        return
    tally.changed += formatted != text
    if show_diff:
        click.echo(_diff(text, formatted, "<stdin>"), nl=False)
    elif not check:
        click.echo(formatted, nl=False)


def _formatted(text: str, name: str, tally: _Tally) -> str | None:
    """The formatted text, or None after reporting why the file cannot be formatted."""
    try:
        return format_text(text, name)
    except FormatError as exc:
        click.echo(render_all(exc.diagnostics, {name: text}, color=use_color(sys.stderr)), err=True)
        click.echo(f"error: cannot format {name}: it has syntax errors", err=True)
    except UnsafeFormat as exc:
        click.echo(render_all([exc.diagnostic], {name: text}, color=use_color(sys.stderr)), err=True)
    except Exception as exc:  # a formatter bug must not cost the author a traceback or the file
        click.echo(
            f"error: internal error while formatting {name}: {exc!r}; the file was left unchanged", err=True
        )
    tally.failed += 1
    return None


def _diff(before: str, after: str, name: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), name, f"{name} (formatted)"
    )
    return "".join(lines)


def write_atomically(path: Path, text: str) -> None:
    """Replace a file's content in one step: a temporary file beside it, then a rename.

    A crash or a full disk leaves either the old file or the new one, never half of each;
    the file's permissions are kept.
    """
    mode = path.stat().st_mode
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode & 0o7777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _summary(tally: _Tally, dry_run: bool) -> None:
    verb = "would be reformatted" if dry_run else "reformatted"
    parts = [f"{tally.changed} file(s) {verb}", f"{tally.unchanged} file(s) left unchanged"]
    if tally.failed:
        parts.append(f"{tally.failed} file(s) could not be formatted")
    click.echo(", ".join(parts), err=True)
