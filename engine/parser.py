"""Source text → syntax tree with spans; Lark errors → diagnostics in a policy author's words.

A file that fails to parse is split at its declaration keywords and each declaration is
parsed on its own, so one run reports every broken declaration, not only the first.
"""

from __future__ import annotations

import datetime
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from lark import Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from engine import syntax as s
from engine.errors import Diagnostic, Span, did_you_mean
from engine.grammar import item_keywords
from engine.grammar import parser as lark_parser
from engine.numbers import percent


class ParseResult:
    """The tree of a file (None when its header could not be read) and its syntax errors.

    `broken` holds the names of the declarations that failed to parse (`rule a`, `fact x`...):
    the checker says nothing about references to them, since the syntax error already did.
    `broken_use` says a `use` failed to parse, so the names of its vocabulary are unknown."""

    def __init__(
        self,
        tree: s.SourceFile | None,
        diagnostics: list[Diagnostic],
        broken: frozenset[str] = frozenset(),
        broken_use: bool = False,
    ):
        self.tree = tree
        self.diagnostics = diagnostics
        self.broken = broken
        self.broken_use = broken_use


def parse(text: str, path: str = "<string>") -> ParseResult:
    """Parse one file; never raises for bad input, returns diagnostics instead.

    A leading byte order mark is replaced by a space (one policy with engine/strictjson.py: a
    BOM may start a file and is ignored), so columns stay as an editor counts them."""
    if text.startswith("\ufeff"):
        text = " " + text[1:]
    try:
        tree = lark_parser().parse(text, start="start")
    except UnexpectedInput:
        return _parse_in_pieces(text, path)
    try:
        built = _Builder(path).transform(tree)
    except VisitError as exc:  # a literal the grammar admits but the language does not (a bad date)
        return ParseResult(None, [_visit_error(exc, path)])
    return ParseResult(_attach(built, text, path), [])


def _attach(built: s.SourceFile, text: str, path: str) -> s.SourceFile:
    return s.SourceFile(built.header, built.items, comments=extract_comments(text, path), path=path)


# ---------------------------------------------------------------------------
# Comments


