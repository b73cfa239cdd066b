"""What every name in a policy folder refers to: declarations and their uses, read from the syntax trees.

The index is built from the engine's own parser (`engine.parser.parse`, which recovers by
declaration, so a file with a syntax error still has its other declarations indexed) and
resolves names the way the checker does: a file sees its own declarations and those of
the vocabularies it `use`s, transitively; a bare name where an enumeration value is
expected is read as that value first. Enumeration values are told apart by the type of
the other side (`destination = AT` is a `Country`, `control_reason in <AT>` a
`ControlReason`), which is why the index carries a small type inference.

Nothing here talks the protocol: positions are 0-based `(line, character)` pairs, as the
Language Server Protocol counts them, so the server only wraps them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine import syntax as s
from engine.errors import Diagnostic, Span
from engine.parser import parse

__all__ = ["Declaration", "FileIndex", "FolderIndex", "Occurrence", "Range", "SymbolKey", "range_of"]

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*")

#: Kinds that share one namespace (the checker's `duplicate-name` rule).
NAMESPACE_KINDS = ("enum", "fact", "derived", "group", "table")


@dataclass(frozen=True, order=True)
class Range:
    """0-based, end exclusive, in characters of the line."""

    line: int
    col: int
    end_line: int
    end_col: int

    def contains(self, line: int, col: int) -> bool:
        """Whether a cursor at (line, col) touches the range (its end included, as editors do)."""
        return (self.line, self.col) <= (line, col) <= (self.end_line, self.end_col)


def range_of(span: Span) -> Range:
    """The 0-based range of an engine span (1-based lines and columns, end column exclusive)."""
    line = max(span.line - 1, 0)
    col = max(span.col - 1, 0)
    end_line = max(span.end_line - 1, line)
    end_col = span.end_col - 1 if span.end_line > 0 else col + 1
    if end_line == line and end_col <= col:
        end_col = col + 1
    return Range(line, col, end_line, end_col)


@dataclass(frozen=True, order=True)
class SymbolKey:
    """A declared thing: its kind, its name, and the file declaring it (rules are per file).

    Enumeration values are named `Enum.value`, so `AT` the country and `AT` the control
    reason are two symbols.
    """

    kind: str
    name: str
    file: Path


@dataclass(frozen=True)
class Declaration:
    key: SymbolKey
    range: Range  # of the name
    item: object  # the syntax node of the declaration (s.FactDecl, s.RuleDecl, ...)
    full: Range  # the whole declaration, for folding and symbols
    enum: str | None = None  # for values: the enumeration they belong to

    @property
    def name(self) -> str:
        return self.key.name.split(".", 1)[1] if self.key.kind == "value" else self.key.name


@dataclass(frozen=True)
class Occurrence:
    key: SymbolKey
    file: Path
    range: Range
    declaration: bool = False


@dataclass
class FileIndex:
    """One parsed file: its tree, syntax errors, own declarations and the names it uses."""

    path: Path
    text: str
    tree: s.SourceFile | None
    syntax_errors: list[Diagnostic]
    lines: list[str] = field(default_factory=list)
    uses: list[tuple[s.Use, Path]] = field(default_factory=list)
    declarations: list[Declaration] = field(default_factory=list)
    occurrences: list[Occurrence] = field(default_factory=list)

    @property
    def kind(self) -> str:
        if self.tree is not None:
            return self.tree.header.kind
        return "vocabulary" if self.path.suffix == ".vocab" else "policy"


class FolderIndex:
    """Every `.policy` and `.vocab` file of one policy universe (the folder above the policy folders)."""

    def __init__(self, root: Path, read: Callable[[Path], str | None]):
        self.root = root
        self._read = read
        self.files: dict[Path, FileIndex] = {}
        self._visible: dict[Path, dict[str, Declaration]] = {}
        self._texts: dict[Path, str] = {}

    # -- building ---------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read files whose text changed (open buffers or disk), then re-resolve every use.

        Parsing is cached per text, so an edit re-parses one file; resolution is cheap and
        skipped when nothing changed. Vocabularies `use`d from outside the folder are indexed too.
        """
        current: dict[Path, FileIndex] = {}
        reparsed = False
        pending = self._paths()
        while pending:
            path = pending.pop(0)
            if path in current:
                continue
            text = self._read(path)
            if text is None:
                continue
            index = self.files.get(path)
            if index is None or index.text != text:
                result = parse(text, str(path))
                index = FileIndex(path, text, result.tree, result.diagnostics, text.splitlines())
                reparsed = True
            current[path] = index
            for item in index.tree.items if index.tree is not None else ():
                if isinstance(item, s.Use):
                    pending.append((path.parent / item.path).resolve())
        if not reparsed and set(current) == set(self.files):
            return
        self.files = current
        for index in self.files.values():
            index.uses, index.declarations, index.occurrences = [], [], []
            if index.tree is not None:
                _declare(index)
        self._visible = {}
        for index in self.files.values():
            _Resolver(self, index).run()

    def _paths(self) -> list[Path]:
        """The folder's own files: `*.policy` and `*.vocab` at most one folder down, as laid out
        (`policies/<id>/<version>.policy`, `policies/shared/x.vocab`); never a deep walk, so a
        stray file's folder costs nothing to index."""
        found = {
            p.resolve()
            for pattern in ("*.policy", "*.vocab", "*/*.policy", "*/*.vocab")
            for p in self.root.glob(pattern)
            if p.is_file()
        }
        return sorted(found)

    def closure(self, path: Path) -> list[Path]:
        """The file and every vocabulary it uses, directly or not (depth first, each once)."""
        seen: list[Path] = []

        def visit(p: Path) -> None:
            if p in seen or p not in self.files:
                return
            seen.append(p)
            for _, target in self.files[p].uses:
                visit(target)

        visit(path)
        return seen

    def visible(self, path: Path) -> dict[str, Declaration]:
        """Name -> declaration for everything a file can name (its own first)."""
        if path not in self._visible:
            table: dict[str, Declaration] = {}
            for p in self.closure(path):
                for decl in self.files[p].declarations:
                    if decl.key.kind == "rule" and p != path:
                        continue
                    table.setdefault(_lookup_name(decl), decl)
            self._visible[path] = table
        return self._visible[path]

    def users(self, vocabulary: Path) -> list[Path]:
        """Policy files that see a file's declarations (through `use`), the file itself first."""
        return [p for p in self.files if vocabulary in self.closure(p)]

    # -- queries ------------------------------------------------------------------
    def declaration(self, key: SymbolKey) -> Declaration | None:
        index = self.files.get(key.file)
        if index is None:
            return None
        return next((d for d in index.declarations if d.key == key), None)

    def at(self, path: Path, line: int, col: int) -> Occurrence | None:
        """The name under the cursor, the innermost (shortest) one when several touch it."""
        index = self.files.get(path)
        if index is None:
            return None
        hits = [o for o in index.occurrences if o.range.contains(line, col)]
        if not hits:
            return None
        return min(hits, key=lambda o: (o.range.end_line - o.range.line, o.range.end_col - o.range.col))

    def references(self, key: SymbolKey) -> list[Occurrence]:
        """Every occurrence of a symbol across the folder, its declaration included, in file order."""
        found = [o for index in self.files.values() for o in index.occurrences if o.key == key]
        return sorted(found, key=lambda o: (str(o.file), o.range))

    def all_declarations(self) -> Iterator[Declaration]:
        for index in self.files.values():
            yield from index.declarations

    def enum_values(self, path: Path, enum: str) -> list[Declaration]:
        decl = self.visible(path).get(enum)
        if decl is None or decl.key.kind != "enum":
            return []
        index = self.files[decl.key.file]
        return [d for d in index.declarations if d.key.kind == "value" and d.enum == enum]

    def type_of(self, path: Path, expr: s.Expr) -> tuple[str, bool] | None:
        """(type name, is set) of an expression, when the syntax tells."""
        return _Resolver(self, self.files[path]).type_of(expr)

    def type_name(self, path: Path, name: str) -> tuple[str, bool] | None:
        """(type name, is set) of a fact, derived fact, group value or table lookup named `name`."""
        return _Resolver(self, self.files[path]).named_type(name)


