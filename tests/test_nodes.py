"""One node protocol (engine/nodes.py): children come from dataclass fields, for syntax and IR nodes.

A node class nobody taught a walker about still has its children: the "forgot `sub_nodes`,
so an optional read inside the new node is never unknown" mistake cannot be made.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, fields

from engine import program as p
from engine import syntax as s
from engine.errors import NO_SPAN
from engine.nodes import child_fields


def test_every_ir_node_field_of_node_type_is_a_child() -> None:
    for cls in typing.get_args(p.Node):
        node_fields = [f.name for f in fields(cls) if "Node" in str(f.type) and f.name != "source"]
        assert [name for name, _ in child_fields(cls, frozenset({"Node"}))] == node_fields, cls.__name__


def test_a_new_ir_node_has_children_without_any_walker_edit() -> None:
    @dataclass(frozen=True, slots=True, eq=False)
    class WithinNode:  # `x within <lo, hi>`: the construct the issue counts 11 files for
        value: p.Node
        low: p.Node
        high: p.Node
        type: p.Type
        source: s.Expr

    source = s.Ref(("x",), span=NO_SPAN)
    read = p.FactRead("x", p.NUMBER, True, source)
    low, high = (p.Const(v, p.NUMBER, source) for v in (1, 2))
    node = WithinNode(read, low, high, p.BOOLEAN, source)
    assert p.sub_nodes(node) == (read, low, high)  # type: ignore[arg-type]


def test_syntax_children_in_source_order() -> None:
    a, b, c = (s.Ref((name,), span=NO_SPAN) for name in "abc")
    assert s.children(s.And((a, s.Not(b)), span=NO_SPAN)) == (a, s.Not(b))
    assert s.children(s.Includes(a, b, span=NO_SPAN)) == (a, b)
    assert s.children(s.SetLiteral((a, c), span=NO_SPAN)) == (a, c)
    assert s.children(s.Lookup(s.Ident("t", span=NO_SPAN), a, span=NO_SPAN)) == (a,)
    assert s.children(a) == ()
