"""Pygments lexer for the `.policy` language (and `.vocab` vocabularies).

Policy staff read rules far more often than they write them, so the rendered docs,
the README and review tools all highlight policy source. The lexer follows the Lark
grammar in `grammar/policy.lark` token for token: a word is a keyword only when the
whole name is (so `in-force` is a name, not the keyword `in`), and a name right after
a declaration keyword is coloured by what it declares. It is registered as the
`policy` Pygments lexer through the package entry point, so `pygmentize -l policy`
and Markdown renderers find it once the package is installed.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pygments.lexer import RegexLexer, default, include, words  # type: ignore[import-untyped]
from pygments.token import (  # type: ignore[import-untyped]
    Comment,
    Error,
    Keyword,
    Literal,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
)

from engine.grammar import item_keywords, keywords

__all__ = [
    "BUILTIN_TYPES",
    "CLAUSE_KEYWORDS",
    "CONSTANT_KEYWORDS",
    "DECLARATION_KEYWORDS",
    "KEYWORDS",
    "OPERATOR_WORDS",
    "TYPE_KEYWORDS",
    "PolicyLexer",
]

# Keyword classes. Every lowercase keyword of grammar/policy.lark must be in exactly
# one of them; tests/test_highlight.py checks that against the grammar file.
DECLARATION_KEYWORDS = ("policy", "vocabulary", *item_keywords())  # headers, then the grammar's `item`s
CLAUSE_KEYWORDS = (
    "title",
    "version",
    "effective",
    "ends",
    "status",
    "source",
    "description",
    "cite",
    "overrides",
    "if",
    "unless",
    "then",
    "decide",
    "require",
    "recommend",
    "default",
    "from",
)
TYPE_KEYWORDS = ("set", "of", "optional", "scale", "rounding")
OPERATOR_WORDS = ("and", "or", "not", "in", "includes", "any", "all", "is", "missing", "present")
CONSTANT_KEYWORDS = ("true", "false")
KEYWORDS = keywords()  # the classes above partition it (tests/test_highlight.py)
# Not keywords in the grammar (they are NAMEs), but the types every policy uses;
# highlighted as builtins only where a type is expected.
BUILTIN_TYPES = ("boolean", "number", "string", "date")

# The grammar's NAME terminal, and what may not follow a keyword for it to be one:
# Lark lexes the longest NAME first, so `in-force` or `ifx` are names.
NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*"
_WORD_END = r"(?![A-Za-z0-9_]|-[A-Za-z0-9_])"
_ANY_KEYWORD = r"(?:" + "|".join(sorted(KEYWORDS)) + r")" + _WORD_END
# A name that is not a keyword: used in the states that expect a declared name, so a
# missing name leaves the keyword to the root state instead of mis-colouring it.
_PLAIN_NAME = r"(?!" + _ANY_KEYWORD + r")" + NAME

# A set literal `<a, "b", 3>` is told apart from the comparator `<` by looking ahead for
# a well-formed element list closed by `>`; gaps may hold whitespace and whole comments.
_STRING = r'"(?:[^"\\\n]|\\.)*"'
_ELEMENT = r"(?:" + _STRING + r"|\d{4}-\d{2}-\d{2}|-?\d+(?:\.\d+)?|" + NAME + r")"
_GAP = r"(?:\s|#[^\n]*\n)*"
_SET_OPEN = (
    r"<(?=" + _GAP + r"(?:" + _ELEMENT + r"(?:" + _GAP + r"," + _GAP + _ELEMENT + r")*" + _GAP + r")?>)"
)


def _keywords(names: tuple[str, ...]) -> Any:
    """A pattern matching any of `names` as whole words, as the grammar's lexer does."""
    return words(names, suffix=_WORD_END)


def _single_name(token: Any) -> list[Any]:
    """A state that colours the one name a declaration keyword introduces, then returns."""
    return [include("gaps"), (_PLAIN_NAME, token, "#pop"), default("#pop")]


