"""The decision log: durable, append-only, hash-chained, Merkle-rooted, with signed checkpoints.

Nothing here is imported by `import engine`; `cryptography` and `psycopg` are imported only
when a log is opened or a checkpoint signed (`pip install 'policy-engine[service]'`).
See docs/service.md for what the log guarantees and how to run it.
"""

from engine.decisionlog.backends import open_store
from engine.decisionlog.store import Durability, LogError, LogUnavailable, Pending, Sealed, Store

__all__ = ["Durability", "LogError", "LogUnavailable", "Pending", "Sealed", "Store", "open_store"]
