"""One escaping policy for everything the engine shows a person: terminals, Markdown, HTML.

Policy text, case values, file names, citations, descriptions and `$comment`s come from
people the reader does not control (see docs/security.md). Whatever reaches a terminal or
a report is made inert here and nowhere else:

* `terminal(text)`: every character that is not printable text becomes a visible escape
  (`\\n`, `\\x1b`, `\\u202e`): C0 and C1 controls (ESC, CR, NUL, ...), DEL, bidirectional
  overrides (the "Trojan source" reordering), line and paragraph separators, the BOM and
  lone surrogates (which would make printing itself fail). A value can then neither move
  the cursor, clear the screen, recolour the output nor start a line of its own.
* `markdown(text)`: `terminal`, and a `<` that could open raw HTML (a tag, a closing tag
  such as `</details>`, a comment, an autolink) written `&lt;`. A `<` before a space, a
  digit or `=` (conditions such as `value < 10`) cannot start HTML and is left alone, so
  conditions read the same in code spans, where entities are not decoded.
* `html`: jinja's own autoescaping, after `terminal`.

Templates get this automatically: `new_environment` (engine/render.py) installs `finalize`,
which applies the policy for the template's format (by file name: `*.md.j2`, `*.html.j2`,
anything else is terminal text) to every `{{ value }}`. Text the engine composes itself
(colour codes, macro output, generated page marks) is `Markup` and passes unchanged; its
user-given parts are escaped before being wrapped. `excerpt` bounds how much of a bad
value a message repeats.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # jinja2 and markupsafe load on first render: `import engine` stays light
    from jinja2.runtime import Context
    from markupsafe import Markup

__all__ = [
    "Markup",
    "code",
    "excerpt",
    "fenced",
    "finalize",
    "html",
    "json_text",
    "markdown",
    "terminal",
    "trusted",
]

_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]"
)
_JSON_UNSAFE = re.compile(  # `_UNSAFE` less C0, which json.dumps escapes itself (and uses as layout)
    "[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_HTML_START = re.compile(r"<(?=[A-Za-z/!?])")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal(text: Any) -> str:
    """Text safe to print on a terminal: no control, reordering or unencodable characters."""
    value = str(text)
    return _UNSAFE.sub(_visible, value) if _UNSAFE.search(value) else value


def markdown(text: Any) -> str:
    """Text safe in a Markdown document: `terminal`, and nothing that opens raw HTML."""
    return _HTML_START.sub("&lt;", terminal(text))


def html(text: Any) -> Markup:
    """Text safe in HTML: `terminal`, then entity-escaped."""
    from markupsafe import escape

    return escape(terminal(text))


_BACKTICKS = re.compile("`+")


def code(text: Any) -> Markup:
    """A Markdown code span around any text: a fence longer than its longest run of backticks.

    Inside a code span nothing is HTML or Markdown, so only `terminal` applies and `a < b`
    reads as written; the fence stops a backtick in the text from closing the span early.
    """
    from markupsafe import Markup

    value = terminal(text)
    longest = max((len(run) for run in _BACKTICKS.findall(value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value[:1] in ("`", " ") or value[-1:] in ("`", " ") else ""
    return Markup(f"{fence}{pad}{value}{pad}{fence}")


def fenced(text: Any) -> Markup:
    """One line inside a fenced code block: `terminal` only (no newline can end the block)."""
    from markupsafe import Markup

    return Markup(terminal(text))


def trusted(text: str) -> Markup:
    """Mark text the engine composed itself (its user parts already escaped) as final."""
    from markupsafe import Markup

    return Markup(text)


def json_text(text: str) -> str:
    """JSON text (from `json.dumps(ensure_ascii=False)`) printable anywhere, with the same meaning.

    `json.dumps` already writes C0 controls as escapes; this writes the rest of `terminal`'s
    set the same way (`\\u202e`, `\\u009b`, a lone surrogate `\\udc80`, which UTF-8 cannot
    encode at all). They can only occur inside JSON strings, where `\\uXXXX` means the same.
    """
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def excerpt(value: Any, limit: int = 80) -> str:
    """A value as a message may repeat it: escaped, and cut to `limit` characters with its size."""
    text = terminal(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def _policy_for(name: str | None) -> str:
    if name and name.endswith(".md.j2"):
        return "markdown"
    if name and name.endswith(".html.j2"):
        return "html"
    return "text"


def finalize(context: Context, value: Any) -> Any:
    """jinja `finalize`: every `{{ value }}` escaped by the policy of the template's format."""
    from markupsafe import Markup

    if hasattr(value, "__html__"):
        return value
    mode = _policy_for(context.name)
    if mode == "markdown":
        return Markup(markdown(value))
    if mode == "html":
        return terminal(value)  # jinja's autoescape then entity-escapes it
    return Markup(terminal(value))


def make_finalize() -> Any:
    """`finalize` marked for jinja as taking the template context (imports jinja2: render time only)."""
    from jinja2 import pass_context

    return pass_context(finalize)


def escape_filter(value: Any) -> Markup:
    """The `e` filter: HTML entities, and no control characters either."""
    from markupsafe import Markup

    if hasattr(value, "__html__"):
        return Markup(value)
    return html(value)
