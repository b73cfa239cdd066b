"""`python -m engine` is the `policy` command."""

from engine.entry import run

run()
