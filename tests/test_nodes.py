"""One node protocol (engine/nodes.py): children come from dataclass fields, for syntax and IR nodes.

A node class nobody taught a walker about still has its children: the "forgot `sub_nodes`,
so an optional read inside the new node is never unknown" mistake cannot be made.
"""

from __future__ import annotations

import os
import subprocess
import sys
import typing
from dataclasses import dataclass, fields
from pathlib import Path

from engine import program as p
from engine import syntax as s
from engine.errors import NO_SPAN
from engine.nodes import child_fields
from tests.conftest import ROOT


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


def _dispatcher(name: str, handled: list[type]) -> str:
    cases = "\n".join(
        f"        case p.{cls.__name__}():\n            return {cls.__name__!r}" for cls in handled
    )
    return (
        "from typing import assert_never\n\nfrom engine import program as p\n\n\n"
        f"def {name}(node: p.Node) -> str:\n    match node:\n{cases}\n        case _:\n"
        "            assert_never(node)\n"
    )


def test_an_unhandled_node_type_makes_mypy_fail(tmp_path: Path) -> None:
    """The documented check (docs/design.md, 'Where to add'): a `match` over `program.Node` that
    ends in `assert_never` does not type-check while a node type is missing from it, which is
    what a new node added to the `Node` union does to every dispatcher written this way."""
    every = list(typing.get_args(p.Node))
    (tmp_path / "complete.py").write_text(_dispatcher("complete", every), encoding="utf-8")
    (tmp_path / "missing.py").write_text(_dispatcher("missing", every[:-1]), encoding="utf-8")
    mypy = Path(sys.executable).parent / "mypy"
    command = [str(mypy)] if mypy.exists() else [sys.executable, "-m", "mypy"]
    result = subprocess.run(
        [*command, "--strict", "--cache-dir", str(tmp_path / "cache"), "complete.py", "missing.py"],
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert errors and all(line.startswith("missing.py") for line in errors), result.stdout
    assert every[-1].__name__ in result.stdout  # mypy names the node that is not handled
