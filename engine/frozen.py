"""Read-only list and dict for the parts of decisions the engine caches and shares.

A decision depends only on which rules fired (and the date), so its parts are built once and
shared by every call, in every thread. Handing out shared *mutable* lists let one caller's
`decision.obligations.clear()` change every later answer. These types are ordinary `list`
and `dict` to everything that reads them (equality, iteration, JSON, pydantic serialization,
pickling) and raise `TypeError` on any attempt to change them, at no cost per call.
"""

from __future__ import annotations

from typing import Any, NoReturn, SupportsIndex, TypeVar

__all__ = ["FrozenDict", "FrozenList", "frozen_dict", "frozen_list"]

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


def _refuse(self: object, *args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError(
        f"this {type(self).__name__} is part of a shared, cached decision and cannot be changed; copy it first"
    )


class FrozenList(list[T]):
    """A list that cannot be changed after it is built."""

    append = extend = insert = remove = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse

    def pop(self, index: SupportsIndex = -1) -> NoReturn:
        _refuse(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (frozen_list, (list(self),))

    def __copy__(self) -> list[T]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[T]:
        import copy

        return [copy.deepcopy(item, memo) for item in self]


class FrozenDict(dict[K, V]):
    """A dict that cannot be changed after it is built."""

    __setitem__ = __delitem__ = __ior__ = clear = update = setdefault = popitem = _refuse

    def pop(self, key: Any, *default: Any) -> NoReturn:
        _refuse(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (frozen_dict, (dict(self),))

    def __copy__(self) -> dict[K, V]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[K, V]:
        import copy

        return {key: copy.deepcopy(value, memo) for key, value in self.items()}


def frozen_list(items: Any = ()) -> FrozenList[Any]:
    """A FrozenList of the items (built through `list.__init__`, which the class does not block)."""
    return FrozenList(items)


def frozen_dict(items: Any = ()) -> FrozenDict[Any, Any]:
    """A FrozenDict of the items."""
    return FrozenDict(items)
