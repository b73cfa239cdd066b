"""Opening a log by what the operator wrote: a SQLite file path, or a `postgresql://` URL."""

from __future__ import annotations

from engine.decisionlog.store import Store

__all__ = ["is_postgres", "open_store"]


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def open_store(url: str, *, create: bool = False, synchronous: str = "FULL") -> Store:
    """Open the log at a SQLite path or a `postgresql://` URL; `create` makes it if it is missing."""
    if is_postgres(url):
        from engine.decisionlog.postgres import PostgresStore

        return PostgresStore(url, create=create)
    from engine.decisionlog.sqlite import SqliteStore

    return SqliteStore(url, create=create, synchronous=synchronous)
