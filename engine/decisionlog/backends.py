"""Opening a decision log by URL: the one module that knows every backend (SQLite, PostgreSQL).

Kept apart from `store.py` so that the backends can import the store's base classes without a cycle.
"""

from __future__ import annotations

from engine.decisionlog.store import Store, is_postgres

__all__ = ["open_store"]


def open_store(url: str, *, create: bool = False, synchronous: str = "FULL") -> Store:
    """Open the log at a SQLite path or a `postgresql://` URL; `create` makes it if it is missing."""
    if is_postgres(url):
        from engine.decisionlog.postgres import PostgresStore

        return PostgresStore(url, create=create)
    from engine.decisionlog.sqlite import SqliteStore

    return SqliteStore(url, create=create, synchronous=synchronous)
