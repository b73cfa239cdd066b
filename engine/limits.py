"""Structural limits of a policy, checked before the checker and compiler walk it.

The checker, the compiler and the generated Python recurse over conditions, derived facts,
`overrides` and `use` chains. Past a few hundred levels that is a `RecursionError` or the
interpreter's own "too many nested parentheses" `SyntaxError` (200 nested `not` was enough),
not a message. Each limit here is far above anything a person writes and far below where
the engine breaks, and breaking it is a located `too-deep` error (docs/security.md):

* `MAX_NESTING`: depth of one condition (`not`, `and`/`or`, parentheses);
* `MAX_CHAIN`: length of a chain of derived facts defined from each other, and of a chain of
  rules each overriding the next;
* `MAX_USE_DEPTH`: vocabularies using vocabularies.

The walks here are iterative, so they cannot themselves run out of stack.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from engine import syntax as s
from engine.errors import Diagnostic, Span

__all__ = ["MAX_CHAIN", "MAX_NESTING", "MAX_USE_DEPTH", "structure_diagnostics", "too_deep"]

MAX_NESTING = 64
MAX_CHAIN = 128
MAX_USE_DEPTH = 32


def too_deep(message: str, span: Span, help: str) -> Diagnostic:
    """The one diagnostic of every structural limit."""
    return Diagnostic.at("too-deep", message, span, help)


def _children(expr: object) -> Iterable[object]:
    if isinstance(expr, s.Not):
        return (expr.operand,)
    if isinstance(expr, s.And | s.Or):
        return expr.operands
    return ()


def nesting(expr: object) -> int:
    """How deep a condition nests (a plain test is 1), without recursion."""
    deepest = 0
    stack = [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in _children(node))
    return deepest


def _refs(expr: object) -> Iterator[str]:
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, s.Ref):
            yield node.dotted
        for value in getattr(node, "__slots__", ()):
            child = getattr(node, value, None)
            if isinstance(child, tuple):
                stack.extend(c for c in child if hasattr(c, "__slots__"))
            elif hasattr(child, "__slots__") and not isinstance(child, s.Ident | Span):
                stack.append(child)


def _longest_chain(graph: dict[str, list[str]]) -> tuple[int, str | None]:
    """Length of the longest dependency chain and the name it starts from (cycles are the
    checker's to report: a name met again on the current path is not followed)."""
    memo: dict[str, int] = {}
    best, start = 0, None
    for root in graph:
        if root in memo:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        on_path: set[str] = set()
        while stack:
            name, index = stack.pop()
            if index == 0:
                on_path.add(name)
            targets = [t for t in graph.get(name, ()) if t in graph and t not in on_path]
            pending = next((i for i in range(index, len(targets)) if targets[i] not in memo), None)
            if pending is not None:
                stack.append((name, pending + 1))
                stack.append((targets[pending], 0))
                continue
            memo[name] = 1 + max((memo[t] for t in targets if t in memo), default=0)
            on_path.discard(name)
        if memo[root] > best:
            best, start = memo[root], root
    return best, start


def structure_diagnostics(items: Iterable[s.Item]) -> list[Diagnostic]:
    """Every limit above broken by these declarations (a policy and what it uses)."""
    found: list[Diagnostic] = []
    defines: dict[str, list[str]] = {}
    define_spans: dict[str, Span] = {}
    overrides: dict[str, list[str]] = {}
    rule_spans: dict[str, Span] = {}
    for item in items:
        if isinstance(item, s.RuleDecl):
            for expr in (item.condition, *item.unless):
                depth = nesting(expr)
                if depth > MAX_NESTING:
                    found.append(
                        too_deep(
                            f"this condition nests {depth} levels deep (at most {MAX_NESTING})",
                            getattr(expr, "span", item.span),
                            "name parts of it with `define` and use the names",
                        )
                    )
            overrides[item.id.name] = [o.name for o in item.overrides]
            rule_spans[item.id.name] = item.id.span
        elif isinstance(item, s.DefineDecl):
            depth = nesting(item.expr)
            if depth > MAX_NESTING:
                found.append(
                    too_deep(
                        f"the definition of `{item.name.name}` nests {depth} levels deep (at most {MAX_NESTING})",
                        item.name.span,
                        "split it into several `define`s",
                    )
                )
            defines[item.name.name] = list(_refs(item.expr))
            define_spans[item.name.name] = item.name.span
    for graph, spans, what in ((defines, define_spans, "derived facts"), (overrides, rule_spans, "rules")):
        length, start = _longest_chain(graph)
        if length > MAX_CHAIN and start is not None:
            verb = "each defined from the next" if what == "derived facts" else "each overriding the next"
            found.append(
                too_deep(
                    f"a chain of {length} {what}, {verb}, starts at `{start}` (at most {MAX_CHAIN})",
                    spans[start],
                    "shorten the chain: define the later ones from facts directly"
                    if what == "derived facts"
                    else "let one exception override several rules rather than each the next",
                )
            )
    return found
