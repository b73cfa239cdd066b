"""Author mistakes from issue 11 ("Messages"): each gets a code, a location, an underline and a help.

Each test writes the mistake as an author would, inside an otherwise valid policy, and checks the
one diagnostic it produces: where it points, what it underlines and the help it gives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.checker import check_file, check_text
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


def test_an_unclosed_set_is_found_past_a_less_than_in_a_string_or_comment() -> None:
    found = only_error(
        'rule a\n  if country in <CC, infosec\n  # a comment with "<"\n  then decide review = "x"\n'
    )
    assert found.message.startswith("expected `,` or `>`: the set (opened at line 12) is not closed")


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


def test_a_misspelt_keyword_inside_a_rule_gets_did_you_mean_with_the_rule_shape() -> None:
    found = only_error('rule a\n  if risk\n  unles country = "CC"\n  then decide review = "x"\n')
    assert (found.line, found.column, found.end_column) == (13, 3, 8)
    assert found.help == "did you mean `unless`? (a rule reads `if CONDITION then OUTCOME`)"
    found = only_error('rule a\n  if risk\n  then decied review = "x"\n')
    assert found.help is not None and found.help.startswith("did you mean `decide`? (write `decide NAME")


def test_a_name_far_from_every_keyword_gets_no_guess() -> None:
    found = only_error('rule a\n  zzzz a\n  if risk\n  then decide review = "x"\n')
    assert found.help is None or "did you mean" not in found.help


# -- follow-on errors -------------------------------------------------------------------------

OVERRIDDEN = """
rule b
  overrides a
  if risk
  then decide review = "y"
"""


def codes_of(path: Path) -> list[str]:
    return [d.code for d in check_file(path).diagnostics]


def test_a_rule_missing_then_is_one_error_not_also_unknown_rule(write_policy: Any) -> None:
    path = write_policy(DECLARATIONS + 'rule a\n  if risk\n  decide review = "x"\n' + OVERRIDDEN)
    (found,) = check_file(path).diagnostics
    assert (found.code, found.line, found.column) == ("syntax", 13, 3)
    assert found.help == "a rule reads `if CONDITION then OUTCOME`"


def test_an_unclosed_string_in_a_rule_is_one_error_not_also_unknown_rule(write_policy: Any) -> None:
    path = write_policy(
        DECLARATIONS + 'rule a\n  if country = "CC\n  then decide review = "x"\n' + OVERRIDDEN
    )
    (found,) = check_file(path).diagnostics
    assert (found.code, found.line, found.column) == ("syntax", 12, 16)
    assert found.help == 'add the closing `"`: a string cannot run over several lines'


def test_references_to_other_broken_declarations_are_quiet_but_real_mistakes_are_not(
    write_policy: Any,
) -> None:
    body = (
        DECLARATIONS
        + 'fact broken boolean "no colon"\nrule a\n  if broken and risky\n  then decide review = "x"\n'
    )
    found = check_file(write_policy(body)).diagnostics
    assert [(d.code, d.message) for d in found] == [
        ("syntax", found[0].message),
        ("unknown-fact", "unknown fact `risky`"),
    ]
    assert found[0].line == 11


def test_overriding_a_rule_that_does_not_exist_is_still_reported(write_policy: Any) -> None:
    path = write_policy(
        DECLARATIONS + 'rule a\n  if risk\n  decide review = "x"\n' + OVERRIDDEN.replace("a\n", "c\n", 1)
    )
    assert codes_of(path) == ["syntax", "unknown-rule"]


def test_a_mistyped_use_path_is_one_error_with_did_you_mean(write_policy: Any) -> None:
    body = 'use "vocab/trdae.vocab"\n\nrule a\n  if hr_abuse_risk and destination in <CC>\n  then require x\n'
    (found,) = check_file(write_policy(body)).diagnostics
    assert (found.code, found.line, found.column, found.end_column) == ("file-not-found", 7, 1, 24)
    assert found.help is not None and found.help.startswith("did you mean `trade.vocab`?")


def test_a_mistyped_suffix_in_a_use_or_table_path_gets_did_you_mean(write_policy: Any) -> None:
    (found,) = check_file(write_policy('use "vocab/trade.vocb"\n')).diagnostics
    assert found.code == "file-not-found"
    assert found.help is not None and found.help.startswith("did you mean `trade.vocab`?")
    table = 'enum K "k" = <a>\ntable t: K -> boolean "t" from "data/country-group.json"\n'
    (found,) = check_file(write_policy(table)).diagnostics
    assert (found.code, found.line) == ("table-data", 8)
    assert found.help is not None and found.help.startswith("did you mean `country-groups.json`?")


def test_a_use_without_quotes_is_one_error(write_policy: Any) -> None:
    body = "use vocab/trade.vocab\n\nrule a\n  if hr_abuse_risk and destination in <CC>\n  then require x\n"
    (found,) = check_file(write_policy(body)).diagnostics
    assert (found.code, found.line, found.column) == ("syntax", 7, 5)
    assert found.help == "descriptions, citations, ids and paths are written in double quotes"


def test_a_use_of_a_policy_is_one_error(write_policy: Any) -> None:
    other = HEADER + 'fact risk: boolean "r"\n'
    body = 'use "other.policy"\n\nrule a\n  if risk\n  then require x\n'
    assert codes_of(write_policy(body, files={"other.policy": other})) == ["use-not-vocabulary"]


def test_a_broken_declaration_in_a_vocabulary_quiets_its_uses_in_the_policy(write_policy: Any) -> None:
    vocab = (
        'vocabulary "v"\n  title "V"\n  version "1"\n  effective 2021-01-01\n  status draft\n  source "t"\n'
    )
    vocab += 'fact risk boolean "no colon"\nobligation x "an obligation"\n'
    body = 'use "v.vocab"\n\nrule a\n  if risk\n  then require x\n'
    found = check_file(write_policy(body, files={"v.vocab": vocab})).diagnostics
    assert [(d.code, d.file.endswith("v.vocab")) for d in found] == [("syntax", True)]


def test_a_misspelt_status_gets_did_you_mean_and_a_far_one_the_list() -> None:
    def status_help(status: str) -> str | None:
        header = HEADER.replace("status in-force", f"status {status}")
        (found,) = check_text(header, "m.policy").diagnostics
        assert found.code == "bad-status"
        return found.help

    assert (
        status_help("in_force")
        == "did you mean `in-force`? (the status is one of `draft`, `proposed`, `in-force`)"
    )
    assert status_help("final") == "the status is one of `draft`, `proposed`, `in-force`"
