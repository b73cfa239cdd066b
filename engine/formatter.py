"""`policy fmt`: one canonical layout for `.policy` and `.vocab` files, comments kept, meaning proven unchanged.

The formatter prints the syntax tree back (expressions through `syntax.unparse`) and puts
every comment back where it belongs: comments above a declaration stay above it, a comment
at the end of a line stays at the end of that line, and comments inside a multi-line
declaration stay before the clause (or the condition operand) that followed them. Each
printed line remembers the source line of the first token it prints (its *anchor*), which
is how a comment finds its place. The layout is described in docs/formatting.md.

Safety: the result is parsed again and must give the same syntax tree (`==` on
`SourceFile` compares declarations and comment texts, not positions). If it does not,
`format_text` raises `UnsafeFormat` and nothing is written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from lark import Token

from engine import syntax as s
from engine.errors import Diagnostic, Span
from engine.grammar import parser as lark_parser
from engine.parser import parse

#: Lines longer than this are broken where the layout allows (strings are never split).
WIDTH = 100
INDENT = "  "
#: Continuation lines of a broken rule clause (`and ...`, `or ...`) sit under the condition.
CONTINUATION = "    "


class FormatError(Exception):
    """A file that cannot be formatted: it does not parse (diagnostics say where)."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("; ".join(f"{d.location}: {d.message}" for d in self.diagnostics))


class UnsafeFormat(Exception):
    """The formatted text would not parse back to the same tree: a formatter bug, never written."""

    def __init__(self, diagnostic: Diagnostic):
        self.diagnostic = diagnostic
        super().__init__(f"{diagnostic.location}: {diagnostic.message}")


def format_text(text: str, path: str = "<string>") -> str:
    """The canonical layout of a file's text; raises `FormatError` or `UnsafeFormat`."""
    text = text.removeprefix("\ufeff")  # a leading BOM is ignored (engine/parser.py) and not written back
    result = parse(text, path)
    if result.diagnostics or result.tree is None:
        raise FormatError(result.diagnostics)
    formatted = _Printer(result.tree, text).file()
    verify(result.tree, formatted, path)
    return formatted


def verify(original: s.SourceFile, formatted: str, path: str) -> None:
    """Raise `UnsafeFormat` unless `formatted` parses to the same tree as `original`.

    Comments are compared without trailing whitespace, the one change to a comment the
    formatter makes.
    """
    expected = dataclasses.replace(
        original, comments=tuple(s.Comment(c.text.rstrip()) for c in original.comments)
    )
    again = parse(formatted, path)
    if again.tree is None or again.diagnostics:
        first = again.diagnostics[0] if again.diagnostics else None
        where = f" ({first.message} at line {first.line})" if first else ""
        raise UnsafeFormat(_unsafe(path, f"the formatted text does not parse{where}"))
    if again.tree == expected:
        return
    raise UnsafeFormat(_unsafe(path, _first_difference(expected, again.tree)))


def _unsafe(path: str, what: str) -> Diagnostic:
    return Diagnostic.at(
        "format-unsafe",
        f"formatting would change the file's meaning: {what}; the file was left unchanged",
        Span(path, 1, 1, 1, 1),
        "this is a formatter bug: please report it with the file",
    )


def _first_difference(expected: s.SourceFile, got: s.SourceFile) -> str:
    """Name the first declaration (or comment) that would change, for the refusal message."""
    if expected.header != got.header:
        return "the header would change"
    for before, after in zip(expected.items, got.items, strict=False):
        if before != after:
            return f"the declaration at line {before.span.line} would change"
    if len(expected.items) != len(got.items):
        return f"the number of declarations would change ({len(expected.items)} to {len(got.items)})"
    texts = [c.text for c in expected.comments]
    for index, comment in enumerate(got.comments):
        if index >= len(texts) or texts[index] != comment.text:
            return f"comment {index + 1} would move or change (`{comment.text[:40]}`)"
    return f"the comments would change ({len(texts)} to {len(got.comments)})"


# ---------------------------------------------------------------------------
# Printed lines and where comments go


@dataclass
class _Line:
    """One printed line and the source line of the first token it prints (where comments aim)."""

    text: str
    anchor: int


