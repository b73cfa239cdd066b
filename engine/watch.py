"""`--watch` for `policy test` and `policy check`: run once, then again whenever an input file changes.

Like `opa test --watch`: an author keeps a terminal open beside the editor. Changes are
watched with watchfiles (the `watch` extra), imported only when `--watch` is given so the
CLI never pays for it otherwise. Only the files the commands read count: `.policy`,
`.vocab`, `.json` (cases, tables), `.toml` (intent, configuration) and `versions.lock`;
editor swap files and hidden temporary files are ignored. Ctrl-C stops watching (exit 0).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from threading import Event
from typing import Any

import click

from engine.errors import UsageError

__all__ = ["WATCHED_SUFFIXES", "watch_loop"]

WATCHED_SUFFIXES = (".policy", ".vocab", ".json", ".toml", ".lock")


def _relevant(_change: Any, path: str) -> bool:
    name = Path(path).name
    return name.endswith(WATCHED_SUFFIXES) and not name.startswith(".")


def _run(once: Callable[[], None]) -> int:
    """One run of the command; its `sys.exit` becomes the status shown, not the end of the watch."""
    try:
        once()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def watch_loop(paths: Iterable[str | Path], once: Callable[[], None], *, stop: Event | None = None) -> None:
    """Run `once`, then re-run it after every batch of changes under `paths`, until Ctrl-C or `stop`."""
    try:
        from watchfiles import watch
    except ImportError:
        raise UsageError(
            "--watch needs the watchfiles package", "install the extra: pip install 'policy-engine[watch]'"
        ) from None
    folders = sorted({str(Path(p)) for p in paths if Path(p).exists()})
    status = _run(once)
    click.echo(f"[watch] exit {status}; watching {', '.join(folders)} (Ctrl-C to stop)", err=True)
    try:
        for changes in watch(*folders, watch_filter=_relevant, stop_event=stop, debounce=300, step=50):
            changed = sorted(
                {str(Path(p).relative_to(Path.cwd())) if _under_cwd(p) else p for _, p in changes}
            )
            click.echo(f"[watch] changed: {', '.join(changed)}", err=True)
            status = _run(once)
            click.echo(f"[watch] exit {status}; watching (Ctrl-C to stop)", err=True)
            sys.stdout.flush()
    except KeyboardInterrupt:
        click.echo("[watch] stopped", err=True)


def _under_cwd(path: str) -> bool:
    return Path(path).is_relative_to(Path.cwd())
