"""What the server answers: hover, navigation, rename, symbols, folding, completion, formatting, fixes.

Each function takes the workspace, a file and a 0-based position and returns
`lsprotocol` values; `engine.lsp.server` only routes requests here. Everything is read
from the engine's syntax trees (through `engine.lsp.index`), its checker and its
formatter: there is no second parser.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any

from lsprotocol import types as t

from engine import syntax as s
from engine.errors import Diagnostic, Severity
from engine.formatter import FormatError, UnsafeFormat, format_text, verify
from engine.lsp.index import Declaration, FolderIndex, Range, SymbolKey, range_of
from engine.lsp.workspace import Workspace
from engine.parser import parse

__all__ = [
    "code_actions",
    "completion",
    "definition",
    "document_symbols",
    "folding_ranges",
    "format_document",
    "hover",
    "references",
    "rename",
    "to_lsp_diagnostic",
    "workspace_symbols",
]

SOURCE = "policy"


def lsp_range(r: Range) -> t.Range:
    return t.Range(t.Position(r.line, r.col), t.Position(r.end_line, r.end_col))


def location(path: Path, r: Range) -> t.Location:
    return t.Location(path.as_uri(), lsp_range(r))


# ---------------------------------------------------------------------------
# Diagnostics

_SEVERITY = {
    Severity.ERROR: t.DiagnosticSeverity.Error,
    Severity.WARNING: t.DiagnosticSeverity.Warning,
    Severity.NOTE: t.DiagnosticSeverity.Information,
}


def to_lsp_diagnostic(d: Diagnostic) -> t.Diagnostic:
    """An engine diagnostic as the protocol's: code, range, severity; the help line in the message
    (editors show `message` everywhere; the help is also kept in `data` for the quick fixes)."""
    line = max(d.line - 1, 0)
    col = max(d.column - 1, 0)
    end_line = d.end_line - 1 if d.end_line > 0 else line
    end_col = d.end_column - 1 if d.end_line > 0 else col + 1
    if (end_line, end_col) <= (line, col):
        end_line, end_col = line, col + 1
    message = d.message + (f"\nhelp: {d.help}" if d.help else "")
    return t.Diagnostic(
        range=t.Range(t.Position(line, col), t.Position(end_line, end_col)),
        message=message,
        severity=_SEVERITY[d.severity],
        code=d.code,
        source=SOURCE,
        code_description=_docs_link(d.code),
        data={"help": d.help, "message": d.message},
    )


def _docs_link(code: str) -> t.CodeDescription | None:
    """Where the code is explained in the project the server runs in, when it has the docs:
    lint codes in docs/linting.md (its table of codes), the others in docs/errors.md."""
    from engine.linter import CODES

    page, anchor = ("linting.md", "codes") if code in CODES else ("errors.md", code)
    target = Path.cwd() / "docs" / page
    return t.CodeDescription(href=f"{target.as_uri()}#{anchor}") if target.is_file() else None


# ---------------------------------------------------------------------------
# Hover

_KIND_WORDS = {
    "fact": "fact",
    "derived": "derived fact",
    "group": "group",
    "table": "reference table",
    "enum": "enumeration",
    "value": "value",
    "decision": "decision",
    "obligation": "obligation",
    "recommendation": "recommendation",
    "rule": "rule",
}


def hover(ws: Workspace, path: Path, line: int, col: int) -> t.Hover | None:
    folder = ws.index(path)
    occurrence = folder.at(path, line, col)
    if occurrence is None:
        return _hover_header(ws, folder, path, line, col)
    decl = folder.declaration(occurrence.key)
    if decl is None:
        return None
    text = _describe(ws, folder, decl, path)
    return t.Hover(t.MarkupContent(t.MarkupKind.Markdown, text), lsp_range(occurrence.range))


def _where(ws: Workspace, decl: Declaration) -> str:
    return f"declared in `{ws.engine_path(decl.key.file)}:{decl.range.line + 1}`"


def _code(text: str) -> str:
    return f"```policy\n{text}\n```"


def _type_text(type_expr: s.TypeExpr) -> str:
    return (
        ("optional " if type_expr.optional else "") + ("set of " if type_expr.is_set else "") + type_expr.name
    )


def _values_line(folder: FolderIndex, path: Path, enum: str, limit: int = 40) -> str:
    values = [d.name for d in folder.enum_values(path, enum)]
    shown = ", ".join(f"`{v}`" for v in values[:limit])
    return shown + (f", ... ({len(values)} values)" if len(values) > limit else "")


def _describe(ws: Workspace, folder: FolderIndex, decl: Declaration, path: Path) -> str:
    """The hover text of a declaration, in the words of docs/language.md."""
    item = decl.item
    kind = decl.key.kind
    parts: list[str] = []
    if isinstance(item, s.FactDecl):
        default = f" default {s.unparse(item.default)}" if item.default is not None else ""
        parts.append(_code(f'fact {item.dotted}: {_type_text(item.type)}{default} "{item.description}"'))
        parts.append(item.description)
        if item.default is not None:
            parts.append(
                f"**Default:** `{s.unparse(item.default)}`; a case may leave it out and it then takes this value"
            )
        elif item.type.optional:
            parts.append(
                "**Default:** none; optional, a case may leave it out (conditions reading it are then *unknown*)"
            )
        else:
            parts.append("**Default:** none; required in every case")
        if _is_enum(folder, path, item.type.name):
            parts.append(f"**{item.type.name}:** " + _values_line(folder, path, item.type.name))
    elif kind == "value" and decl.enum is not None:
        enum_decl = folder.visible(path).get(decl.enum)
        about = (
            f" ({enum_decl.item.description})" if enum_decl and isinstance(enum_decl.item, s.EnumDecl) else ""
        )
        parts.append(_code(decl.name))
        parts.append(f"a value of the enumeration `{decl.enum}`{about}")
        parts.append(f"**{decl.enum}:** " + _values_line(folder, path, decl.enum))
    elif isinstance(item, s.EnumDecl):
        parts.append(_code(f"enum {item.name.name}"))
        parts.append(item.description)
        parts.append("**Values:** " + _values_line(folder, path, item.name.name))
    elif isinstance(item, s.DefineDecl):
        typed = f": {_type_text(item.type)}" if item.type else ""
        parts.append(
            _code(f'define {item.name.name}{typed} "{item.description}" =\n  {s.unparse(item.expr)}')
        )
        parts.append(item.description)
        inferred = folder.type_name(path, item.name.name)
        if item.type is None and inferred is not None:
            parts.append(f"**Type:** {'set of ' if inferred[1] else ''}{inferred[0]} (inferred)")
        parts += _table_rows(ws, folder, path, _tables_read(folder, path, item.expr, set()))
    elif isinstance(item, s.GroupDecl):
        parts.append(_code(f"group {item.name.name} = {s.unparse(item.values)}"))
        if item.description:
            parts.append(item.description)
    elif isinstance(item, s.TableDecl):
        parts.append(
            _code(f"table {item.name.name}: {_type_text(item.key_type)} -> {_type_text(item.value_type)}")
        )
        parts.append(item.description)
        parts += _table_rows(ws, folder, path, [decl])
    elif isinstance(item, s.DecisionDecl):
        default = s.unparse(item.default) if item.default else "(none)"
        parts.append(_code(f"decision {item.name.name}: {item.type_name.name} default {default}"))
        parts.append(item.description)
        parts.append(
            f"**Default:** `{default}`; **{item.type_name.name}:** "
            + _values_line(folder, path, item.type_name.name)
        )
    elif isinstance(item, s.ObligationDecl):
        parts.append(_code(f"obligation {item.name.name}"))
        parts.append(item.description)
    elif isinstance(item, s.RecommendationDecl):
        parts.append(_code(f"recommendation {item.name.name}"))
        parts.append(item.description)
        parts += [f"- cites {c}" for c in item.citations]
    elif isinstance(item, s.RuleDecl):
        parts += _describe_rule(folder, decl, item)
    parts.append(f"*{_KIND_WORDS.get(kind, kind)}, {_where(ws, decl)}*")
    return "\n\n".join(p for p in parts if p)


def _is_enum(folder: FolderIndex, path: Path, name: str) -> bool:
    decl = folder.visible(path).get(name)
    return decl is not None and decl.key.kind == "enum"


def _describe_rule(folder: FolderIndex, decl: Declaration, rule: s.RuleDecl) -> list[str]:
    index = folder.files[decl.key.file]
    parts = [_code(f"rule {rule.id.name}"), rule.description or "*(no description)*"]
    if rule.citations:
        quotes = _quotations(index.tree)
        lines = []
        for citation in rule.citations:
            lines.append(f"- **{citation}**")
            lines += [f"  > {q}" for q in _quotes_for(citation, quotes)]
        parts.append("**Cites**\n" + "\n".join(lines))
    else:
        parts.append("**Cites** nothing yet (`missing-citation`)")
    rules = {r.id.name: r for r in (index.tree.rules if index.tree else ())}
    if rule.overrides:
        parts.append(
            "**Overrides** "
            + "; ".join(
                f"`{o.name}` ({rules[o.name].description or ''})" if o.name in rules else f"`{o.name}`"
                for o in rule.overrides
            )
        )
    overridden_by = [r for r in rules.values() if any(o.name == rule.id.name for o in r.overrides)]
    if overridden_by:
        parts.append(
            "**Overridden by** " + "; ".join(f"`{r.id.name}` ({r.description or ''})" for r in overridden_by)
        )
    notes = _comment_above(index.lines, decl.full.line)
    if notes:
        parts.append("**Notes**\n" + "\n".join(f"> {n}" for n in notes))
    return parts


_QUOTE = re.compile(r'"([^"]{12,})"')
_DESIGNATOR = re.compile(r"((?:\([A-Za-z0-9]+\))+)\s*$")


def _quotations(tree: s.SourceFile | None) -> list[tuple[str, str]]:
    """(the 40 characters before, the quoted text) for every quotation in a file's comments.

    Policies quote the regulation in comments (`# (b)(1) "Applications for items ..."`,
    possibly over several lines); joined, the comments read as one text.
    """
    if tree is None:
        return []
    text = " ".join(c.text.lstrip("#").strip() for c in tree.comments)
    return [(text[max(m.start() - 40, 0) : m.start()], m.group(1)) for m in _QUOTE.finditer(text)]


def _quotes_for(citation: str, quotes: list[tuple[str, str]]) -> list[str]:
    """The quoted passages of the paragraph a citation names: `(b)(1) "..."` or `"(b)(1) ..."`."""
    match = _DESIGNATOR.search(citation)
    if match is None:
        return []
    mark = match.group(1)
    found = [q for before, q in quotes if before.rstrip().endswith(mark) or q.startswith(mark)]
    return list(dict.fromkeys(found))


def _comment_above(lines: list[str], line: int) -> list[str]:
    """The comment block directly above a declaration (its author's note)."""
    out: list[str] = []
    index = line - 1
    while index >= 0 and lines[index].lstrip().startswith("#"):
        out.insert(0, lines[index].strip().lstrip("#").strip())
        index -= 1
    return [n for n in out if n and not set(n) <= {"-", " "}]


def _tables_read(folder: FolderIndex, path: Path, expr: s.Expr, seen: set[str]) -> list[Declaration]:
    """Tables a derived fact reads, directly or through other derived facts."""
    found: list[Declaration] = []
    visible = folder.visible(path)
    for node in s.walk(expr):
        name = (
            node.table.name
            if isinstance(node, s.Lookup)
            else node.dotted
            if isinstance(node, s.Ref)
            else None
        )
        if name is None or name in seen:
            continue
        seen.add(name)
        decl = visible.get(name)
        if decl is None:
            continue
        if decl.key.kind == "table":
            found.append(decl)
        elif isinstance(decl.item, s.DefineDecl):
            found += _tables_read(folder, path, decl.item.expr, seen)
    return list(dict.fromkeys(found))


def _table_rows(
    ws: Workspace, folder: FolderIndex, path: Path, tables: list[Declaration], limit: int = 8
) -> list[str]:
    """Each table's file, entry count and first rows, as the hover of what a derived fact reads."""
    out = []
    for decl in tables:
        table = decl.item
        assert isinstance(table, s.TableDecl)
        data_path = (decl.key.file.parent / table.source).resolve()
        try:
            data = json.loads(data_path.read_text(encoding="utf-8"))
            entries = data["entries"]
        except (OSError, ValueError, KeyError, TypeError):
            out.append(f"**Reads `{table.name.name}`** from `{table.source}` (cannot be read)")
            continue
        rows = ["| key | value | in force |", "| --- | --- | --- |"]
        for entry in entries[:limit]:
            value = entry.get("value")
            shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            window = f"{entry.get('effective') or '…'} to {entry.get('ends') or 'open'}"
            rows.append(f"| `{entry.get('key')}` | {shown or '(none)'} | {window} |")
        more = f"\n\n… and {len(entries) - limit} more rows" if len(entries) > limit else ""
        source = f" ({data['source']})" if isinstance(data, dict) and data.get("source") else ""
        out.append(
            f"**Reads `{table.name.name}`** from `{ws.engine_path(data_path)}`{source}, "
            f"{len(entries)} rows:\n\n" + "\n".join(rows) + more
        )
    return out


def _hover_header(ws: Workspace, folder: FolderIndex, path: Path, line: int, col: int) -> t.Hover | None:
    """Hover on a `use` line shows the vocabulary; on the header, the version's window."""
    index = folder.files.get(path)
    if index is None or index.tree is None:
        return None
    for use, target in index.uses:
        if range_of(use.span).contains(line, col):
            used = folder.files.get(target)
            if used is None or used.tree is None:
                return t.Hover(t.MarkupContent(t.MarkupKind.Markdown, f"`{use.path}` cannot be read"))
            title = used.tree.header.get("title")
            count = len(used.declarations)
            return t.Hover(
                t.MarkupContent(
                    t.MarkupKind.Markdown,
                    f'vocabulary **"{used.tree.header.id}"**'
                    + (f": {title.value}" if title else "")
                    + f"\n\n{count} declarations, `{ws.engine_path(target)}`",
                )
            )
    header = index.tree.header
    if range_of(header.span).line == line:
        fields = {f.name: f.value for f in header.fields}
        text = f'{header.kind} **"{header.id}"** {fields.get("version", "")}'
        if header.kind == "policy":
            text += f"\n\nin force {fields.get('effective', '?')} to {fields.get('ends', 'open')}, status `{fields.get('status', '?')}`"
            if fields.get("source"):
                text += f"\n\nimplements {fields['source']}"
        return t.Hover(t.MarkupContent(t.MarkupKind.Markdown, text))
    return None


# ---------------------------------------------------------------------------
# Navigation


def definition(ws: Workspace, path: Path, line: int, col: int) -> t.Location | None:
    folder = ws.index(path)
    occurrence = folder.at(path, line, col)
    if occurrence is None:
        index = folder.files.get(path)
        for use, target in index.uses if index else []:
            if range_of(use.span).contains(line, col):
                return location(target, Range(0, 0, 0, 0))
        return None
    decl = folder.declaration(occurrence.key)
    return None if decl is None else location(decl.key.file, decl.range)


def references(ws: Workspace, path: Path, line: int, col: int, include_declaration: bool) -> list[t.Location]:
    folder = ws.index(path)
    occurrence = folder.at(path, line, col)
    if occurrence is None:
        return []
    return [
        location(o.file, o.range)
        for o in folder.references(occurrence.key)
        if include_declaration or not o.declaration
    ]


def prepare_rename(ws: Workspace, path: Path, line: int, col: int) -> t.PrepareRenamePlaceholder | None:
    folder = ws.index(path)
    occurrence = folder.at(path, line, col)
    if occurrence is None:
        return None
    decl = folder.declaration(occurrence.key)
    if decl is None:
        return None
    return t.PrepareRenamePlaceholder(lsp_range(occurrence.range), decl.name)


class RenameError(Exception):
    """A rename that would break the policy: a bad name or one already taken."""


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(-[A-Za-z0-9_]+)*$")
_KEYWORDS = frozenset(
    [
        "policy",
        "vocabulary",
        "title",
        "version",
        "effective",
        "ends",
        "status",
        "source",
        "description",
        "use",
        "enum",
        "fact",
        "group",
        "table",
        "define",
        "decision",
        "obligation",
        "recommendation",
        "rule",
        "cite",
        "overrides",
        "if",
        "unless",
        "then",
        "decide",
        "require",
        "recommend",
        "and",
        "or",
        "not",
        "in",
        "includes",
        "any",
        "all",
        "is",
        "missing",
        "present",
        "set",
        "of",
        "optional",
        "from",
        "default",
        "true",
        "false",
    ]
)


def rename(ws: Workspace, path: Path, line: int, col: int, new_name: str) -> t.WorkspaceEdit | None:
    """Rename a symbol everywhere it is visible: its declaration and every use, in every file."""
    folder = ws.index(path)
    occurrence = folder.at(path, line, col)
    if occurrence is None:
        return None
    key = occurrence.key
    _check_new_name(folder, key, new_name)
    changes: dict[str, list[t.TextEdit]] = {}
    for o in folder.references(key):
        changes.setdefault(o.file.as_uri(), []).append(t.TextEdit(lsp_range(o.range), new_name))
    return t.WorkspaceEdit(changes=changes)


def _check_new_name(folder: FolderIndex, key: SymbolKey, new_name: str) -> None:
    words = new_name.split(" ") if key.kind in ("obligation", "recommendation") else [new_name]
    parts = [p for w in words for p in (w.split(".") if key.kind == "fact" else [w])]
    if not parts or any(not _NAME.match(p) or p in _KEYWORDS for p in parts):
        raise RenameError(
            f"`{new_name}` is not a name: letters, digits, `_` and inner hyphens, not a keyword"
            + (" (dots separate a record's fields)" if key.kind == "fact" else "")
        )
    for user in folder.users(key.file):
        for name, decl in folder.visible(user).items():
            if decl.key == key:
                continue
            if (decl.key.kind == key.kind and decl.name == new_name) or (
                key.kind in ("fact", "derived", "group", "table", "enum") and name == new_name
            ):
                raise RenameError(
                    f"`{new_name}` is already declared ({_KIND_WORDS.get(decl.key.kind, decl.key.kind)} at "
                    f"{decl.key.file.name}:{decl.range.line + 1})"
                )
    if key.kind == "value":
        enum = key.name.split(".", 1)[0]
        if any(d.key.name == f"{enum}.{new_name}" for d in folder.all_declarations()):
            raise RenameError(f"`{new_name}` is already a value of `{enum}`")


_SYMBOL_KINDS = {
    "enum": t.SymbolKind.Enum,
    "value": t.SymbolKind.EnumMember,
    "fact": t.SymbolKind.Field,
    "derived": t.SymbolKind.Function,
    "group": t.SymbolKind.Array,
    "table": t.SymbolKind.Struct,
    "decision": t.SymbolKind.Event,
    "obligation": t.SymbolKind.Event,
    "recommendation": t.SymbolKind.Event,
    "rule": t.SymbolKind.Method,
}


def document_symbols(ws: Workspace, path: Path) -> list[t.DocumentSymbol]:
    folder = ws.index(path)
    index = folder.files.get(path)
    if index is None:
        return []
    symbols: list[t.DocumentSymbol] = []
    enums: dict[str, t.DocumentSymbol] = {}
    if index.tree is not None:
        header = index.tree.header
        whole = range_of(header.span)
        symbols.append(
            t.DocumentSymbol(
                name=f'{header.kind} "{header.id}"',
                kind=t.SymbolKind.Module,
                range=lsp_range(whole),
                selection_range=lsp_range(
                    Range(whole.line, whole.col, whole.line, whole.col + len(header.kind))
                ),
                detail=_field(header, "version"),
            )
        )
    for decl in index.declarations:
        symbol = t.DocumentSymbol(
            name=decl.name,
            kind=_SYMBOL_KINDS[decl.key.kind],
            range=lsp_range(decl.full),
            selection_range=lsp_range(decl.range),
            detail=_KIND_WORDS[decl.key.kind],
            children=[] if decl.key.kind == "enum" else None,
        )
        if decl.key.kind == "value" and decl.enum in enums:
            children = enums[decl.enum].children
            assert isinstance(children, list)
            children.append(symbol)
            continue
        if decl.key.kind == "enum":
            enums[decl.name] = symbol
        symbols.append(symbol)
    return symbols


def _field(header: s.Header, name: str) -> str | None:
    found = header.get(name)
    return None if found is None else str(found.value)


def workspace_symbols(ws: Workspace, roots: list[Path], query: str) -> list[t.WorkspaceSymbol]:
    found: list[t.WorkspaceSymbol] = []
    needle = query.lower()
    for root in roots:
        folder = ws.index(root / "_" / "_")
        for decl in folder.all_declarations():
            if decl.key.kind == "value" or needle not in decl.name.lower():
                continue
            found.append(
                t.WorkspaceSymbol(
                    name=decl.name,
                    kind=_SYMBOL_KINDS[decl.key.kind],
                    location=location(decl.key.file, decl.range),
                    container_name=f"{decl.key.file.parent.name}/{decl.key.file.name}",
                )
            )
    return found[:500]


def folding_ranges(ws: Workspace, path: Path) -> list[t.FoldingRange]:
    """Every multi-line declaration, the header, and runs of comment lines."""
    folder = ws.index(path)
    index = folder.files.get(path)
    if index is None:
        return []
    out = []
    if index.tree is not None:
        spans = [index.tree.header.span, *(i.span for i in index.tree.items)]
        for span in spans:
            r = range_of(span)
            if r.end_line > r.line:
                out.append(t.FoldingRange(r.line, r.end_line, kind=t.FoldingRangeKind.Region))
    start = None
    for number, text in enumerate([*index.lines, ""]):
        if text.lstrip().startswith("#"):
            start = number if start is None else start
            continue
        if start is not None and number - 1 > start:
            out.append(t.FoldingRange(start, number - 1, kind=t.FoldingRangeKind.Comment))
        start = None
    return out


# ---------------------------------------------------------------------------
# Completion

_DECLARATION_KEYWORDS = (
    "use",
    "enum",
    "fact",
    "group",
    "table",
    "define",
    "decision",
    "obligation",
    "recommendation",
    "rule",
)
_RULE_CLAUSES = ("cite", "overrides", "if", "unless", "then")
_AFTER_OPERAND = (
    "and",
    "or",
    "in",
    "includes",
    "includes any",
    "includes all",
    "is missing",
    "is present",
    "unless",
    "then",
)
_SCALARS = ("boolean", "number", "string", "date")
_STATUSES = ("draft", "proposed", "in-force")
_WORD = r"[A-Za-z0-9_.-]"


def completion(ws: Workspace, path: Path, line: int, col: int) -> t.CompletionList:
    folder = ws.index(path)
    text = ws.read(path) or ""
    lines = text.splitlines()
    current = lines[line] if line < len(lines) else ""
    prefix = current[:col]
    items = _complete(ws, folder, path, lines, line, prefix)
    return t.CompletionList(is_incomplete=False, items=items)


def _item(
    label: str, kind: t.CompletionItemKind, detail: str | None = None, doc: str | None = None, **extra: Any
) -> t.CompletionItem:
    return t.CompletionItem(
        label=label,
        kind=kind,
        detail=detail,
        documentation=t.MarkupContent(t.MarkupKind.Markdown, doc) if doc else None,
        **extra,
    )


def _complete(
    ws: Workspace, folder: FolderIndex, path: Path, lines: list[str], line: int, prefix: str
) -> list[t.CompletionItem]:
    decl_kind = _enclosing_declaration(lines, line)
    visible = folder.visible(path) if path in folder.files else {}
    # values after `status`, `decide D =`, `default`, `X =`, `X in <`, `X includes`
    if m := re.search(r"^\s*status\s+" + _WORD + "*$", prefix):
        return [_item(v, t.CompletionItemKind.EnumMember, "status") for v in _STATUSES]
    if m := re.search(r"\bdecide\s+(" + _WORD + r"+)\s*=\s*" + _WORD + "*$", prefix):
        decision = visible.get(f"decision:{m.group(1)}")
        if decision is not None and isinstance(decision.item, s.DecisionDecl):
            return _values(folder, path, decision.item.type_name.name)
        return []
    if re.search(r"\bdecide\s+" + _WORD + "*$", prefix):
        return _named_items(ws, visible, ("decision",))
    if re.search(r"\brequire\s+[A-Za-z0-9_ -]*$", prefix) and not re.search(r"\band\s*$", prefix):
        return _named_items(ws, visible, ("obligation",))
    if re.search(r"\brecommend\s+[A-Za-z0-9_ -]*$", prefix) and not re.search(r"\band\s*$", prefix):
        return _named_items(ws, visible, ("recommendation",))
    if m := re.search(
        r"^\s*fact\s+"
        + _WORD
        + r"+\s*:\s*(?:optional\s+)?(set\s+of\s+)?("
        + _WORD
        + r"+)\s+default\s+<?[^\"]*$",
        prefix,
    ):
        return _default_values(folder, path, m.group(2), is_set=bool(m.group(1)))
    if m := re.search(
        r"\bdecision\s+" + _WORD + r"+\s*:\s*(" + _WORD + r"+)\s+default\s+" + _WORD + "*$", prefix
    ):
        return _values(folder, path, m.group(1))
    if re.search(r"\boverrides\s+(" + _WORD + r"+\s*,\s*)*" + _WORD + "*$", prefix):
        return _rule_ids(folder, path, lines, line)
    if re.search(
        r"^\s*(fact\s+"
        + _WORD
        + r"+\s*:|define\s+"
        + _WORD
        + r"+\s*:|table\s+"
        + _WORD
        + r"+\s*:|table\s+.*->)\s*(optional\s+)?(set\s+of\s+)?"
        + _WORD
        + "*$",
        prefix,
    ):
        return _types(ws, visible)
    if re.search(r'\buse\s+"[^"]*$', prefix):
        return _vocabularies(folder, path)
    if m := re.search(r"(" + _WORD + r"+(?:\[[^\]]*\])?)\s*(?:=|!=)\s*" + _WORD + "*$", prefix):
        return _values_for(folder, path, m.group(1), include_facts=True) or _condition_names(ws, visible)
    if m := re.search(r"(" + _WORD + r"+)\s+(?:in|includes(?:\s+any|\s+all)?)\s+<[^>]*$", prefix):
        return _values_for(folder, path, m.group(1), include_facts=False)
    if m := re.search(r"(" + _WORD + r"+)\s+includes\s+" + _WORD + "*$", prefix):
        return _values_for(folder, path, m.group(1), include_facts=False) + _named_items(
            ws, visible, ("group",)
        )
    if re.search(r"\bin\s+" + _WORD + "*$", prefix):
        return _named_items(
            ws, visible, ("group", "table", "fact", "derived"), sets_only=True, folder=folder, path=path
        )
    if re.search(r"\bis\s+" + _WORD + "*$", prefix):
        return [_item(w, t.CompletionItemKind.Keyword) for w in ("missing", "present")]
    start_of_line = re.fullmatch(r"\s*" + _WORD + "*", prefix) is not None
    in_condition = (decl_kind in ("rule", "define") and not start_of_line) or re.search(
        r"\b(if|unless|and|or|not)\s+" + _WORD + r"*$|\(\s*" + _WORD + "*$", prefix
    )
    if in_condition and re.search(
        r"\b(if|unless|and|or|not)\s+" + _WORD + r"*$|\(\s*" + _WORD + r"*$|=\s*$", prefix
    ):
        return _condition_names(ws, visible) + [_item(w, t.CompletionItemKind.Keyword) for w in ("not",)]
    if in_condition and re.search(r"(" + _WORD + r"|>|\]|\))\s+" + _WORD + "*$", prefix):
        return [_item(w, t.CompletionItemKind.Keyword, "keyword") for w in _AFTER_OPERAND]
    if start_of_line:
        return _line_starts(ws, folder, path, lines, line, decl_kind)
    return []


def _default_values(folder: FolderIndex, path: Path, type_name: str, is_set: bool) -> list[t.CompletionItem]:
    """What may follow `default` in a fact declaration: a value of its type (`<>` for a set)."""
    items = [_item("<>", t.CompletionItemKind.Value, "the empty set")] if is_set else []
    if type_name == "boolean":
        return [_item(v, t.CompletionItemKind.Value, "boolean") for v in ("true", "false")]
    return items + _values(folder, path, type_name)


def _enclosing_declaration(lines: list[str], line: int) -> str | None:
    """The keyword of the declaration the cursor is in (the last one starting at or above it)."""
    pattern = re.compile(r"^\s*(policy|vocabulary|" + "|".join(_DECLARATION_KEYWORDS) + r")\b")
    for number in range(min(line, len(lines) - 1), -1, -1):
        m = pattern.match(lines[number])
        if m:
            return m.group(1)
    return None


def _values(folder: FolderIndex, path: Path, enum: str) -> list[t.CompletionItem]:
    return [
        _item(d.name, t.CompletionItemKind.EnumMember, f"value of {enum}")
        for d in folder.enum_values(path, enum)
    ]


def _values_for(folder: FolderIndex, path: Path, left: str, include_facts: bool) -> list[t.CompletionItem]:
    """Values of the enumeration the left side has (`end_user.type = ` offers EndUserType's)."""
    if "[" in left:
        table = left.split("[", 1)[0]
        decl = folder.visible(path).get(table)
        typed = (
            (decl.item.value_type.name, decl.item.value_type.is_set)
            if decl and isinstance(decl.item, s.TableDecl)
            else None
        )
    else:
        typed = folder.type_name(path, left)
    if typed is None or not _is_enum(folder, path, typed[0]):
        return []
    return _values(folder, path, typed[0])


_COMPLETION_KINDS = {
    "fact": t.CompletionItemKind.Field,
    "derived": t.CompletionItemKind.Function,
    "group": t.CompletionItemKind.Constant,
    "table": t.CompletionItemKind.Struct,
    "enum": t.CompletionItemKind.Enum,
    "decision": t.CompletionItemKind.Event,
    "obligation": t.CompletionItemKind.Event,
    "recommendation": t.CompletionItemKind.Event,
    "rule": t.CompletionItemKind.Method,
}


def _description(decl: Declaration) -> str | None:
    item = decl.item
    return getattr(item, "description", None)


def _named_items(
    ws: Workspace,
    visible: dict[str, Declaration],
    kinds: tuple[str, ...],
    *,
    sets_only: bool = False,
    folder: FolderIndex | None = None,
    path: Path | None = None,
) -> list[t.CompletionItem]:
    out = []
    for decl in visible.values():
        if decl.key.kind not in kinds:
            continue
        if sets_only and decl.key.kind in ("fact", "derived") and folder is not None and path is not None:
            typed = folder.type_name(path, decl.name)
            if typed is None or not typed[1]:
                continue
        out.append(_item(decl.name, _COMPLETION_KINDS[decl.key.kind], _detail(decl), _description(decl)))
    return out


def _detail(decl: Declaration) -> str:
    item = decl.item
    if isinstance(item, s.FactDecl):
        return f"fact: {_type_text(item.type)}"
    if isinstance(item, s.DefineDecl):
        return "derived fact" + (f": {_type_text(item.type)}" if item.type else "")
    return _KIND_WORDS[decl.key.kind]


def _condition_names(ws: Workspace, visible: dict[str, Declaration]) -> list[t.CompletionItem]:
    items = _named_items(ws, visible, ("fact", "derived", "group"))
    for decl in visible.values():
        if decl.key.kind == "table":
            items.append(
                _item(
                    f"{decl.name}[…]",
                    t.CompletionItemKind.Struct,
                    "table lookup",
                    _description(decl),
                    insert_text=f"{decl.name}[$1]",
                    insert_text_format=t.InsertTextFormat.Snippet,
                    filter_text=decl.name,
                )
            )
    return items


def _rule_ids(folder: FolderIndex, path: Path, lines: list[str], line: int) -> list[t.CompletionItem]:
    index = folder.files.get(path)
    if index is None:
        return []
    own = None
    for number in range(line, -1, -1):
        m = re.match(r"^\s*rule\s+(" + _WORD + "+)", lines[number]) if number < len(lines) else None
        if m:
            own = m.group(1)
            break
    return [
        _item(d.name, t.CompletionItemKind.Method, "rule", _description(d))
        for d in index.declarations
        if d.key.kind == "rule" and d.name != own
    ]


def _types(ws: Workspace, visible: dict[str, Declaration]) -> list[t.CompletionItem]:
    items = [_item(n, t.CompletionItemKind.TypeParameter, "built-in type") for n in _SCALARS]
    items += [_item(w, t.CompletionItemKind.Keyword) for w in ("optional", "set of")]
    return items + _named_items(ws, visible, ("enum",))


def _vocabularies(folder: FolderIndex, path: Path) -> list[t.CompletionItem]:
    out = []
    for other in folder.files:
        if other.suffix == ".vocab":
            rel = Path(_relpath(other, path.parent))
            out.append(_item(str(rel), t.CompletionItemKind.File, "vocabulary"))
    return out


def _relpath(target: Path, start: Path) -> str:
    import os

    return os.path.relpath(target, start)


def _line_starts(
    ws: Workspace, folder: FolderIndex, path: Path, lines: list[str], line: int, decl_kind: str | None
) -> list[t.CompletionItem]:
    items: list[t.CompletionItem] = []
    if decl_kind is None:
        items += _header_snippets(folder, path)
        return items
    if decl_kind == "rule":
        items += [_item(w, t.CompletionItemKind.Keyword, "rule clause") for w in _RULE_CLAUSES]
    if decl_kind in ("policy", "vocabulary"):
        items += [
            _item(w, t.CompletionItemKind.Keyword, "header field")
            for w in ("title", "version", "effective", "ends", "status", "source", "description")
        ]
    items += [_item(w, t.CompletionItemKind.Keyword, "declaration") for w in _DECLARATION_KEYWORDS]
    items.append(
        _item(
            "rule …",
            t.CompletionItemKind.Snippet,
            "a rule with its description, citation, condition and outcome",
            insert_text='rule ${1:rule-id} "${2:what the rule does, in plain words}"\n'
            '  cite "${3:paragraph it implements}"\n'
            "  if ${4:condition}\n"
            "  then decide ${5:decision} = ${6:value}",
            insert_text_format=t.InsertTextFormat.Snippet,
            filter_text="rule",
            sort_text="~rule",
        )
    )
    return items


def _header_snippets(folder: FolderIndex, path: Path) -> list[t.CompletionItem]:
    """A version header, prefilled from the folder: its policy id and the latest version's title."""
    siblings = [
        i for p, i in folder.files.items() if p.parent == path.parent and p != path and i.tree is not None
    ]
    latest = max(
        siblings,
        key=lambda i: (_field(i.tree.header, "effective") or "") if i.tree else "",
        default=None,
    )
    policy_id = latest.tree.header.id if latest and latest.tree else path.parent.name
    title_field = latest.tree.header.get("title") if latest and latest.tree else None
    title = str(title_field.value) if title_field else "one line for people"
    source_field = latest.tree.header.get("source") if latest and latest.tree else None
    source = str(source_field.value) if source_field else "the text this version implements"
    version = path.stem if re.fullmatch(r"\d{4}-\d{2}-\d{2}", path.stem) else "YYYY-MM-DD"
    snippet = (
        f'policy "${{1:{policy_id}}}"\n'
        f'  title "${{2:{_snippet_escape(title)}}}"\n'
        f'  version "${{3:{version}}}"\n'
        f"  effective ${{4:{version}}}\n"
        "  status ${5|draft,proposed,in-force|}\n"
        f'  source "${{6:{_snippet_escape(source)}}}"\n'
    )
    uses = [u.path for u in (latest.tree.items if latest and latest.tree else ()) if isinstance(u, s.Use)]
    if uses:
        snippet += "\n" + "".join(f'use "{u}"\n' for u in uses)
    return [
        _item(
            "policy header …",
            t.CompletionItemKind.Snippet,
            "a version header (id, title, version, effective date, status, source)",
            insert_text=snippet,
            insert_text_format=t.InsertTextFormat.Snippet,
            filter_text="policy",
        ),
        _item(
            "vocabulary header …",
            t.CompletionItemKind.Snippet,
            "a vocabulary header",
            insert_text='vocabulary "${1:id}"\n  title "${2:title}"\n',
            insert_text_format=t.InsertTextFormat.Snippet,
            filter_text="vocabulary",
        ),
    ]


def _snippet_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("$", "\\$").replace("}", "\\}").replace('"', '\\"')


# ---------------------------------------------------------------------------
# Formatting


class FormatRefused(Exception):
    """Formatting refused, as `policy fmt` refuses: the file does not parse, or meaning would change."""


def format_document(ws: Workspace, path: Path, selection: Range | None = None) -> list[t.TextEdit]:
    """The formatter's layout as edits; with a selection, only the changed lines inside it.

    A partial layout is parsed again and must give the same syntax tree as the original
    (the check `policy fmt` makes on whole files), so a range format never changes meaning.
    """
    text = ws.read(path) or ""
    name = str(ws.engine_path(path))
    try:
        formatted = format_text(text, name)
    except FormatError as exc:
        first = exc.diagnostics[0] if exc.diagnostics else None
        where = f" (line {first.line}: {first.message})" if first else ""
        raise FormatRefused(f"not formatted: the file does not parse{where}") from None
    except UnsafeFormat as exc:
        raise FormatRefused(str(exc)) from None
    if formatted == text:
        return []
    old, new = text.splitlines(keepends=True), formatted.splitlines(keepends=True)
    edits = []
    result_lines: list[str] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        keep = selection is not None and not (
            a1 <= selection.end_line and a2 - 1 >= selection.line
            if a2 > a1
            else selection.line <= a1 <= selection.end_line + 1
        )
        if op == "equal" or keep:
            result_lines += old[a1:a2]
            continue
        result_lines += new[b1:b2]
        edits.append(t.TextEdit(t.Range(t.Position(a1, 0), t.Position(a2, 0)), "".join(new[b1:b2])))
    if selection is not None and edits:
        original = parse(text, name).tree
        assert original is not None
        try:
            verify(original, "".join(result_lines), name)
        except UnsafeFormat:
            raise FormatRefused(
                "not formatted: laying out only the selected lines would change the meaning; format the whole file"
            ) from None
    return edits


# ---------------------------------------------------------------------------
# Quick fixes

_DID_YOU_MEAN = re.compile(r"did you mean `([^`]+)`\?")
_CONFLICT = re.compile(r"rules `([^`]+)` and `([^`]+)` can both take effect")


def code_actions(ws: Workspace, path: Path, diagnostics: list[t.Diagnostic]) -> list[t.CodeAction]:
    actions: list[t.CodeAction] = []
    for diagnostic in diagnostics:
        data = diagnostic.data if isinstance(diagnostic.data, dict) else {}
        help_text = data.get("help") or diagnostic.message
        if m := _DID_YOU_MEAN.search(help_text or ""):
            actions.append(
                _fix(
                    f"Replace with `{m.group(1)}`",
                    path,
                    [t.TextEdit(diagnostic.range, m.group(1))],
                    diagnostic,
                    True,
                )
            )
        if diagnostic.code == "conflict" and (m := _CONFLICT.search(diagnostic.message)):
            first, second = m.group(1), m.group(2)
            for exception, general in ((second, first), (first, second)):
                edit = _add_overrides(ws, path, exception, general)
                if edit is not None:
                    actions.append(
                        _fix(
                            f"Make `{exception}` an exception to `{general}` (add `overrides {general}`)",
                            path,
                            [edit],
                            diagnostic,
                            exception == second,
                        )
                    )
        if diagnostic.code == "missing-citation":
            edit = _add_citation(ws, path, diagnostic.range.start.line)
            if edit is not None:
                actions.append(_fix('Add a citation stub (`cite "..."`)', path, [edit], diagnostic, True))
    return actions


def _fix(
    title: str, path: Path, edits: list[t.TextEdit], diagnostic: t.Diagnostic, preferred: bool
) -> t.CodeAction:
    return t.CodeAction(
        title=title,
        kind=t.CodeActionKind.QuickFix,
        diagnostics=[diagnostic],
        is_preferred=preferred,
        edit=t.WorkspaceEdit(changes={path.as_uri(): edits}),
    )


def _rule_decl(ws: Workspace, path: Path, rule_id: str) -> tuple[s.RuleDecl, list[str]] | None:
    folder = ws.index(path)
    index = folder.files.get(path)
    if index is None or index.tree is None:
        return None
    rule = next((r for r in index.tree.rules if r.id.name == rule_id), None)
    return None if rule is None else (rule, index.lines)


def _clause_line(lines: list[str], rule: s.RuleDecl, keywords: tuple[str, ...]) -> int:
    """The last line of the rule's head (id, description) and the given clauses: insert after it."""
    first = range_of(rule.span).line
    last = first
    for number in range(first + 1, range_of(rule.span).end_line + 1):
        if re.match(r"^\s*(" + "|".join(keywords) + r")\b", lines[number]):
            last = number
        elif re.match(r"^\s*(if|unless|then)\b", lines[number]):
            break
    return last


def _add_overrides(ws: Workspace, path: Path, rule_id: str, target: str) -> t.TextEdit | None:
    found = _rule_decl(ws, path, rule_id)
    if found is None:
        return None
    rule, lines = found
    if rule.overrides:
        last = rule.overrides[-1]
        end = range_of(last.span)
        return t.TextEdit(
            lsp_range(Range(end.end_line, end.end_col, end.end_line, end.end_col)), f", {target}"
        )
    after = _clause_line(lines, rule, ("cite",))
    return t.TextEdit(lsp_range(Range(after + 1, 0, after + 1, 0)), f"  overrides {target}\n")


def _add_citation(ws: Workspace, path: Path, line: int) -> t.TextEdit | None:
    folder = ws.index(path)
    index = folder.files.get(path)
    if index is None or index.tree is None:
        return None
    rule = next(
        (r for r in index.tree.rules if range_of(r.span).line <= line <= range_of(r.span).end_line), None
    )
    if rule is None:
        return None
    head = range_of(rule.span).line
    return t.TextEdit(
        lsp_range(Range(head + 1, 0, head + 1, 0)), '  cite "TODO: the paragraph this rule implements"\n'
    )
