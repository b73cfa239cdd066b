"""Child iteration derived from dataclass fields, for syntax and IR nodes alike (Jinja's `iter_child_nodes`).

A node's children are the values of its fields whose declared type is a node type (or a
tuple of them), in field order: nobody writes a per-class list, so a new node class with
node-typed fields has children without touching any walker, and no unknown node silently
becomes a leaf. `engine.syntax.children` and `engine.program.sub_nodes` are this function
with their module's node types.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from functools import cache
from typing import Any


def child_fields(cls: type, node_types: frozenset[str]) -> tuple[tuple[str, bool], ...]:
    """(field name, holds a tuple) of each field of `cls` declared as one of `node_types` or a tuple of them."""
    return _child_fields(cls, node_types)


@cache
def _child_fields(cls: type, node_types: frozenset[str]) -> tuple[tuple[str, bool], ...]:
    found = []
    for field in dataclasses.fields(cls):
        annotation = re.sub(r"\b\w+\.", "", str(field.type).replace(" ", ""))  # `p.Node` is `Node`
        if annotation in node_types:
            found.append((field.name, False))
        elif (
            annotation.startswith("tuple[")
            and annotation.endswith(",...]")
            and annotation[6:-5] in node_types
        ):
            found.append((field.name, True))
    return tuple(found)


def child_iterator(node_types: frozenset[str]) -> Callable[[Any], tuple[Any, ...]]:
    """The children function of a family of nodes: fields typed as one of `node_types`, in field order."""

    def children(node: Any) -> tuple[Any, ...]:
        out: list[Any] = []
        kind: type = node.__class__
        for name, many in _child_fields(kind, node_types):
            value = getattr(node, name)
            if many:
                out.extend(value)
            else:
                out.append(value)
        return tuple(out)

    return children