class PolicyLexer(RegexLexer):  # type: ignore[misc]  # pygments ships no type hints
    """Lexer for `.policy` files and `.vocab` vocabularies of the policy engine.

    Token choices (documented in docs/highlighting.md): declaration keywords are
    `Keyword.Declaration`, header fields and rule clauses `Keyword.Reserved`, type words
    `Keyword.Type`, logical/set operators `Operator.Word`; declared names are coloured
    by kind (rules as functions, enums as classes, facts as variables, tables as
    namespaces, outcomes as labels, enumeration values as constants).
    """

    name = "Policy"
    aliases: ClassVar[list[str]] = ["policy"]
    filenames: ClassVar[list[str]] = ["*.policy", "*.vocab"]
    mimetypes: ClassVar[list[str]] = ["text/x-policy"]

    tokens: ClassVar[dict[str, list[Any]]] = {
        "gaps": [
            (r"\s+", Whitespace),
            (r"#[^\n]*", Comment.Single),
        ],
        "literals": [
            (r'"', String.Double, "string"),
            (r"\d{4}-\d{2}-\d{2}", Literal.Date),
            (r"-?\d+(?:\.\d+)?%", Number),  # a percentage: 25% is 0.25
            (r"-?\d+\.\d+", Number.Float),
            (r"-?\d+", Number.Integer),
            (_keywords(CONSTANT_KEYWORDS), Keyword.Constant),
        ],
        "root": [
            include("gaps"),
            # Declarations: the keyword, then the name it declares.
            (words(("rule",), suffix=_WORD_END), Keyword.Declaration, "rule-name"),
            (words(("enum",), suffix=_WORD_END), Keyword.Declaration, "enum-name"),
            (_keywords(("fact", "define")), Keyword.Declaration, "fact-path"),
            (words(("group",), suffix=_WORD_END), Keyword.Declaration, "group-name"),
            (words(("table",), suffix=_WORD_END), Keyword.Declaration, "table-name"),
            (words(("decision",), suffix=_WORD_END), Keyword.Declaration, "outcome-name"),
            (_keywords(("obligation", "recommendation")), Keyword.Declaration, "outcome-words"),
            (_keywords(DECLARATION_KEYWORDS), Keyword.Declaration),
            # Clauses that introduce a name of a known kind.
            (words(("overrides",), suffix=_WORD_END), Keyword.Reserved, "rule-refs"),
            (words(("decide",), suffix=_WORD_END), Keyword.Reserved, "decide"),
            (_keywords(("require", "recommend")), Keyword.Reserved, "outcome-words"),
            (_keywords(("status", "default")), Keyword.Reserved, "value"),
            (_keywords(CLAUSE_KEYWORDS), Keyword.Reserved),
            (words(("rounding",), suffix=_WORD_END), Keyword.Type, "value"),
            (_keywords(TYPE_KEYWORDS), Keyword.Type),
            (_keywords(OPERATOR_WORDS), Operator.Word),
            include("literals"),
            # Punctuation and operators. `:` and `->` are followed by a type.
            (r"->", Punctuation, "type"),
            (r":", Punctuation, "type"),
            (_SET_OPEN, Punctuation, "set"),
            (r"!=|<=|>=|<|>|=", Operator),
            (r"[-+*/]", Operator),  # arithmetic; a `-` inside a name is part of the name
            (r"[\[\](),.]", Punctuation),
            # A name followed by `[` is a table lookup.
            (NAME + r"(?=\s*\[)", Name.Namespace),
            (NAME, Name),
        ],
        "string": [
            (r'[^"\\\n]+', String.Double),
            (r"\\.", String.Escape),
            (r'"', String.Double, "#pop"),
            # Strings are one line: flag the break instead of swallowing the file.
            (r"\\?\n", Error, "#pop"),
        ],
        "rule-name": _single_name(Name.Function),
        "enum-name": _single_name(Name.Class),
        "group-name": _single_name(Name.Variable.Global),
        "table-name": _single_name(Name.Namespace),
        "outcome-name": _single_name(Name.Label),
        "value": _single_name(Name.Constant),
        "fact-path": [
            include("gaps"),
            (_PLAIN_NAME, Name.Variable, ("#pop", "fact-path-rest")),
            default("#pop"),
        ],
        "fact-path-rest": [
            (r"\.", Punctuation),
            (NAME, Name.Variable),
            default("#pop"),
        ],
        "rule-refs": [
            include("gaps"),
            (_PLAIN_NAME, Name.Function),
            (r",", Punctuation),
            default("#pop"),
        ],
        "outcome-words": [
            include("gaps"),
            (_PLAIN_NAME, Name.Label),
            default("#pop"),
        ],
        "decide": [
            include("gaps"),
            (_PLAIN_NAME, Name.Label),
            (r"=", Operator, ("#pop", "value")),
            default("#pop"),
        ],
        "type": [
            include("gaps"),
            (_keywords(TYPE_KEYWORDS), Keyword.Type),
            (words(BUILTIN_TYPES, suffix=_WORD_END), Name.Builtin, "#pop"),
            (_PLAIN_NAME, Name.Class, "#pop"),
            default("#pop"),
        ],
        "set": [
            include("gaps"),
            (r">", Punctuation, "#pop"),
            (r",", Punctuation),
            include("literals"),
            (NAME, Name.Constant),
            default("#pop"),
        ],
    }

    @staticmethod
    def analyse_text(text: str) -> float:
        """Let `pygmentize -g` and `guess_lexer` recognise a policy by its header line."""
        for line in text.splitlines():
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if stripped.startswith(('policy "', 'vocabulary "')):
                return 0.8
            return 0.0
        return 0.0
