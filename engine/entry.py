"""The `policy` executable: the CLI, with a quiet exit on Ctrl-C even while the engine is importing."""

from __future__ import annotations

import sys


def run() -> None:
    """Start the click group; an interrupt before a command takes over exits 130 without a traceback."""
    try:
        from engine.cli import main

        main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
