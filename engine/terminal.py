"""What the CLI may do to the terminal: one answer to "should this output be coloured?".

Every command that paints (diagnostics, lint findings, the diff report) asks `use_color`, so
`NO_COLOR` (https://no-color.org: set and not empty means no colour) and "not a terminal"
mean the same thing everywhere. `progress` is the matching answer for progress lines on
stderr: only a person watching a terminal wants them.
"""

from __future__ import annotations

import os
from typing import TextIO

__all__ = ["Counter", "progress_wanted", "use_color"]


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def use_color(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when `NO_COLOR` is set to a non-empty value."""
    if os.environ.get("NO_COLOR", ""):
        return False
    return _is_tty(stream)


def progress_wanted(stream: TextIO) -> bool:
    """Progress lines go to `stream` (stderr) only when a person is watching it."""
    return _is_tty(stream)


class Counter:
    """`what 12/52 name` redrawn in place on stderr while a command works, erased when it is done.

    Drawn only when stderr is a terminal (`progress_wanted`), at most every `interval`
    seconds, with carriage returns and spaces only (no escape codes), so redirected output
    and logs never see it. Use as a context manager so the line is erased even on errors.
    """

    def __init__(self, what: str, total: int, stream: TextIO | None = None, interval: float = 0.1):
        import sys

        self.what = what
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = total > 1 and progress_wanted(self.stream)
        self.interval = interval
        self.done = 0
        self._last_draw = 0.0
        self._width = 0

    def step(self, label: str = "") -> None:
        """One item finished; `label` names it (a case, a file)."""
        import time

        self.done += 1
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last_draw < self.interval and self.done < self.total:
            return
        self._last_draw = now
        text = f"{self.what} {self.done}/{self.total} {label}".rstrip()[:100]
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = max(self._width, len(text))

    def close(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def __enter__(self) -> Counter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
