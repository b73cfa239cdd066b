"""No import cycles in engine/, lazy (function-level) imports included.

Every module's AST is read, every `import engine...`/`from engine... import` anywhere in it
(module level, inside functions, inside `try`) is an edge; imports under `if TYPE_CHECKING:`
never run and are left out. A cycle, however it is held together (import order, a late import
in a function), fails this test with the modules that form it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "engine"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, here: str) -> set[str]:
    """Every engine module a module's code can import, at any depth of its AST."""
    found: set[str] = set()
    package = here if MODULES[here].name == "__init__.py" else here.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _type_checking_only(node):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Import | ast.ImportFrom):
                    sub.names = []  # never runs
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.names:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:  # `from engine import api` imports engine.api, not the package
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return {name for name in found if name in MODULES and name != here}


#: Modules that import a whole package by name at run time (`importlib`): the CLI registers
#: every module of engine.commands. The AST cannot see those edges, so they are added here.
PLUGIN_HOSTS = {"engine.cli": "engine.commands."}


def import_graph() -> dict[str, set[str]]:
    graph = {
        name: _imports(ast.parse(path.read_text(encoding="utf-8")), name) for name, path in MODULES.items()
    }
    for host, prefix in PLUGIN_HOSTS.items():
        graph[host] |= {name for name in MODULES if name.startswith(prefix)}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_scan_sees_lazy_imports() -> None:
    graph = import_graph()
    assert "engine.analysis" in graph["engine.api"]  # imported inside api.check
    assert "engine.cli" in graph["engine.entry"]  # imported inside entry.run
    assert "engine.commands.docs" in graph["engine.cli"]  # registered through importlib


def test_a_command_importing_the_cli_late_is_a_cycle() -> None:
    """The shape this test was written against: `commands/docs.py` imported engine.cli in a function."""
    graph = import_graph()
    graph["engine.commands.docs"] = graph["engine.commands.docs"] | {"engine.cli"}
    assert find_cycle(graph) == ["engine.cli", "engine.commands.docs", "engine.cli"]


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_tool_imports_the_cli() -> None:
    graph = import_graph()
    importers = sorted(name for name, targets in graph.items() if "engine.cli" in targets)
    assert importers == ["engine.entry"]
