"""What the CLI may do to the terminal: one answer to "should this output be coloured?".

Every command that paints (diagnostics, lint findings, the diff report) asks `use_color`, so
`NO_COLOR` (https://no-color.org: set and not empty means no colour) and "not a terminal"
mean the same thing everywhere. `progress` is the matching answer for progress lines on
stderr: only a person watching a terminal wants them.
"""

from __future__ import annotations

import os
from typing import TextIO

__all__ = ["progress_wanted", "use_color"]


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
