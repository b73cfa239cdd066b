"""`policy lsp`: run the language server over stdio (editors start it; see docs/editors.md).

Needs the `lsp` extra (`pip install 'policy-engine[lsp]'`: pygls and lsprotocol); without
it the command says so and exits 2 instead of failing with an import error.
"""

from __future__ import annotations

import sys

import click


@click.command("lsp")
@click.option("--stdio", is_flag=True, help="Talk over stdin/stdout (the default, and the only transport).")
def command(stdio: bool) -> None:
    """Start the language server for .policy and .vocab files (diagnostics, hover, completion, ...)."""
    try:
        from engine.lsp.server import serve
    except ImportError as exc:
        click.echo(
            f"error: the language server needs pygls and lsprotocol ({exc.name} is missing)\n"
            "  = help: pip install 'policy-engine[lsp]'",
            err=True,
        )
        sys.exit(2)
    serve()
