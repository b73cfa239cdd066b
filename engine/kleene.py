"""Three-valued (Kleene) logic, written once: `None` is *unknown*, never silently false.

The generated evaluators (`compiler.py` for cases, `columnar.py` for encoded Arrow columns) call
these helpers only where a condition can be unknown (it reads an optional fact or a scalar table
lookup); everywhere else they emit plain `and`/`or`. Both put `NAMESPACE` into their generated
code's globals, so the two paths cannot drift apart in what "unknown" means.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["NAMESPACE", "all3", "and3", "any3", "cmp3", "get3", "in3", "not3", "or3", "status3"]


def and3(*values: bool | None) -> bool | None:
    """False wins over unknown; unknown wins over true."""
    if False in values:
        return False
    return None if None in values else True


def or3(*values: bool | None) -> bool | None:
    """True wins over unknown; unknown wins over false."""
    if True in values:
        return True
    return None if None in values else False


def not3(value: bool | None) -> bool | None:
    return None if value is None else not value


def cmp3(op: Callable[[Any, Any], bool], left: Any, right: Any) -> bool | None:
    """A comparison with an unknown side is unknown."""
    return None if left is None or right is None else op(left, right)


def in3(item: Any, collection: Any) -> bool | None:
    return None if item is None or collection is None else item in collection


def any3(items: Any, collection: Any) -> bool | None:
    """`includes any`: some item is in the collection (unknown if either side is)."""
    return None if items is None or collection is None else not frozenset(items).isdisjoint(collection)


def all3(items: Any, collection: Any) -> bool | None:
    """`includes all` read from the other side: every item is in the collection."""
    return None if items is None or collection is None else frozenset(items).issubset(collection)


def get3(table: dict[Any, Any], key: Any, default: Any) -> Any:
    """A table lookup whose key may be unknown: an unknown key looks up nothing (unknown)."""
    return None if key is None else table.get(key, default)


def status3(condition: bool | None, *unless: bool | None) -> bool | None:
    """Whether a rule fires (True), does not (False), or hangs on an unknown value (None)."""
    if condition is False or True in unless:
        return False
    if condition is True and all(u is False for u in unless):
        return True
    return None


#: The names generated code calls them by.
NAMESPACE: dict[str, Any] = {
    "_and3": and3,
    "_or3": or3,
    "_not3": not3,
    "_cmp3": cmp3,
    "_in3": in3,
    "_any3": any3,
    "_all3": all3,
    "_get3": get3,
    "_status3": status3,
}