def _lookup_name(decl: Declaration) -> str:
    """The key a declaration is found by in a file's visible table (kinds that do not share
    the namespace are prefixed, so a decision and a fact of the same name do not collide)."""
    kind = decl.key.kind
    if kind in NAMESPACE_KINDS:
        return decl.key.name
    return f"{kind}:{decl.key.name}"


# ---------------------------------------------------------------------------
# Declarations of one file


def _declare(index: FileIndex) -> None:
    assert index.tree is not None
    path = index.path
    for item in index.tree.items:
        full = range_of(item.span)
        if isinstance(item, s.Use):
            target = (path.parent / item.path).resolve()
            index.uses.append((item, target))
        elif isinstance(item, s.EnumDecl):
            _add(index, "enum", item.name.name, range_of(item.name.span), item, full)
            for value in item.values:
                key = SymbolKey("value", f"{item.name.name}.{value.name}", path)
                decl = Declaration(key, range_of(value.span), item, range_of(value.span), item.name.name)
                index.declarations.append(decl)
                index.occurrences.append(Occurrence(key, path, decl.range, True))
        elif isinstance(item, s.FactDecl):
            _add(index, "fact", item.dotted, _fact_name_range(index, item), item, full)
        elif isinstance(item, s.DefineDecl):
            _add(index, "derived", item.name.name, range_of(item.name.span), item, full)
        elif isinstance(item, s.GroupDecl):
            _add(index, "group", item.name.name, range_of(item.name.span), item, full)
        elif isinstance(item, s.TableDecl):
            _add(index, "table", item.name.name, range_of(item.name.span), item, full)
        elif isinstance(item, s.DecisionDecl):
            _add(index, "decision", item.name.name, range_of(item.name.span), item, full)
        elif isinstance(item, s.ObligationDecl):
            _add(index, "obligation", item.name.name, range_of(item.name.span), item, full)
        elif isinstance(item, s.RecommendationDecl):
            _add(index, "recommendation", item.name.name, range_of(item.name.span), item, full)
        elif isinstance(item, s.RuleDecl):
            _add(index, "rule", item.id.name, range_of(item.id.span), item, full)


