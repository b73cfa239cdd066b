"""`policy versions POLICY`: the versions of a policy folder, with dates, status and content hash.

A reviewer picks the two sides of `policy diff` from this list; the content hash tells
two versions apart even when their names match (and is what decisions record).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from engine.checker import check_file
from engine.commands.options import fail_usage
from engine.errors import UsageError, has_errors
from engine.registry import VersionEntry, read_versions
from engine.runtime import content_hash


def version_row(entry: VersionEntry) -> dict[str, Any]:
    """One version as data; the hash covers the policy, its vocabularies and tables, as in decisions."""
    result = check_file(entry.path)
    errors = sum(d.severity.value == "error" for d in result.diagnostics)
    valid = result.program is not None and not has_errors(result.diagnostics)
    return {
        "version": entry.version,
        "effective": entry.effective.isoformat() if entry.effective else None,
        "ends": entry.ends.isoformat() if entry.ends else None,
        "status": entry.status,
        "content_hash": content_hash(result.program) if valid and result.program else None,
        "errors": errors,
        "path": str(entry.path),
    }


def _text(rows: list[dict[str, Any]], folder: Path) -> str:
    header = ("version", "effective", "ends", "status", "content hash")
    table = [
        (
            r["version"],
            r["effective"] or "?",
            r["ends"] or "open",
            r["status"],
            r["content_hash"][:12] if r["content_hash"] else f"(invalid: {r['errors']} error(s))",
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *table, strict=False)]
    lines = [
        "  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip()
        for line in (header, *table)
    ]
    note = f"{len(rows)} version(s) of {folder.name}; only in-force versions are picked by date"
    return "\n".join([*lines, "", note]) + "\n"


@click.command("versions")
@click.argument("policy", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(policy: Path, fmt: str) -> None:
    """List the versions of POLICY (a policy folder): effective and end dates, status, content hash.

    Exit status 1 if a version does not check (its hash is then not shown).
    """
    entries = read_versions(policy)
    if not entries:
        fail_usage(
            UsageError(f"`{policy}` holds no `.policy` files", "a policy folder holds one file per version")
        )
    rows = [version_row(e) for e in entries]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(_text(rows, policy), nl=False)
    if any(r["errors"] for r in rows):
        sys.exit(1)
