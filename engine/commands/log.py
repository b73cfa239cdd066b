"""`policy log`: verify, show, export, prove, erase, prune and hold records of a decision log.

Exit status: 0 success (verify: intact), 1 tampered or refused, 2 usage.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

import click

from engine.commands.options import DATE


def _fail(exc: Exception) -> NoReturn:
    help_text = getattr(exc, "help", None)
    click.echo(f"error[log]: {exc}", err=True)
    if help_text:
        click.echo(f"  = help: {help_text}", err=True)
    sys.exit(1)


@contextmanager
def _store(url: str) -> Iterator[Any]:
    """Open an existing log; a bad path or URL is a located error, exit 1."""
    from engine.decisionlog.backends import open_store
    from engine.decisionlog.store import LogError

    try:
        store = open_store(url)
    except LogError as exc:
        _fail(exc)
    try:
        yield store
    except LogError as exc:
        _fail(exc)
    finally:
        store.close()


def _signer(url: str, key: Path | None) -> Any:
    from engine.decisionlog.checkpoints import Signer
    from engine.decisionlog.log import default_signing_key
    from engine.decisionlog.store import LogError

    path = key or default_signing_key(url)
    if path is None:
        _fail(LogError("a PostgreSQL log needs --signing-key FILE", "the key the service signs with"))
    try:
        return Signer(path, create=False)
    except LogError as exc:
        _fail(exc)


def _checkpoint_dir(url: str, given: Path | None) -> Path | None:
    from engine.decisionlog.log import default_checkpoints

    if given is not None:
        return given
    default = default_checkpoints(url)
    return default if default is not None and default.is_dir() else None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _time_bound(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


@click.group("log")
def command() -> None:
    """Inspect and maintain a decision log (SQLite path or postgresql:// URL)."""


SIGNING_KEY = click.option(
    "--signing-key",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="The log's Ed25519 key [default: LOG.signing-key.pem].",
)
BY = click.option(
    "--by", default=None, metavar="NAME", help="Who does this (recorded) [default: the OS user]."
)
SINCE = click.option("--since", type=DATE, metavar="DATE", help="Only records from this date (UTC).")
UNTIL = click.option("--until", type=DATE, metavar="DATE", help="Only records before this date (UTC).")


@command.command("verify")
@click.argument("log")
@click.option(
    "--checkpoints",
    "checkpoint_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Signed checkpoints to hold the log to [default: LOG.checkpoints if present].",
)
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    metavar="FILE",
    help="A trusted copy of the log's public key [default: DIR/public-key.pem].",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def verify_command(log: str, checkpoint_dir: Path | None, public_key: Path | None, fmt: str) -> None:
    """Recompute every hash and hold LOG to its checkpoints; exit 0 intact, 1 tampered."""
    from engine.decisionlog.verify import verify_log

    folder = _checkpoint_dir(log, checkpoint_dir)
    if checkpoint_dir is not None and not checkpoint_dir.is_dir():
        click.echo(f"error: no checkpoint folder `{checkpoint_dir}`", err=True)
        sys.exit(2)
    with _store(log) as store:
        report = verify_log(store, folder, public_key)
    if fmt == "json":
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        for warning in report.warnings:
            click.echo(f"warning: {warning}", err=True)
        newest = f", newest over {report.newest_checkpoint} records" if report.newest_checkpoint else ""
        click.echo(
            f"{log}: {report.records} records, {report.checkpoints} checkpoint(s){newest}, {report.pruned} pruned"
        )
        first = report.first
        if first is None:
            click.echo("intact: every hash, the chain and every checkpoint agree")
        else:
            who = f" (decision {first.decision_id})" if first.decision_id else ""
            click.echo(f"TAMPERED: first bad record #{first.seq}{who}: {first.kind}: {first.message}")
            for problem in sorted(report.problems, key=lambda p: p.seq)[1:20]:
                click.echo(f"  also #{problem.seq}: {problem.kind}: {problem.message}")
    sys.exit(0 if report.intact else 1)


@command.command("show")
@click.argument("log")
@click.option("--decision", "decision_id", metavar="ID", help="Print one decision's full record.")
@SINCE
@UNTIL
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Newest N records.")
def show_command(
    log: str, decision_id: str | None, since: date | None, until: date | None, limit: int
) -> None:
    """List records (newest last), or print one decision's record."""
    from engine.decisionlog.log import export_records, exported_record

    with _store(log) as store:
        if decision_id is not None:
            click.echo(json.dumps(exported_record(store, decision_id), indent=2, ensure_ascii=False))
            return
        rows = list(export_records(store, since=_time_bound(since), until=_time_bound(until)))[-limit:]
    for row in rows:
        click.echo(_summary_line(row))


def _summary_line(row: dict[str, Any]) -> str:
    """`#12 2026-01-01T... decision 7f.. ear-742.7@2020-10-06 license_review=favorable`."""
    head = f"#{row['seq']:<6} {row['time']}  {row['kind']:<8}"
    if row.get("pruned"):
        return f"{head} {row.get('decision_id') or ''} (pruned)"
    if row["kind"] == "decision":
        output = row.get("output") or {}
        values = ", ".join(f"{k}={v.get('value')}" for k, v in (output.get("decisions") or {}).items())
        erased = " (personal data erased)" if row.get("personal_erased") else ""
        return f"{head} {row['decision_id']}  {row.get('policy')}@{row.get('version')}  {values}{erased}"
    detail = {
        k: v
        for k, v in row.items()
        if k in ("event", "decision_id", "fields", "before", "records", "reason", "by")
    }
    return f"{head} " + json.dumps(detail, ensure_ascii=False)


@command.command("export")
@click.argument("log")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file (else stdout)."
)
@SINCE
@UNTIL
@click.option(
    "--decisions-only", is_flag=True, help="Leave out events (erasures, prunes, holds, service starts)."
)
def export_command(
    log: str, output: Path | None, since: date | None, until: date | None, decisions_only: bool
) -> None:
    """Every record as one JSON object per line (decision_id, policy, version, content_hash, evaluated_at, input, output, ...)."""
    from engine.decisionlog.log import export_records

    kinds = ("decision",) if decisions_only else ()
    with _store(log) as store:
        records = export_records(store, since=_time_bound(since), until=_time_bound(until), kinds=kinds)
        if output is None:
            for record in records:
                click.echo(json.dumps(record, ensure_ascii=False))
            return
        count = _write_atomically(output, (json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    click.echo(f"wrote {count} record(s) to {output}", err=True)


def _write_atomically(path: Path, lines: Iterator[str]) -> int:
    """Write beside the target and rename: an interrupted export never leaves half a file."""
    descriptor, name = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.")
    count = 0
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            for line in lines:
                handle.write(line)
                count += 1
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return count


@command.command("proof")
@click.argument("log")
@click.argument("decision_id")
@click.option(
    "--checkpoints", "checkpoint_dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR"
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file (else stdout)."
)
def proof_command(log: str, decision_id: str, checkpoint_dir: Path | None, output: Path | None) -> None:
    """An inclusion proof of one decision against the newest checkpoint (check it with tools/verify_inclusion.py)."""
    from engine.decisionlog.log import inclusion_proof, latest_checkpoint
    from engine.decisionlog.store import LogError

    folder = _checkpoint_dir(log, checkpoint_dir)
    if folder is None:
        _fail(LogError("no checkpoint folder", "give --checkpoints DIR"))
    with _store(log) as store:
        try:
            proof = inclusion_proof(store, decision_id, latest_checkpoint(folder))
        except LogError as exc:
            _fail(exc)
    text = json.dumps(proof, indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        _write_atomically(output, iter([text]))
        click.echo(f"wrote {output}", err=True)


@command.command("erase")
@click.argument("log")
@click.argument("decision_id")
@click.option(
    "--field", "fields", multiple=True, metavar="PATH", help="Erase only this personal field (repeatable)."
)
@click.option("--reason", required=True, help="Why (recorded in the signed erasure event).")
@BY
@SIGNING_KEY
def erase_command(
    log: str, decision_id: str, fields: tuple[str, ...], reason: str, by: str | None, signing_key: Path | None
) -> None:
    """Remove a decision's personal values and salts; a signed erasure event is appended, verify still passes."""
    from engine.decisionlog.log import erase

    signer = _signer(log, signing_key)
    with _store(log) as store:
        event, paths = erase(store, signer, decision_id, fields=fields, by=by or _user(), reason=reason)
    click.echo(
        f"erased {', '.join(p for p in paths if not p.startswith('$'))} of {decision_id} (event #{event.seq})"
    )


@command.command("prune")
@click.argument("log")
@click.option(
    "--before", required=True, type=DATE, metavar="DATE", help="Delete decisions made before this date."
)
@click.option("--reason", default="retention period ended", show_default=True)
@BY
@SIGNING_KEY
def prune_command(log: str, before: date, reason: str, by: str | None, signing_key: Path | None) -> None:
    """Delete the contents of decisions older than five years (held ones are kept); their hashes stay."""
    from engine.decisionlog.log import prune

    signer = _signer(log, signing_key)
    with _store(log) as store:
        event, count, kept = prune(store, signer, before, by=by or _user(), reason=reason)
    for decision_id, why in kept.items():
        click.echo(f"kept {decision_id}: on hold ({why})", err=True)
    if event is None:
        click.echo(f"nothing to prune before {before}")
    else:
        click.echo(f"pruned {count} decision(s) made before {before} (event #{event.seq})")


@command.command("hold")
@click.argument("log")
@click.argument("decision_id")
@click.option("--reason", required=True, help="Who asked and why (e.g. the agency's request).")
@click.option(
    "--release", is_flag=True, help="Lift the hold instead (with the written authorisation as reason)."
)
@BY
@SIGNING_KEY
def hold_command(
    log: str, decision_id: str, reason: str, release: bool, by: str | None, signing_key: Path | None
) -> None:
    """Place a hold on a decision so it is never pruned (15 CFR 762.6(b)), or lift it."""
    from engine.decisionlog.log import hold

    signer = _signer(log, signing_key)
    with _store(log) as store:
        event = hold(store, signer, decision_id, reason=reason, by=by or _user(), release=release)
    click.echo(f"{'released' if release else 'held'} {decision_id} (event #{event.seq})")