_COMMENT_OR_STRING = re.compile(r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"|#[^\n]*')  # unrolled: linear memory


def extract_comments(text: str, path: str) -> tuple[s.Comment, ...]:
    """Every `#` comment outside strings, with its span (the grammar itself ignores them)."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for match in _COMMENT_OR_STRING.finditer(line):
            if match.group().startswith("#"):
                span = Span(path, number, match.start() + 1, number, match.end() + 1)
                found.append(s.Comment(match.group(), span=span))
    return tuple(found)


# ---------------------------------------------------------------------------
# Error recovery


_DECLARATION_START = re.compile(r"^[ \t]*(" + "|".join(item_keywords()) + r")\b", re.M)


def _pieces(text: str) -> list[tuple[int, str]]:
    """Split a file at declaration keywords that start a line: (start offset, text) pairs."""
    starts = [m.start() for m in _DECLARATION_START.finditer(text)]
    bounds = [0, *starts, len(text)]
    return [(a, text[a:b]) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


_DECLARED_NAME = re.compile(r"\s*[a-z]+[ \t]+([A-Za-z_][\w.-]*(?:[ \t]+[A-Za-z_][\w-]*)*)")


def _declared_name(piece: str) -> str | None:
    """The name a broken declaration meant to declare (`rule a ...` -> `a`; `obligation file x ...`
    -> `file x`), read from its text since it has no tree."""
    match = _DECLARED_NAME.match(piece)
    if match is None:
        return None
    name = " ".join(match.group(1).split())
    return name if _declaration_word(piece) in ("obligation", "recommendation") else name.split(" ")[0]


def _parse_in_pieces(text: str, path: str) -> ParseResult:
    """Re-parse declaration by declaration to report every syntax error in the file."""
    diagnostics: list[Diagnostic] = []
    broken: set[str] = set()
    broken_use = False
    header: s.Header | None = None
    items: list[s.Item] = []
    for index, (offset, piece) in enumerate(_pieces(text)):
        padded = "\n" * text.count("\n", 0, offset) + piece  # keep line numbers true
        start = "header" if index == 0 else "item"
        try:
            built = _Builder(path).transform(lark_parser().parse(padded, start=start))
        except UnexpectedInput as exc:
            diagnostics.append(syntax_error(exc, padded, path, start))
        except VisitError as exc:
            diagnostics.append(_visit_error(exc, path))
        else:
            if start == "header":
                header = built
            else:
                items.append(built)
            continue
        if start == "item" and _declaration_word(piece) == "use":
            broken_use = True
        elif start == "item" and (name := _declared_name(piece)):
            broken.add(name)
    if not text.strip():  # one problem, said once (not also "unexpected end of file")
        span = Span(path, 1, 1, 1, 1)
        diagnostics = [
            Diagnostic.at(
                "syntax", "the file is empty", span, 'a file starts with `policy "ID"` or `vocabulary "ID"`'
            )
        ]
    tree = s.SourceFile(header, tuple(items), extract_comments(text, path), path) if header else None
    return ParseResult(tree, diagnostics, frozenset(broken), broken_use)


# ---------------------------------------------------------------------------
# Friendly syntax errors

_TOKEN_WORDS = {
    "NAME": "a name",
    "STRING": "a string in double quotes",
    "DATE": "a date (YYYY-MM-DD)",
    "NUMBER": "a number",
    "PERCENT": "a percentage",
    "OPTIONAL": "`optional`",
    "$END": "the end of the file",
}

_CONDITION_WORDS = {"and", "or", "not", "if", "unless"}
_COMPARATORS = {"=", "!=", "<", "<=", ">", ">="}


def _describe_terminal(name: str) -> str:
    if name in _TOKEN_WORDS:
        return _TOKEN_WORDS[name]
    try:
        pattern = lark_parser().get_terminal(name).pattern
    except KeyError:
        return name.lower()
    return f"`{pattern.value}`"


def _expected_words(expected: set[str]) -> str:
    words = sorted({_describe_terminal(t) for t in expected})
    if len(words) > 8:
        words = [*words[:8], "..."]
    if not words:  # a piece of a broken file ends here, e.g. `rule` on the header's line
        return "the end of this declaration (start the next one on a new line)"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _previous_word(text: str, pos: int) -> str | None:
    """The last word or symbol before `pos`, ignoring comments: the context of an error."""
    before = _COMMENT_OR_STRING.sub(lambda m: m.group() if m.group().startswith('"') else "", text[:pos])
    match = re.search(r'("[^"\\\n]*(?:\\.[^"\\\n]*)*"|[A-Za-z_][\w-]*|!=|<=|>=|\S)\s*$', before)
    return match.group(1) if match else None


def _describe_token(token: Token) -> str:
    if token.type == "$END":
        return "end of file"
    if token.type == "STRING":
        return f"string {token.value}"
    if token.type in ("NAME", "DATE", "NUMBER", "PERCENT"):
        return f"{_TOKEN_WORDS[token.type].split(' (')[0].removeprefix('a ')} `{token.value}`"
    return f"`{token.value}`"


def _contextual_message(previous: str | None, expected: set[str]) -> tuple[str, str | None] | None:
    """Messages for the mistakes authors actually make, keyed by what came just before."""
    if previous in _CONDITION_WORDS and "NAME" in expected:
        return (
            f"expected a condition after `{previous}`",
            "a condition is a fact, a comparison or a test such as `x in <A, B>`",
        )
    if previous == "then":
        return (
            "expected an outcome after `then`",
            "write `decide NAME = VALUE`, `require OBLIGATION` or `recommend STEP`",
        )
    if previous == "in" and "LESSTHAN" in expected:
        return (
            "expected a set after `in`",
            "write a set literal like `<CC, infosec>`, or a group, table or set-valued fact",
        )
    if previous == "includes":
        return "expected a value, `any <...>` or `all <...>` after `includes`", None
    if previous in _COMPARATORS and "NAME" in expected and not (previous == "<" and "MORETHAN" in expected):
        return f"expected a value after `{previous}`", None
    if previous == "cite":
        return (
            "expected a citation in double quotes after `cite`",
            'write the section or paragraph in double quotes, for example `cite "s. 2(1)"`',
        )
    return None


_HEADER_FIELDS = ("title", "version", "effective", "ends", "status", "source", "description")
_OUTCOME_WORDS = {"decide", "require", "recommend"}


def _declaration_word(text: str) -> str | None:
    """The keyword of the declaration being read (error recovery parses one declaration at a time)."""
    stripped = _COMMENT_OR_STRING.sub(lambda m: m.group() if m.group().startswith('"') else "", text)
    match = re.match(r"\s*([a-z]+)\b", stripped)
    return match.group(1) if match else None


def _declaration_message(
    declaration: str | None, token: Token, expected: set[str]
) -> tuple[str, str | None] | None:
    """Messages keyed by the declaration being read, where Lark's expected set is too wide to list."""
    if expected == {"RPAR"}:
        return "expected `)` to close the parenthesis", "every `(` needs a matching `)`"
    if declaration == "rule" and "THEN" in expected:
        if token.value in _OUTCOME_WORDS:
            return "expected `then` before the outcome", "a rule reads `if CONDITION then OUTCOME`"
        return (
            "expected `then`, or `and`, `or`, `unless` or a comparison to continue the condition",
            "a rule reads `if CONDITION then OUTCOME`",
        )
    if declaration == "fact" and "COLON" in expected:
        return "expected `:` and a type after the fact's name", 'a fact reads `fact NAME: TYPE "description"`'
    if declaration == "fact" and "STRING" in expected and "NAME" not in expected:
        return (
            "expected the fact's description in double quotes",
            'a fact reads `fact NAME: TYPE "description"`',
        )
    if declaration in ("policy", "vocabulary") and "TITLE" in expected and token.type == "NAME":
        return (
            "expected a header field or a declaration",
            did_you_mean(str(token.value), _HEADER_FIELDS)
            or "the header fields are " + ", ".join(f"`{f}`" for f in _HEADER_FIELDS),
        )
    return None


def syntax_error(exc: UnexpectedInput, text: str, path: str, start: str = "start") -> Diagnostic:
    """Turn a Lark error into a located diagnostic that speaks to a policy author."""
    if isinstance(exc, UnexpectedCharacters):
        return _bad_character(exc, text, path)
    if isinstance(exc, UnexpectedToken | UnexpectedEOF):
        token = exc.token if isinstance(exc, UnexpectedToken) else Token("$END", "")
        expected = set(exc.expected)
        return _bad_token(token, expected, text, path, start)
    return Diagnostic.at("syntax", "the text could not be read", _point(path, exc.line, exc.column))


def _point(path: str, line: int, column: int, width: int = 1) -> Span:
    return Span(path, max(line, 1), max(column, 1), max(line, 1), max(column, 1) + width)


def _bad_character(exc: UnexpectedCharacters, text: str, path: str) -> Diagnostic:
    char = exc.char
    help_text = "names are letters, digits, `_` and inner hyphens; text goes in double quotes"
    if char == "'":
        help_text = 'strings use double quotes: `"..."`'
    elif char in "{}":
        help_text = "declarations are not braced: a declaration runs until the next keyword"
    elif char == '"':
        return Diagnostic.at(
            "syntax",
            "this string is not closed on its line",
            _point(path, exc.line, exc.column),
            'add the closing `"`: a string cannot run over several lines',
        )
    return Diagnostic.at(
        "syntax", f"unexpected character `{char}`", _point(path, exc.line, exc.column), help_text
    )


def _bad_token(token: Token, expected: set[str], text: str, path: str, start: str) -> Diagnostic:
    raw_pos: int | None = getattr(token, "start_pos", None)
    if token.type == "$END" or raw_pos is None:
        lines = text.rstrip().splitlines() or [""]
        line, column, pos = len(lines), len(lines[-1]) + 1, len(text.rstrip())
        width = 1
    else:
        pos = raw_pos
        line, column, width = token.line or 1, token.column or 1, max(len(str(token.value)), 1)
    span = _point(path, line, column, width)
    previous = _previous_word(text, pos)
    if previous == "=" and token.value == "=" and token.type != "$END":  # `==`: underline both
        span = _point(path, line, column - 1, 2)
    contextual = (
        _mistake_message(previous, token, expected, text[:pos])
        or _contextual_message(previous, expected)
        or _declaration_message(_declaration_word(text), token, expected)
    )
    if contextual:
        message, help_text = contextual
        hint = _keyword_help(token, expected)  # `unles`, `decied`: the keyword comes first
        if hint and not (help_text or "").startswith("did you mean"):  # a header field has its own
            help_text = f"{hint} ({help_text})" if help_text else hint
        if token.type != "$END" and not message.startswith("`=="):
            message += f", found {_describe_token(token)}"
        return Diagnostic.at("syntax", message, span, help_text)
    if token.type != "NAME" and "NAME" in expected and re.fullmatch(r"[a-z]+", str(token.value)):
        return Diagnostic.at(
            "syntax",
            f"`{token.value}` is a keyword and cannot be used as a name here",
            span,
            "choose another name, for example with a suffix: `" + str(token.value) + "_value`",
        )
    message = f"unexpected {_describe_token(token)}, expected {_expected_words(expected)}"
    return Diagnostic.at("syntax", message, span, _keyword_help(token, expected) or _generic_help(expected))


def _mistake_message(
    previous: str | None, token: Token, expected: set[str], before: str
) -> tuple[str, str | None] | None:
    """Messages for habits from other languages and unfinished sets, keyed by the token found.

    Checked before the context messages, since these say what the author meant to write."""
    if previous == "=" and token.value == "=":
        return "`==` is not an operator", 'equality is written with one `=`: `country = "CC"`'
    if expected <= {"COMMA", "MORETHAN"} and "MORETHAN" in expected:
        blanked = _COMMENT_OR_STRING.sub(lambda m: " " * len(m.group()), before)  # a `<` in text is not one
        opened = blanked.rfind("<")
        where = f" (opened at line {before.count(chr(10), 0, opened) + 1})" if opened >= 0 else ""
        return (
            f"expected `,` or `>`: the set{where} is not closed",
            "close the set with `>` after its last item: `<CC, infosec>`",
        )
    if previous in ("any", "all") and token.type != "$END" and "LESSTHAN" in expected:
        example = str(token.value)
        return (
            f"expected a set after `includes {previous}`",
            f"after `includes {previous}` comes a set: write `includes {previous} <{example}>`,"
            f" or `includes {example}` for one value",
        )
    return None


def _keyword_help(token: Token, expected: set[str]) -> str | None:
    """`did you mean` a keyword the parser would accept here, for a misspelt keyword (`overide`)."""
    if token.type != "NAME":
        return None
    keywords = [_describe_terminal(t).strip("`") for t in expected if t not in _TOKEN_WORDS]
    return did_you_mean(str(token.value), [k for k in keywords if re.fullmatch(r"[a-z]+", k)])


def _generic_help(expected: set[str]) -> str | None:
    if expected == {"STRING"}:
        return "descriptions, citations, ids and paths are written in double quotes"
    if "THEN" in expected:
        return "a rule reads `if CONDITION then OUTCOME`"
    return None


def _visit_error(exc: VisitError, path: str) -> Diagnostic:
    original = exc.orig_exc
    if isinstance(original, _LiteralError):
        return Diagnostic.at("syntax", original.message, original.span, original.help)
    raise original


class _LiteralError(Exception):
    def __init__(self, message: str, span: Span, help: str | None = None):
        self.message, self.span, self.help = message, span, help
        super().__init__(message)


# ---------------------------------------------------------------------------
# Parse tree → syntax tree


def _unquote(token: Token) -> str:
    body = str(token)[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


class _Builder(Transformer[Token, Any]):
    """Builds syntax nodes bottom-up, capturing spans once, here."""

    def __init__(self, path: str):
        super().__init__()
        self._file = path

    # spans ------------------------------------------------------------
    def _span(self, meta: Any) -> Span:
        if getattr(meta, "empty", True):
            return Span(self._file, 0, 0, 0, 0)
        return Span(self._file, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tspan(self, token: Token) -> Span:
        return Span(
            self._file, token.line or 0, token.column or 0, token.end_line or 0, token.end_column or 0
        )

    def _ident(self, token: Token) -> s.Ident:
        return s.Ident(str(token), span=self._tspan(token))

    # file -------------------------------------------------------------
    @v_args(meta=True)
    def start(self, meta: Any, children: list[Any]) -> s.SourceFile:
        header, *items = children
        return s.SourceFile(header, tuple(items), path=self._file)

    def header(self, children: list[Any]) -> s.Header:
        header: s.Header = children[0]
        return header

    @v_args(meta=True)
    def policy_header(self, meta: Any, children: list[Any]) -> s.Header:
        return s.Header("policy", _unquote(children[0]), tuple(children[1:]), span=self._span(meta))

    @v_args(meta=True)
    def vocabulary_header(self, meta: Any, children: list[Any]) -> s.Header:
        return s.Header("vocabulary", _unquote(children[0]), tuple(children[1:]), span=self._span(meta))

    def _field(self, name: str, meta: Any, token: Token) -> s.HeaderField:
        value: str | date
        if token.type == "STRING":
            value = _unquote(token)
        elif token.type == "DATE":
            value = self._date(token)
        else:
            value = str(token)
        return s.HeaderField(name, value, span=self._tspan(token))

    @v_args(meta=True)
    def title(self, meta: Any, c: list[Token]) -> s.HeaderField:
        return self._field("title", meta, c[0])

    @v_args(meta=True)
    def version(self, meta: Any, c: list[Token]) -> s.HeaderField:
        return self._field("version", meta, c[0])

    @v_args(meta=True)
    def effective(self, meta: Any, c: list[Token]) -> s.HeaderField:
        return self._field("effective", meta, c[0])

    @v_args(meta=True)
    def ends(self, meta: Any, c: list[Token]) -> s.HeaderField:
        return self._field("ends", meta, c[0])

    @v_args(meta=True)
    def status(self, meta: Any, c: list[Token]) -> s.HeaderField:
        return self._field("status", meta, c[0])

    @v_args(meta=True)
    def source(self, meta: Any, c: list[Token]) -> s.HeaderField:
        return self._field("source", meta, c[0])

    @v_args(meta=True)
    def description(self, meta: Any, c: list[Token]) -> s.HeaderField:
        return self._field("description", meta, c[0])

    # declarations -----------------------------------------------------
    @v_args(meta=True)
    def use_decl(self, meta: Any, c: list[Token]) -> s.Use:
        return s.Use(_unquote(c[0]), span=self._span(meta))

    @v_args(meta=True)
    def enum_decl(self, meta: Any, c: list[Any]) -> s.EnumDecl:
        name, desc, values = c
        for v in values.items:
            if isinstance(v, s.Literal):
                raise _LiteralError(
                    f"enumeration values are names, and {s.unparse(v)} is not a name",
                    v.span,
                    "write the values without quotes: `<CC, infosec>`; a set of text is a `group`",
                )
        idents = tuple(s.Ident(v.path[0], span=v.span) for v in values.items if isinstance(v, s.Ref))
        return s.EnumDecl(self._ident(name), _unquote(desc), idents, span=self._span(meta))

    @v_args(meta=True)
    def fact_decl(self, meta: Any, c: list[Any]) -> s.FactDecl:
        path, type_expr, *rest = c
        default = rest[0] if len(rest) == 2 else None
        return s.FactDecl(path.path, type_expr, _unquote(rest[-1]), default, span=self._span(meta))

    def fact_default(self, c: list[Any]) -> s.Ref | s.Literal | s.SetLiteral:
        value: s.Ref | s.Literal | s.SetLiteral = c[0]
        return value

    @v_args(meta=True)
    def default_set(self, meta: Any, c: list[Any]) -> s.SetLiteral:
        return s.SetLiteral(tuple(x for x in c if x is not None), span=self._span(meta))

    def default_set_item(self, c: list[Token]) -> s.Ref | s.Literal:
        return self.default_item(c)

    def default_item(self, c: list[Token]) -> s.Ref | s.Literal:
        """One constant of a default, built exactly as the same token in a condition would be."""
        token = c[0]
        if token.type == "NAME":
            return self.name_value([token])
        if token.type == "STRING":
            return self.string([token])
        if token.type == "NUMBER":
            return self.number([token])
        if token.type == "DATE":
            return self.date([token])
        if token.type == "PERCENT":
            return self.percent([token])
        return s.Literal(str(token) == "true", span=self._tspan(token))

    @v_args(meta=True)
    def group_decl(self, meta: Any, c: list[Any]) -> s.GroupDecl:
        name, *rest = c
        desc = _unquote(rest[0]) if len(rest) == 2 else None
        return s.GroupDecl(self._ident(name), desc, rest[-1], span=self._span(meta))

    @v_args(meta=True)
    def table_decl(self, meta: Any, c: list[Any]) -> s.TableDecl:
        name, key, value, desc, source = c
        return s.TableDecl(
            self._ident(name), key, value, _unquote(desc), _unquote(source), span=self._span(meta)
        )

    @v_args(meta=True)
    def define_decl(self, meta: Any, c: list[Any]) -> s.DefineDecl:
        name, *rest = c
        type_expr = rest.pop(0) if isinstance(rest[0], s.TypeExpr) else None
        desc, expr = rest
        return s.DefineDecl(self._ident(name), type_expr, _unquote(desc), expr, span=self._span(meta))

    @v_args(meta=True)
    def decision_decl(self, meta: Any, c: list[Any]) -> s.DecisionDecl:
        name, type_expr, *rest = c
        default = rest[0] if len(rest) == 2 else None
        return s.DecisionDecl(
            self._ident(name), type_expr, default, _unquote(rest[-1]), span=self._span(meta)
        )

    def default_clause(self, c: list[Any]) -> s.Ref | s.Literal | s.SetLiteral:
        value: s.Ref | s.Literal | s.SetLiteral = c[0]
        return value

    @v_args(meta=True)
    def obligation_decl(self, meta: Any, c: list[Any]) -> s.ObligationDecl:
        return s.ObligationDecl(c[0], _unquote(c[1]), span=self._span(meta))

    @v_args(meta=True)
    def recommendation_decl(self, meta: Any, c: list[Any]) -> s.RecommendationDecl:
        name, desc, *cites = c
        citations = tuple(x for group in cites for x in group)
        return s.RecommendationDecl(name, _unquote(desc), citations, span=self._span(meta))

    @v_args(meta=True)
    def words(self, meta: Any, c: list[Token]) -> s.Ident:
        return s.Ident(" ".join(str(t) for t in c), span=self._span(meta))

    # rules --------------------------------------------------------------
    @v_args(meta=True)
    def rule_decl(self, meta: Any, c: list[Any]) -> s.RuleDecl:
        rule_id = self._ident(c[0])
        rest = c[1:]
        description = _unquote(rest.pop(0)) if rest and isinstance(rest[0], Token) else None
        citations: list[str] = []
        overrides: list[s.Ident] = []
        unless: list[s.Expr] = []
        outcomes: list[s.Outcome] = []
        condition: s.Expr | None = None
        for child in rest:
            if isinstance(child, _Cites):
                citations.extend(child)
            elif isinstance(child, _Overrides):
                overrides.extend(child)
            elif isinstance(child, _Unless):
                unless.append(child.expr)
            elif isinstance(child, s.Decide | s.Require | s.Recommend):
                outcomes.append(child)
            else:
                condition = child
        assert condition is not None
        return s.RuleDecl(
            rule_id,
            description,
            tuple(citations),
            tuple(overrides),
            condition,
            tuple(unless),
            tuple(outcomes),
            span=self._span(meta),
        )

    def cite_clause(self, c: list[Token]) -> _Cites:
        return _Cites(_unquote(t) for t in c)

    def overrides_clause(self, c: list[Token]) -> _Overrides:
        return _Overrides(self._ident(t) for t in c)

    def unless_clause(self, c: list[Any]) -> _Unless:
        return _Unless(c[0])

    @v_args(meta=True)
    def decide(self, meta: Any, c: list[Any]) -> s.Decide:
        return s.Decide(self._ident(c[0]), c[1], span=self._span(meta))

    @v_args(meta=True)
    def require(self, meta: Any, c: list[Any]) -> s.Require:
        return s.Require(c[0], span=self._span(meta))

    @v_args(meta=True)
    def recommend(self, meta: Any, c: list[Any]) -> s.Recommend:
        return s.Recommend(c[0], span=self._span(meta))

    # types ----------------------------------------------------------------
    @v_args(meta=True)
    def type_expr(self, meta: Any, c: list[Any]) -> s.TypeExpr:
        scale: _Scale | None = c.pop() if c and isinstance(c[-1], _Scale) else None
        optional = len(c) == 2
        base: s.TypeExpr = c[-1]
        return s.TypeExpr(
            base.name,
            base.is_set,
            optional,
            scale.digits if scale else None,
            scale.rounding if scale else None,
            span=self._span(meta),
        )

    def scale_clause(self, c: list[Token]) -> _Scale:
        digits, rounding = c
        if "." in str(digits) or str(digits).startswith("-"):
            raise _LiteralError(
                f"`{digits}` is not a number of digits",
                self._tspan(digits),
                "a scale is a whole number of digits after the point: `scale 2`",
            )
        return _Scale(int(str(digits)), self._ident(rounding))

    @v_args(meta=True)
    def set_type(self, meta: Any, c: list[Token]) -> s.TypeExpr:
        return s.TypeExpr(str(c[0]), True, span=self._span(meta))

    @v_args(meta=True)
    def named_type(self, meta: Any, c: list[Token]) -> s.TypeExpr:
        return s.TypeExpr(str(c[0]), False, span=self._span(meta))

    # expressions ----------------------------------------------------------
    @v_args(meta=True)
    def or_expr(self, meta: Any, c: list[Any]) -> s.Or:
        return s.Or(tuple(c), span=self._span(meta))

    @v_args(meta=True)
    def and_expr(self, meta: Any, c: list[Any]) -> s.And:
        return s.And(tuple(c), span=self._span(meta))

    @v_args(meta=True)
    def not_expr(self, meta: Any, c: list[Any]) -> s.Not:
        return s.Not(c[0], span=self._span(meta))

    @v_args(meta=True)
    def compare(self, meta: Any, c: list[Any]) -> s.Compare:
        return s.Compare(str(c[1].children[0]), c[0], c[2], span=self._span(meta))

    @v_args(meta=True)
    def member(self, meta: Any, c: list[Any]) -> s.Member:
        return s.Member(c[0], c[1], span=self._span(meta))

    @v_args(meta=True)
    def includes(self, meta: Any, c: list[Any]) -> s.Includes:
        return s.Includes(c[0], c[1], "one", span=self._span(meta))

    @v_args(meta=True)
    def includes_any(self, meta: Any, c: list[Any]) -> s.Includes:
        return s.Includes(c[0], c[1], "any", span=self._span(meta))

    @v_args(meta=True)
    def includes_all(self, meta: Any, c: list[Any]) -> s.Includes:
        return s.Includes(c[0], c[1], "all", span=self._span(meta))

    @v_args(meta=True)
    def is_missing(self, meta: Any, c: list[Any]) -> s.Presence:
        return s.Presence(c[0], False, span=self._span(meta))

    @v_args(meta=True)
    def is_present(self, meta: Any, c: list[Any]) -> s.Presence:
        return s.Presence(c[0], True, span=self._span(meta))

    def _arith(self, op: str, meta: Any, c: list[Any]) -> s.Arith:
        return s.Arith(op, c[0], c[1], span=self._span(meta))

    @v_args(meta=True)
    def add(self, meta: Any, c: list[Any]) -> s.Arith:
        return self._arith("+", meta, c)

    @v_args(meta=True)
    def subtract(self, meta: Any, c: list[Any]) -> s.Arith:
        return self._arith("-", meta, c)

    @v_args(meta=True)
    def multiply(self, meta: Any, c: list[Any]) -> s.Arith:
        return self._arith("*", meta, c)

    @v_args(meta=True)
    def divide(self, meta: Any, c: list[Any]) -> s.Arith:
        return self._arith("/", meta, c)

    @v_args(meta=True)
    def call(self, meta: Any, c: list[Any]) -> s.Call:
        return s.Call(self._ident(c[0]), tuple(c[1:]), span=self._span(meta))

    def percent(self, c: list[Token]) -> s.Literal:
        return s.Literal(percent(str(c[0])[:-1]), True, span=self._tspan(c[0]))

    @v_args(meta=True)
    def lookup(self, meta: Any, c: list[Any]) -> s.Lookup:
        return s.Lookup(self._ident(c[0]), c[1], span=self._span(meta))

    @v_args(meta=True)
    def set_literal(self, meta: Any, c: list[Any]) -> s.SetLiteral:
        return s.SetLiteral(tuple(x for x in c if x is not None), span=self._span(meta))

    def name_value(self, c: list[Token]) -> s.Ref:
        return s.Ref((str(c[0]),), span=self._tspan(c[0]))

    @v_args(meta=True)
    def path(self, meta: Any, c: list[Token]) -> s.Ref:
        return s.Ref(tuple(str(t) for t in c), span=self._span(meta))

    def string(self, c: list[Token]) -> s.Literal:
        return s.Literal(_unquote(c[0]), span=self._tspan(c[0]))

    def number(self, c: list[Token]) -> s.Literal:
        try:
            value = Decimal(str(c[0]))
        except InvalidOperation as exc:  # pragma: no cover - the grammar admits only decimals
            raise _LiteralError(f"`{c[0]}` is not a number", self._tspan(c[0])) from exc
        return s.Literal(value, span=self._tspan(c[0]))

    def date(self, c: list[Token]) -> s.Literal:
        return s.Literal(self._date(c[0]), span=self._tspan(c[0]))

    @v_args(meta=True)
    def true(self, meta: Any, c: list[Any]) -> s.Literal:
        return s.Literal(True, span=self._span(meta))

    @v_args(meta=True)
    def false(self, meta: Any, c: list[Any]) -> s.Literal:
        return s.Literal(False, span=self._span(meta))

    def _date(self, token: Token) -> datetime.date:
        try:
            return datetime.date.fromisoformat(str(token))
        except ValueError as exc:
            raise _LiteralError(
                f"`{token}` is not a calendar date", self._tspan(token), "dates are written YYYY-MM-DD"
            ) from exc

    def __default__(self, data: Any, children: list[Any], meta: Any) -> Any:
        return Tree(data, children, meta)


class _Cites(tuple[str, ...]):
    pass


class _Scale:
    def __init__(self, digits: int, rounding: s.Ident):
        self.digits, self.rounding = digits, rounding


class _Overrides(tuple[s.Ident, ...]):
    pass


class _Unless:
    def __init__(self, expr: s.Expr):
        self.expr = expr