def _add(index: FileIndex, kind: str, name: str, where: Range, item: object, full: Range) -> None:
    key = SymbolKey(kind, name, index.path)
    index.declarations.append(Declaration(key, where, item, full))
    index.occurrences.append(Occurrence(key, index.path, where, True))


def _fact_name_range(index: FileIndex, fact: s.FactDecl) -> Range:
    """The parser keeps the whole declaration's span; the name is the path after `fact`."""
    start = range_of(fact.span)
    line = index.lines[start.line] if start.line < len(index.lines) else ""
    match = re.compile(r"fact\s+(" + re.escape(fact.dotted).replace(r"\.", r"\s*\.\s*") + ")").match(
        line, start.col
    )
    if match is None:
        return Range(start.line, start.col, start.line, start.col + 4)
    return Range(start.line, match.start(1), start.line, match.end(1))


def type_name_range(type_expr: s.TypeExpr) -> Range:
    """The range of the type's name inside `optional set of NAME` (it ends the span)."""
    whole = range_of(type_expr.span)
    if whole.end_line != whole.line:
        return whole
    return Range(whole.line, max(whole.end_col - len(type_expr.name), whole.col), whole.line, whole.end_col)


# ---------------------------------------------------------------------------
# Resolving the names a file uses


class _Resolver:
    def __init__(self, folder: FolderIndex, index: FileIndex):
        self.folder = folder
        self.index = index
        self.path = index.path
        self._typing: set[str] = set()

    @property
    def visible(self) -> dict[str, Declaration]:
        return self.folder.visible(self.path)

    def run(self) -> None:
        tree = self.index.tree
        if tree is None:
            return
        for item in tree.items:
            self._item(item)

    def _use(self, key: SymbolKey, where: Range) -> None:
        self.index.occurrences.append(Occurrence(key, self.path, where, False))

    def _named(self, kind: str, name: str, where: Range) -> None:
        decl = self.visible.get(name if kind in NAMESPACE_KINDS else f"{kind}:{name}")
        if decl is not None and decl.key.kind == kind:
            self._use(decl.key, where)

    def _type(self, type_expr: s.TypeExpr | None) -> None:
        if type_expr is not None:
            self._named("enum", type_expr.name, type_name_range(type_expr))

    def _value(self, enum: str | None, ident: s.Ident | s.Ref) -> bool:
        """Record a value of an enumeration; False when it is not one of its values."""
        name = ident.name if isinstance(ident, s.Ident) else ident.dotted
        decl = self.visible.get(enum or "")
        if decl is None or decl.key.kind != "enum":
            return False
        key = SymbolKey("value", f"{enum}.{name}", decl.key.file)
        if self.folder.declaration(key) is None:
            return False
        self._use(key, range_of(ident.span))
        return True

    def _item(self, item: s.Item) -> None:
        if isinstance(item, s.FactDecl | s.TableDecl | s.DefineDecl):
            if isinstance(item, s.FactDecl):
                self._type(item.type)
                if item.default is not None:
                    self._expr(item.default, self._enum_of_type(item.type))
            elif isinstance(item, s.TableDecl):
                self._type(item.key_type)
                self._type(item.value_type)
            else:
                self._type(item.type)
                self._expr(item.expr, self._enum_of_type(item.type))
        elif isinstance(item, s.GroupDecl):
            self._set_items(item.values.items, None)
        elif isinstance(item, s.DecisionDecl):
            self._named("enum", item.type_name.name, range_of(item.type_name.span))
            if isinstance(item.default, s.Ref):
                self._value(item.type_name.name, item.default)
        elif isinstance(item, s.RuleDecl):
            for target in item.overrides:
                self._named("rule", target.name, range_of(target.span))
            self._expr(item.condition, None)
            for unless in item.unless:
                self._expr(unless, None)
            for outcome in item.outcomes:
                self._outcome(outcome)

    def _outcome(self, outcome: s.Outcome) -> None:
        if isinstance(outcome, s.Decide):
            self._named("decision", outcome.decision.name, range_of(outcome.decision.span))
            decision = self.visible.get(f"decision:{outcome.decision.name}")
            if decision is not None and isinstance(decision.item, s.DecisionDecl):
                if isinstance(outcome.value, s.Ref) and len(outcome.value.path) == 1:
                    self._value(decision.item.type_name.name, outcome.value)
                else:  # a constant or an expression computed per case
                    self._expr(outcome.value, None)
        elif isinstance(outcome, s.Require):
            self._named("obligation", outcome.name.name, range_of(outcome.name.span))
        else:
            self._named("recommendation", outcome.name.name, range_of(outcome.name.span))

    # -- expressions ------------------------------------------------------------------
    def _expr(self, expr: s.Expr, expected: str | None) -> None:
        if isinstance(expr, s.Ref):
            self._ref(expr, expected)
        elif isinstance(expr, s.SetLiteral):
            self._set_items(expr.items, expected)
        elif isinstance(expr, s.Lookup):
            self._named("table", expr.table.name, range_of(expr.table.span))
            self._expr(expr.key, self._table_types(expr.table.name)[0])
        elif isinstance(expr, s.Compare):
            self._expr(expr.left, None)
            self._expr(expr.right, self._enum(self.type_of(expr.left)))
        elif isinstance(expr, s.Member):
            self._expr(expr.item, None)
            self._expr(expr.collection, self._enum(self.type_of(expr.item)))
        elif isinstance(expr, s.Includes):
            self._expr(expr.collection, None)
            self._expr(expr.item, self._enum(self.type_of(expr.collection)))
        elif isinstance(expr, s.Presence):
            self._ref(expr.ref, None)
        else:
            for child in s.children(expr):
                self._expr(child, None)

    def _ref(self, ref: s.Ref, expected: str | None) -> None:
        name = ref.dotted
        where = range_of(ref.span)
        if len(ref.path) == 1 and expected is not None and self._value(expected, ref):
            return
        decl = self.visible.get(name)
        if decl is not None and decl.key.kind in NAMESPACE_KINDS and decl.key.kind != "enum":
            self._use(decl.key, where)
            return
        if len(ref.path) == 1:
            owners = self._owners(name)
            if len(owners) == 1:
                self._value(owners[0], ref)

    def _set_items(self, items: Iterable[s.Ref | s.Literal], expected: str | None) -> None:
        items = list(items)
        if expected is None:
            names = [i.dotted for i in items if isinstance(i, s.Ref)]
            common = [e for e in self._enums() if all(self._has_value(e, n) for n in names)]
            expected = common[0] if len(common) == 1 else None
        for item in items:
            self._expr(item, expected)

    # -- types ------------------------------------------------------------------------------
    def _enums(self) -> list[str]:
        return [n for n, d in self.visible.items() if d.key.kind == "enum"]

    def _has_value(self, enum: str, value: str) -> bool:
        decl = self.visible.get(enum)
        return (
            decl is not None
            and isinstance(decl.item, s.EnumDecl)
            and any(v.name == value for v in decl.item.values)
        )

    def _owners(self, value: str) -> list[str]:
        return [e for e in self._enums() if self._has_value(e, value)]

    def _enum(self, type_name: tuple[str, bool] | None) -> str | None:
        if type_name is None:
            return None
        decl = self.visible.get(type_name[0])
        return type_name[0] if decl is not None and decl.key.kind == "enum" else None

    def _enum_of_type(self, type_expr: s.TypeExpr | None) -> str | None:
        return None if type_expr is None else self._enum((type_expr.name, type_expr.is_set))

    def _table_types(self, name: str) -> tuple[str | None, tuple[str, bool] | None]:
        decl = self.visible.get(name)
        if decl is None or not isinstance(decl.item, s.TableDecl):
            return None, None
        table = decl.item
        return self._enum((table.key_type.name, False)), (table.value_type.name, table.value_type.is_set)

    def type_of(self, expr: s.Expr) -> tuple[str, bool] | None:
        """(type name, is set) when the syntax tells it: facts, derived facts, lookups, groups."""
        if isinstance(expr, s.Ref):
            return self.named_type(expr.dotted)
        if isinstance(expr, s.Lookup):
            return self._table_types(expr.table.name)[1]
        if isinstance(expr, s.SetLiteral):
            names = [i.dotted for i in expr.items if isinstance(i, s.Ref)]
            common = [e for e in self._enums() if names and all(self._has_value(e, n) for n in names)]
            return (common[0], True) if len(common) == 1 else None
        if isinstance(expr, s.Literal):
            return None
        return ("boolean", False)

    def named_type(self, name: str) -> tuple[str, bool] | None:
        decl = self.visible.get(name)
        if decl is None:
            return None
        item = decl.item
        if isinstance(item, s.FactDecl):
            return (item.type.name, item.type.is_set)
        if isinstance(item, s.DefineDecl):
            if item.type is not None:
                return (item.type.name, item.type.is_set)
            if name in self._typing:
                return None
            self._typing.add(name)
            try:
                return self.type_of(item.expr)
            finally:
                self._typing.discard(name)
        if isinstance(item, s.GroupDecl):
            return self.type_of(item.values)
        return None
