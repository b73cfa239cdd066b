"""`policy serve`: the HTTP decision service, every decision logged durably before it is answered.

Heavy imports (FastAPI, uvicorn, cryptography, psycopg) happen only when the command runs,
so `policy --help` and every other command stay fast.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Any

import click

from engine.commands.options import fail_usage, report_policy_error
from engine.errors import PolicyError, UsageError

SYNCHRONOUS = ("FULL", "EXTRA", "NORMAL", "OFF")


@click.command("serve")
@click.argument("policies", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option(
    "--log",
    "log_url",
    required=True,
    metavar="LOG",
    help="Decision log: a SQLite file path or a postgresql:// URL.",
)
@click.option(
    "--tokens",
    "tokens_file",
    required=True,
    type=click.Path(path_type=Path),
    metavar="TOKENS_FILE",
    help='JSON: {"tokens": [{"name", "token", "scopes": ["decide", "log", "admin"]}]}.',
)
@click.option(
    "--checkpoints",
    "checkpoint_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Where signed checkpoints are exported [default: LOG.checkpoints for SQLite; required for PostgreSQL].",
)
@click.option(
    "--signing-key",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Ed25519 key (PEM) checkpoints and events are signed with; created if missing [default: LOG.signing-key.pem].",
)
@click.option(
    "--personal",
    "personal",
    multiple=True,
    metavar="FIELD",
    help="A fact holding personal data (e.g. end_user.name): logged only as a salted commitment. Repeatable.",
)
@click.option(
    "--sqlite-synchronous",
    type=click.Choice(SYNCHRONOUS, case_sensitive=False),
    default="FULL",
    show_default=True,
    help="SQLite fsync level; NORMAL and OFF are refused without --unsafe-durability.",
)
@click.option(
    "--unsafe-durability",
    is_flag=True,
    help="Start even if the log can lose acknowledged decisions on power loss (recorded in the log).",
)
@click.option(
    "--max-body",
    type=click.IntRange(min=256),
    default=64 * 1024,
    show_default=True,
    help="Largest request body in bytes.",
)
@click.option(
    "--max-depth",
    type=click.IntRange(min=2),
    default=32,
    show_default=True,
    help="Deepest JSON nesting accepted.",
)
@click.option(
    "--max-in-flight",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Decision requests served at once; beyond it, 503 with Retry-After.",
)
@click.option(
    "--reload-interval",
    type=float,
    default=2.0,
    show_default=True,
    help="Seconds between checks for changed policy files (0: only POST /v1/admin/reload).",
)
def command(
    policies: tuple[Path, ...],
    host: str,
    port: int,
    log_url: str,
    tokens_file: Path,
    checkpoint_dir: Path | None,
    signing_key: Path | None,
    personal: tuple[str, ...],
    sqlite_synchronous: str,
    unsafe_durability: bool,
    max_body: int,
    max_depth: int,
    max_in_flight: int,
    reload_interval: float,
) -> None:
    """Serve decisions under POLICIES (policy folders, `.policy` files, or a folder of policy folders).

    \b
    policy serve policies --log decisions.db --tokens tokens.json
    curl -H "Authorization: Bearer $TOKEN" -d @case.json \\
        'http://127.0.0.1:8080/v1/policies/ear-742.7/decide?at=2021-01-01'

    A 200 is sent only after the decision's record is committed to LOG; if the commit fails
    the answer is 503 and no decision. docs/service.md is the operator's guide.
    """
    try:
        from engine.decisionlog.backends import open_store
        from engine.decisionlog.checkpoints import CheckpointWriter, Signer
        from engine.decisionlog.log import default_checkpoints, default_signing_key, signed_event
        from engine.decisionlog.store import LogError
        from engine.service.app import ServiceConfig, create_app
        from engine.service.auth import TokenError, load_tokens
        from engine.service.policies import PolicySet
    except ImportError as exc:
        fail_usage(UsageError(f"the service needs {exc.name}", "pip install 'policy-engine[service]'"))
    try:
        tokens = load_tokens(tokens_file)
    except TokenError as exc:
        click.echo(f"error[invalid-tokens]: {exc}", err=True)
        sys.exit(1)
    for warning in tokens.warnings:
        click.echo(f"warning: {warning}", err=True)
    try:
        policy_set = PolicySet(list(policies))
    except UsageError as exc:
        fail_usage(exc)
    except PolicyError as exc:
        report_policy_error(exc)
    checkpoint_dir = checkpoint_dir or default_checkpoints(log_url)
    signing_key = signing_key or default_signing_key(log_url)
    if checkpoint_dir is None or signing_key is None:
        fail_usage(
            UsageError(
                "a PostgreSQL log needs --checkpoints DIR and --signing-key FILE",
                "checkpoints must live outside the database; see docs/service.md",
            )
        )
    try:
        store = open_store(log_url, create=True, synchronous=sqlite_synchronous.upper())
        durability = store.durability()
        if not durability.durable and not unsafe_durability:
            click.echo(
                "error[non-durable-log]: the decision log could lose acknowledged decisions:", err=True
            )
            for problem in durability.problems:
                click.echo(f"  {problem}", err=True)
            click.echo(
                "  = help: fix the database settings, or start with --unsafe-durability (recorded in the log)",
                err=True,
            )
            sys.exit(1)
        signer = Signer(signing_key)
        checkpoints = CheckpointWriter(checkpoint_dir, signer)
        served = [
            f"{p.id}@{v.entry.version}:{v.policy.content_hash[:12]}"
            for p in policy_set.current.policies.values()
            for v in p.versions
        ]
        start = signed_event(
            "config",
            {
                "event": "service-start",
                "by": _user(),
                "pid": os.getpid(),
                "listen": f"{host}:{port}",
                "durability": durability.settings,
                "durability_problems": durability.problems,
                "unsafe_durability": unsafe_durability,
                "personal_fields": list(personal),
                "policies": served,
            },
            signer,
        )
        store.append([start])
    except LogError as exc:
        click.echo(f"error[log]: {exc}", err=True)
        if exc.help:
            click.echo(f"  = help: {exc.help}", err=True)
        sys.exit(1)
    if unsafe_durability and not durability.durable:
        click.echo("warning: running with --unsafe-durability: " + "; ".join(durability.problems), err=True)
    config = ServiceConfig(
        policies=policy_set,
        store=store,
        tokens=tokens,
        log_url=log_url,
        checkpoint_dir=checkpoint_dir,
        checkpoints=checkpoints,
        personal_fields=personal,
        max_body_bytes=max_body,
        max_depth=max_depth,
        max_in_flight=max_in_flight,
        reload_interval=reload_interval,
        unsafe_durability=unsafe_durability,
    )
    _run(create_app(config), host, port)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _run(app: Any, host: str, port: int) -> None:
    import uvicorn

    click.echo(f"serving on http://{host}:{port} (log and checkpoints ready)", err=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        backlog=2048,
        timeout_keep_alive=30,
        lifespan="on",
    )
