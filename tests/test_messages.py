"""Author mistakes from issue 11 ("Messages"): each gets a code, a location, an underline and a help.

Each test writes the mistake as an author would, inside an otherwise valid policy, and checks the
one diagnostic it produces: where it points, what it underlines and the help it gives.
"""

from __future__ import annotations

from engine.errors import Diagnostic
from engine.parser import parse
from tests.conftest import HEADER

DECLARATIONS = """fact country: string "destination"
fact items: set of string "items"
fact risk: boolean "a risk"
decision review: string default "none" "how the application is reviewed"
"""


def only_error(body: str) -> Diagnostic:
    """The single syntax error of HEADER + DECLARATIONS + body (declarations start on line 7)."""
    result = parse(HEADER + DECLARATIONS + body, "m.policy")
    assert len(result.diagnostics) == 1, [d.message for d in result.diagnostics]
    (diagnostic,) = result.diagnostics
    assert diagnostic.code == "syntax" and diagnostic.file == "m.policy"
    return diagnostic


def test_an_unclosed_set_says_where_it_opened_and_how_to_close_it() -> None:
    found = only_error('rule a\n  if country in <CC, infosec\n  then decide review = "x"\n')
    assert (found.line, found.column, found.end_column) == (13, 3, 7)  # the `then` the set ran into
    assert found.message == "expected `,` or `>`: the set (opened at line 12) is not closed, found `then`"
    assert found.help == "close the set with `>` after its last item: `<CC, infosec>`"


def test_double_equals_is_underlined_whole_with_the_single_equals_as_help() -> None:
    found = only_error('rule a\n  if country == "CC"\n  then decide review = "x"\n')
    assert (found.line, found.column, found.end_column) == (12, 14, 16)
    assert found.message == "`==` is not an operator"
    assert found.help == 'equality is written with one `=`: `country = "CC"`'


def test_includes_any_of_a_string_asks_for_a_set() -> None:
    found = only_error('rule a\n  if items includes any "x"\n  then decide review = "x"\n')
    assert (found.line, found.column, found.end_column) == (12, 25, 28)
    assert found.message == 'expected a set after `includes any`, found string "x"'
    assert (
        found.help
        == 'after `includes any` comes a set: write `includes any <"x">`, or `includes "x"` for one value'
    )


def test_a_misspelt_keyword_gets_did_you_mean() -> None:
    found = only_error(
        'rule a\n  if risk\n  then decide review = "x"\n\nrule b\n  overide a\n  if risk\n  then decide review = "y"\n'
    )
    assert (found.line, found.column, found.end_column) == (16, 3, 10)
    assert found.help == "did you mean `overrides`?"


def test_a_name_far_from_every_keyword_gets_no_guess() -> None:
    found = only_error('rule a\n  zzzz a\n  if risk\n  then decide review = "x"\n')
    assert found.help is None or "did you mean" not in found.help