@dataclass
class _Block:
    """The header or one declaration: its span, its printed lines and the comments that belong to it."""

    node: s.Header | s.Item
    start: tuple[int, int]
    end: tuple[int, int]
    leading: list[s.Comment] = field(default_factory=list)
    inner: list[tuple[s.Comment, bool]] = field(default_factory=list)  # (comment, is trailing)

    @property
    def kind(self) -> str:
        return type(self.node).__name__


def _is_trailing(comment: s.Comment, lines: list[str]) -> bool:
    """A comment after code on its line (as opposed to a comment on a line of its own)."""
    line = lines[comment.span.line - 1] if 0 < comment.span.line <= len(lines) else ""
    return bool(line[: comment.span.col - 1].strip())


def _place(lines: list[_Line], comments: list[tuple[s.Comment, bool]]) -> list[str]:
    """Weave a block's own comments into its printed lines, keeping the comments in source order.

    A comment on its own line goes before the first printed line whose anchor is below it
    (or before the last line, so it never drifts out of its declaration); a trailing
    comment goes at the end of the last printed line anchored at or above it. Slots are
    (line, 0 before | 1 trailing | 2 after) and only move forward, so the order of the
    comments can never change; a second trailing comment for one line goes after it.
    """
    anchors = _monotonic([line.anchor for line in lines])
    slots: dict[tuple[int, int], list[s.Comment]] = {}
    cursor = (-1, 0)
    for comment, trailing in comments:
        row = comment.span.line
        if trailing:
            k = max((i for i, a in enumerate(anchors) if a <= row), default=0)
            slot = (k, 1)
            if slot <= cursor or (k, 1) in slots:
                slot = max((k, 2), cursor)
        else:
            k = next((i for i, a in enumerate(anchors) if a > row), len(lines) - 1)
            slot = max((k, 0), cursor)
        if slot[1] == 1 and (slot <= cursor or slot in slots):
            slot = (slot[0], 2)
        slots.setdefault(slot, []).append(comment)
        cursor = slot
    _keep_inside(slots, len(lines) - 1)
    indents = [line.text[: len(line.text) - len(line.text.lstrip())] for line in lines]
    out: list[str] = []
    for k, line in enumerate(lines):
        out += [indents[k] + c.text.rstrip() for c in slots.get((k, 0), [])]
        trailing_here = slots.get((k, 1), [])
        out.append(line.text + "".join("  " + c.text.rstrip() for c in trailing_here))
        below = indents[min(k + 1, len(lines) - 1)]  # read again, they belong to the next line
        out += [below + c.text.rstrip() for c in slots.get((k, 2), [])]
    return out


def _keep_inside(slots: dict[tuple[int, int], list[s.Comment]], last: int) -> None:
    """No comment may follow a declaration's last line on a line of its own: read again, it
    would belong to the next declaration. The last of them stays at the end of that line; the
    others move just above it, in order."""
    tail = slots.pop((last, 1), []) + slots.pop((last, 2), [])
    if tail:
        slots[(last, 0)] = slots.get((last, 0), []) + tail[:-1]
        slots[(last, 1)] = tail[-1:]


def _monotonic(anchors: list[int]) -> list[int]:
    """Anchors as a running maximum: clauses the layout reorders never pull comments backwards."""
    out, top = [], 0
    for anchor in anchors:
        top = max(top, anchor)
        out.append(top)
    return out


# ---------------------------------------------------------------------------
# The printer


