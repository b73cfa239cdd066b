"""`python -m engine` is the `policy` command."""

from engine.cli import main

main()