class _Printer:
    """Lays out one parsed file; see docs/formatting.md for the rules it follows."""

    def __init__(self, tree: s.SourceFile, text: str):
        self.tree = tree
        self.source_lines = text.splitlines()
        self.tokens = [t for t in lark_parser().lex(text) if t.type != "COMMENT"]
        self.blocks = [
            _Block(tree.header, _start(tree.header.span), _end(tree.header.span)),
            *(_Block(item, _start(item.span), _end(item.span)) for item in tree.items),
        ]
        self.trailer: list[s.Comment] = []
        self._assign_comments()

    # -- comments -----------------------------------------------------------
    def _assign_comments(self) -> None:
        """Each comment belongs to one block (above it or inside it), or to the end of the file."""
        for comment in self.tree.comments:
            row, col = comment.span.line, comment.span.col
            if _is_trailing(comment, self.source_lines):
                owner = max(
                    (b for b in self.blocks if b.start < (row, col)), key=lambda b: b.start, default=None
                )
                (owner or self.blocks[0]).inner.append((comment, True))
                continue
            inside = next((b for b in self.blocks if b.start[0] < row < b.end[0]), None)
            if inside is not None:
                inside.inner.append((comment, False))
                continue
            following = next((b for b in self.blocks if b.start[0] > row), None)
            if following is not None:
                following.leading.append(comment)
            else:
                self.trailer.append(comment)

    def _comment_rows(self, block: _Block) -> list[int]:
        return [c.span.line for c, _ in block.inner]

    def _forced(self, block: _Block, expr: s.Expr) -> bool:
        """A comment before the last operand of a multi-line `and`/`or` puts one operand a line.

        Comments on the last operand's line (or inside it) can stay where they are on the
        joined line, so they do not force a break: that keeps the choice stable when the
        formatted text is formatted again.
        """
        if not isinstance(expr, s.And | s.Or):
            return False
        last = expr.operands[-1].span.line
        return any(expr.span.line <= row < last for row in self._comment_rows(block))

    # -- file ----------------------------------------------------------------
    def file(self) -> str:
        out: list[str] = []
        previous: _Block | None = None
        previous_lines: list[str] = []
        for block in self.blocks:
            body = _place(self.layout(block), block.inner)
            lead = self._leading(block)
            if previous is not None and not self._adjacent(previous, previous_lines, block, body, lead):
                out.append("")
            out += lead + body
            previous, previous_lines = block, body
        if self.trailer:
            last_row = self.blocks[-1].end[0]
            if self.trailer[0].span.line - last_row > 1:
                out.append("")
            out += self._comment_run(self.trailer)
        return "\n".join(out) + "\n"

    def _leading(self, block: _Block) -> list[str]:
        """The comments above a block, with the author's blank lines between them (at most one)."""
        if not block.leading:
            return []
        out = self._comment_run(block.leading)
        if block.start[0] - block.leading[-1].span.line > 1:
            out.append("")
        return out

    def _comment_run(self, comments: list[s.Comment]) -> list[str]:
        out: list[str] = []
        for index, comment in enumerate(comments):
            if index and comment.span.line - comments[index - 1].span.line > 1:
                out.append("")
            out.append(comment.text.rstrip())
        return out

    def _adjacent(
        self, previous: _Block, previous_lines: list[str], block: _Block, body: list[str], lead: list[str]
    ) -> bool:
        """One-line declarations of one kind the author wrote on adjacent lines stay adjacent."""
        if isinstance(previous.node, s.Header) or previous.kind != block.kind:
            return False
        if len(previous_lines) != 1 or len(body) != 1:
            return False
        first_row = block.leading[0].span.line if block.leading else block.start[0]
        return first_row - previous.end[0] <= 1

    # -- declarations ------------------------------------------------------------
    def layout(self, block: _Block) -> list[_Line]:
        node = block.node
        handler = getattr(self, "_" + type(node).__name__)
        lines: list[_Line] = handler(node, block)
        return lines

    def _tokens(self, block: _Block) -> list[Token]:
        return [t for t in self.tokens if block.start <= (t.line, t.column) < block.end]

    def _Header(self, header: s.Header, block: _Block) -> list[_Line]:
        lines = [_Line(f"{header.kind} {_quote(header.id)}", header.span.line)]
        for item in header.fields:
            lines.append(_Line(f"{INDENT}{item.name} {_field_value(item)}", item.span.line))
        return lines

    def _Use(self, use: s.Use, block: _Block) -> list[_Line]:
        return [_Line(f"use {_quote(use.path)}", use.span.line)]

    def _EnumDecl(self, enum: s.EnumDecl, block: _Block) -> list[_Line]:
        head = f"enum {enum.name.name} {_quote(enum.description)} ="
        values = [(v.name, v.span.line) for v in enum.values]
        return self._set_lines(head, values, block, enum.span.line)

    def _GroupDecl(self, group: s.GroupDecl, block: _Block) -> list[_Line]:
        described = f" {_quote(group.description)}" if group.description is not None else ""
        head = f"group {group.name.name}{described} ="
        values = [(s.unparse(v), v.span.line) for v in group.values.items]
        return self._set_lines(head, values, block, group.span.line)

    def _FactDecl(self, fact: s.FactDecl, block: _Block) -> list[_Line]:
        default = f" default {s.unparse(fact.default)}" if fact.default is not None else ""
        text = f"fact {fact.dotted}: {_type(fact.type)}{default} {_quote(fact.description)}"
        return [_Line(text, fact.span.line)]

    def _TableDecl(self, table: s.TableDecl, block: _Block) -> list[_Line]:
        text = (
            f"table {table.name.name}: {_type(table.key_type)} -> {_type(table.value_type)} "
            f"{_quote(table.description)} from {_quote(table.source)}"
        )
        return [_Line(text, table.span.line)]

    def _DefineDecl(self, define: s.DefineDecl, block: _Block) -> list[_Line]:
        typed = f": {_type(define.type)}" if define.type is not None else ""
        head = f"define {define.name.name}{typed} {_quote(define.description)} ="
        broken = self._forced(block, define.expr)
        between = any(define.span.line < row < define.expr.span.line for row in self._comment_rows(block))
        one = f"{head} {s.unparse(define.expr)}"
        if len(one) <= WIDTH and not broken and not between:
            return [_Line(one, define.span.line)]
        body = _expr_lines(define.expr, INDENT, INDENT, define.expr.span.line, broken)
        return [_Line(head, define.span.line), *body]

    def _DecisionDecl(self, decision: s.DecisionDecl, block: _Block) -> list[_Line]:
        default = f" default {s.unparse(decision.default)}" if decision.default is not None else ""
        text = (
            f"decision {decision.name.name}: {_type(decision.type)}{default} {_quote(decision.description)}"
        )
        return [_Line(text, decision.span.line)]

    def _ObligationDecl(self, obligation: s.ObligationDecl, block: _Block) -> list[_Line]:
        text = f"obligation {obligation.name.name} {_quote(obligation.description)}"
        return [_Line(text, obligation.span.line)]

    def _RecommendationDecl(self, rec: s.RecommendationDecl, block: _Block) -> list[_Line]:
        tokens = self._tokens(block)
        lines = [_Line(f"recommendation {rec.name.name} {_quote(rec.description)}", rec.span.line)]
        rows = _citation_rows(tokens)
        for index, citation in enumerate(rec.citations):
            lines.append(_Line(f"{INDENT}cite {_quote(citation)}", _at(rows, index, rec.span.line)))
        return lines

    def _RuleDecl(self, rule: s.RuleDecl, block: _Block) -> list[_Line]:
        tokens = self._tokens(block)
        described = f" {_quote(rule.description)}" if rule.description is not None else ""
        lines = [_Line(f"rule {rule.id.name}{described}", rule.span.line)]
        rows = _citation_rows(tokens)
        for index, citation in enumerate(rule.citations):
            lines.append(_Line(f"{INDENT}cite {_quote(citation)}", _at(rows, index, rule.span.line)))
        if rule.overrides:
            names = ", ".join(o.name for o in rule.overrides)
            lines.append(_Line(f"{INDENT}overrides {names}", rule.overrides[0].span.line))
        if_row = _keyword_rows(tokens, "IF")
        lines += self._clause("if", rule.condition, _at(if_row, 0, rule.condition.span.line), block)
        unless_rows = _keyword_rows(tokens, "UNLESS")
        for index, clause in enumerate(rule.unless):
            lines += self._clause("unless", clause, _at(unless_rows, index, clause.span.line), block)
        then_row = _at(_keyword_rows(tokens, "THEN"), 0, rule.outcomes[0].span.line)
        lines += self._outcomes(rule.outcomes, then_row, block)
        return lines

    def _clause(self, keyword: str, expr: s.Expr, row: int, block: _Block) -> list[_Line]:
        return _expr_lines(expr, f"{INDENT}{keyword} ", CONTINUATION, row, self._forced(block, expr))

    def _outcomes(self, outcomes: tuple[s.Outcome, ...], row: int, block: _Block) -> list[_Line]:
        texts = [_outcome(o) for o in outcomes]
        one = f"{INDENT}then " + " and ".join(texts)
        last = outcomes[-1].span.line
        forced = any(row <= r < last for r in self._comment_rows(block))
        if len(one) <= WIDTH and not forced:
            return [_Line(one, row)]
        lines = [_Line(f"{INDENT}then {texts[0]}", row)]
        lines += [
            _Line(f"{CONTINUATION}and {t}", o.span.line) for t, o in zip(texts[1:], outcomes[1:], strict=True)
        ]
        return lines

    def _set_lines(self, head: str, values: list[tuple[str, int]], block: _Block, row: int) -> list[_Line]:
        """`head <a, b, c>` on one line, or the values filled under the head, up to the width.

        A comment between two values starts a new line at the value after it.
        """
        rows = self._comment_rows(block)
        breaks = {i for i, (_, r) in enumerate(values) if i and any(values[i - 1][1] <= c < r for c in rows)}
        texts = [v for v, _ in values]
        one = f"{head} <{', '.join(texts)}>"
        if len(one) <= WIDTH and not breaks:
            return [_Line(one, row)]
        if not values:
            return [_Line(head, row), _Line(f"{INDENT}<>", row)]
        lines = [_Line(head, row)]
        current, anchor = f"{INDENT}<", values[0][1]
        for index, (text, value_row) in enumerate(values):
            piece = text + ("," if index < len(values) - 1 else ">")
            fresh = current.endswith("<")
            if not fresh and (index in breaks or len(current) + 1 + len(piece) > WIDTH):
                lines.append(_Line(current, anchor))
                current, anchor = f"{INDENT} {piece}", value_row
            else:
                current += piece if fresh else f" {piece}"
        lines.append(_Line(current, anchor))
        return lines


# ---------------------------------------------------------------------------
# Small printing helpers


def _start(span: Span) -> tuple[int, int]:
    return (span.line, span.col)


def _end(span: Span) -> tuple[int, int]:
    return (span.end_line, span.end_col)


def _quote(text: str) -> str:
    return s.format_literal(text)


def _field_value(item: s.HeaderField) -> str:
    """Header values as written: `status` is a bare word, dates are bare, the rest are strings."""
    if item.name == "status" or not isinstance(item.value, str):
        return str(item.value)
    return _quote(item.value)


def _type(type_expr: s.TypeExpr) -> str:
    optional = "optional " if type_expr.optional else ""
    scale = ""
    if type_expr.scale is not None and type_expr.rounding is not None:
        scale = f" scale {type_expr.scale} rounding {type_expr.rounding.name}"
    return f"{optional}{'set of ' if type_expr.is_set else ''}{type_expr.name}{scale}"


def _outcome(outcome: s.Outcome) -> str:
    if isinstance(outcome, s.Decide):
        return f"decide {outcome.decision.name} = {s.unparse(outcome.value)}"
    if isinstance(outcome, s.Require):
        return f"require {outcome.name.name}"
    return f"recommend {outcome.name.name}"


def _operand(expr: s.Expr, parent: s.And | s.Or) -> str:
    """An operand of a broken `and`/`or`, parenthesised exactly as `unparse` would."""
    text = s.unparse(expr)
    needs = isinstance(expr, s.Or) or (isinstance(parent, s.And) and isinstance(expr, s.And))
    return f"({text})" if needs else text


def _expr_lines(expr: s.Expr, prefix: str, continuation: str, row: int, forced: bool) -> list[_Line]:
    """An expression after `prefix`; if too long (or holding comments), one top-level operand a line."""
    one = prefix + s.unparse(expr)
    if (len(one) <= WIDTH and not forced) or not isinstance(expr, s.And | s.Or):
        return [_Line(one, row)]
    word = "and" if isinstance(expr, s.And) else "or"
    first, *rest = expr.operands
    lines = [_Line(prefix + _operand(first, expr), row)]
    lines += [_Line(f"{continuation}{word} {_operand(o, expr)}", o.span.line) for o in rest]
    return lines


def _keyword_rows(tokens: list[Token], kind: str) -> list[int]:
    return [t.line or 0 for t in tokens if t.type == kind]


def _citation_rows(tokens: list[Token]) -> list[int]:
    """The source line of each citation string: the strings after `cite`, separated by commas."""
    rows: list[int] = []
    in_cite = False
    for token in tokens:
        if token.type == "CITE":
            in_cite = True
        elif in_cite and token.type == "STRING":
            rows.append(token.line or 0)
        elif token.type != "COMMA":
            in_cite = False
    return rows


def _at(rows: list[int], index: int, fallback: int) -> int:
    return rows[index] if index < len(rows) else fallback
