"""The checker: one test per diagnostic code, asserting the message, the help and the exact span.

Each case is a small policy written inline; the expected diagnostic is written by hand: its
code, message, help line, and the source text its span underlines. Syntax errors are tested
for the mistakes authors actually make, and must speak in words (never Lark's token names).
The rendered gallery (fixtures/errors/, one file per code) is snapshotted in
test_errors_gallery.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine import api
from engine.checker import check_file, check_text
from engine.errors import Diagnostic, Severity, render
from engine.parser import parse
from tests.conftest import HEADER, LANGUAGE

REVIEW = (
    'enum Review "licence review policy" = <favorable, not_favorable, not_applicable>\n'
    'decision license_review: Review default not_applicable "how the application is reviewed"\n'
)


def underlined(diagnostic: Diagnostic, text: str) -> str:
    """The source text a diagnostic's span covers (one line, as the renderer underlines it)."""
    assert diagnostic.line == diagnostic.end_line, "multi-line spans are underlined to the line end"
    line = text.splitlines()[diagnostic.line - 1]
    return line[diagnostic.column - 1 : diagnostic.end_column - 1]


@dataclass(frozen=True)
class Expect:
    code: str
    body: str
    message: str
    help: str | None
    line: int
    underlined: str
    severity: Severity = Severity.ERROR


CASES: dict[str, Expect] = {
    "unknown-fact": Expect(
        "unknown-fact",
        'fact hr_abuse_risk: boolean "risk"\n'
        + REVIEW
        + "rule r if hr_abuse_rsk then decide license_review = favorable\n",
        "unknown fact `hr_abuse_rsk`",
        "did you mean `hr_abuse_risk`?",
        10,
        "hr_abuse_rsk",
    ),
    "unknown-fact (an enumeration value used as a condition)": Expect(
        "unknown-fact",
        'enum E "e" = <A, B>\n' + REVIEW + "rule r if A then decide license_review = favorable\n",
        "unknown fact `A`",
        "`A` is a value of `E`; compare a fact with it, e.g. `FACT = A`",
        10,
        "A",
    ),
    "unknown-fact (nothing close)": Expect(
        "unknown-fact",
        REVIEW + "rule r if zzz then decide license_review = favorable\n",
        "unknown fact `zzz`",
        'declare it: `fact NAME: TYPE "description"`',
        9,
        "zzz",
    ),
    "unknown-value": Expect(
        "unknown-value",
        'enum Country "c" = <CN, DE, US>\nfact destination: Country "d"\n'
        + REVIEW
        + "rule r if destination = GE then decide license_review = favorable\n",
        "`GE` is not a value of `Country`",
        "the values of `Country` are `CN`, `DE`, `US`",
        11,
        "GE",
    ),
    "unknown-value (in a set literal)": Expect(
        "unknown-value",
        'enum Reason "r" = <CC, NS>\nfact cr: set of Reason "r"\n'
        + REVIEW
        + "rule r if cr in <CC, XX> then decide license_review = favorable\n",
        "`XX` is not a value of `Reason`",
        "the values of `Reason` are `CC`, `NS`",
        11,
        "XX",
    ),
    "unknown-value (decided)": Expect(
        "unknown-value",
        'fact a: boolean "a"\n' + REVIEW + "rule r if a then decide license_review = favourable\n",
        "`favourable` is not a value of `Review`",
        "did you mean `favorable`?",
        10,
        "favourable",
    ),
    "unknown-value (a decision's default)": Expect(
        "unknown-value",
        'enum Review "r" = <favorable, not_applicable>\ndecision license_review: Review default nope "how"\n',
        "`nope` is not a value of `Review`",
        "the values of `Review` are `favorable`, `not_applicable`",
        8,
        "nope",
    ),
    "unknown-type": Expect(
        "unknown-type",
        'enum Country "c" = <CN, DE>\nfact destination: Countries "d"\n',
        "unknown type `Countries`",
        "did you mean `Country`?",
        8,
        "Countries",
    ),
    "unknown-type (of a decision)": Expect(
        "unknown-type",
        'decision d: Nope default x "d"\n',
        "decision `d` has unknown type `Nope`",
        "a decision's type is an enumeration, boolean, number, date or string",
        7,
        "Nope",
    ),
    "unknown-type (nothing close)": Expect(
        "unknown-type",
        'fact f: set of Zzz "f"\n',
        "unknown type `Zzz`",
        "a type is boolean, number, string, date, an enumeration, or `set of` one of those",
        7,
        "set of Zzz",
    ),
    "unknown-group": Expect(
        "unknown-group",
        'enum C "c" = <CN, DE>\nfact d: C "d"\ngroup embargoed = <CN>\n'
        + REVIEW
        + "rule r if d in embargoed_countries then decide license_review = favorable\n",
        "unknown group or set `embargoed_countries`",
        "did you mean `embargoed`?",
        12,
        "embargoed_countries",
    ),
    "unknown-group (includes any)": Expect(
        "unknown-group",
        'enum E "e" = <A, B>\nfact e: set of E "e"\n'
        + REVIEW
        + "rule r if e includes any nope then decide license_review = favorable\n",
        "unknown group or set `nope`",
        "declare it: `group NAME = <A, B>`",
        11,
        "nope",
    ),
    "unknown-table": Expect(
        "unknown-table",
        'fact eccn: string "e"\n'
        + REVIEW
        + 'rule r if paragraphs[eccn] = "x" then decide license_review = favorable\n',
        "unknown table `paragraphs`",
        'declare it: `table NAME: KEY -> VALUE "description" from "file.json"`',
        10,
        "paragraphs",
    ),
    "unknown-rule": Expect(
        "unknown-rule",
        'fact a: boolean "a"\n'
        + REVIEW
        + "rule general if a then decide license_review = favorable\n"
        + "rule exception overrides genral if a then decide license_review = not_favorable\n",
        "rule `exception` overrides unknown rule `genral`",
        "did you mean `general`?",
        11,
        "genral",
    ),
    "unknown-decision": Expect(
        "unknown-decision",
        'fact a: boolean "a"\n' + REVIEW + "rule r if a then decide licence_review = favorable\n",
        "unknown decision `licence_review`",
        "did you mean `license_review`?",
        10,
        "licence_review",
    ),
    "unknown-obligation": Expect(
        "unknown-obligation",
        'fact a: boolean "a"\nobligation human-rights review "weighed"\nrule r if a then require human-rights check\n',
        "unknown obligation `human-rights check`",
        "did you mean `human-rights review`?",
        9,
        "human-rights check",
    ),
    "unknown-recommendation": Expect(
        "unknown-recommendation",
        'fact a: boolean "a"\nrecommendation tailor-product "t"\nrule r if a then recommend tailor\n',
        "unknown recommendation `tailor`",
        "did you mean `tailor-product`?",
        9,
        "tailor",
    ),
    "type-mismatch (= on a set)": Expect(
        "type-mismatch",
        'enum R "r" = <NS, CC>\nfact cr: set of R "r"\n'
        + REVIEW
        + "rule r if cr = CC then decide license_review = favorable\n",
        "`=` compares single values, and `cr` is a set of R",
        "use `includes`, `includes any <...>` or `includes all <...>` on sets",
        11,
        "cr = CC",
    ),
    "type-mismatch (< on strings)": Expect(
        "type-mismatch",
        'fact s: string "s"\n' + REVIEW + 'rule r if s < "b" then decide license_review = favorable\n',
        "`<` needs numbers or dates, and `s` is a string",
        "use `=` or `!=`",
        10,
        's < "b"',
    ),
    "type-mismatch (a date with a number)": Expect(
        "type-mismatch",
        'fact d: date "d"\n' + REVIEW + "rule r if d < 3 then decide license_review = favorable\n",
        "cannot compare a date with a number",
        "both sides of a comparison must have the same type",
        10,
        "d < 3",
    ),
    "type-mismatch (includes on a scalar)": Expect(
        "type-mismatch",
        'fact s: string "s"\n' + REVIEW + 'rule r if s includes "b" then decide license_review = favorable\n',
        "`includes` needs a set, and `s` is a string",
        "for a single value use `=` or `in <...>`",
        10,
        "s",
    ),
    "type-mismatch (not a condition)": Expect(
        "type-mismatch",
        'enum E "e" = <A, B>\nfact e: E "e"\n'
        + REVIEW
        + "rule r if e then decide license_review = favorable\n",
        "`e` is a E, not a condition",
        "compare it, e.g. `e = VALUE`",
        11,
        "e",
    ),
    "type-mismatch (a quoted enumeration value)": Expect(
        "type-mismatch",
        'enum E "e" = <A, B>\nfact e: E "e"\n'
        + REVIEW
        + 'rule r if e = "A" then decide license_review = favorable\n',
        '"A" is a string, but a `E` value is expected',
        "enumeration values are written without quotes",
        11,
        '"A"',
    ),
    "type-mismatch (a derived fact of the wrong declared type)": Expect(
        "type-mismatch",
        'fact n: number "n"\ndefine big: boolean "b" = n\n',
        "`big` is declared `boolean` but computes `number`",
        None,
        8,
        "n",
    ),
    "type-mismatch (presence of a derived fact)": Expect(
        "type-mismatch",
        'fact n: optional string "n"\ndefine k "k" = n = "x"\n'
        + REVIEW
        + "rule r if k is present then decide license_review = favorable\n",
        "`k` is a derived fact: `is present` and `is missing` test optional facts",
        "a derived fact that reads a missing optional fact is unknown; test the facts it reads",
        11,
        "k is present",
    ),
    "type-mismatch (a set without context)": Expect(
        "type-mismatch",
        'enum E "e" = <A, B>\nenum F "f" = <A, C>\ngroup g = <A>\ndefine x "x" = g includes A\n',
        "cannot tell what kind of values this set holds",
        "put it on the right of `in` or `includes`, where the other side gives its type",
        10,
        "g",
    ),
    "duplicate-name": Expect(
        "duplicate-name",
        'fact destination: string "d"\nfact destination: string "again"\n',
        "`destination` is declared twice",
        "the first declaration is at t.policy:7:1; rename or remove one",
        8,
        'fact destination: string "again"',
    ),
    "duplicate-name (an enumeration and a fact)": Expect(
        "duplicate-name",
        'enum a "a" = <X>\nfact a: boolean "b"\n',
        "`a` is declared twice",
        "the first declaration is at t.policy:7:6; rename or remove one",
        8,
        'fact a: boolean "b"',
    ),
    "duplicate-name (a decision)": Expect(
        "duplicate-name",
        REVIEW + 'decision license_review: Review default favorable "again"\n',
        "decision `license_review` is declared twice",
        "the first declaration is at t.policy:8:10",
        9,
        "license_review",
    ),
    "duplicate-name (a fact used as a record)": Expect(
        "duplicate-name",
        'fact a: string "a"\nfact a.b: boolean "b"\n',
        "`a` is declared as a fact, and `a.b` uses it as a record",
        "the fact `a` is declared at t.policy:7:1; rename one of them",
        8,
        'fact a.b: boolean "b"',
    ),
    "duplicate-rule": Expect(
        "duplicate-rule",
        'fact a: boolean "a"\n'
        + REVIEW
        + "rule r if a then decide license_review = favorable\n"
        + "rule r if not a then decide license_review = not_favorable\n",
        "rule `r` is defined twice",
        "the first is at t.policy:10:6; rule ids must be unique",
        11,
        "r",
    ),
    "duplicate-value": Expect(
        "duplicate-value",
        'enum Reason "r" = <NS, CC, AT, CC>\n',
        "`CC` is listed twice in `Reason`",
        "remove the second one: an enumeration lists each value once",
        7,
        "CC",
    ),
    "missing-default": Expect(
        "missing-default",
        'enum Review "r" = <favorable, not_applicable>\ndecision license_review: Review "how"\n',
        "decision `license_review` has no default",
        "add `default VALUE` (one of `favorable`, `not_applicable`): the value when no rule decides",
        8,
        "license_review",
    ),
    "cyclic-override": Expect(
        "cyclic-override",
        'fact a: boolean "a"\n'
        + REVIEW
        + "rule r1 overrides r2 if a then decide license_review = favorable\n"
        + "rule r2 overrides r1 if a then decide license_review = not_favorable\n",
        "rules override each other in a circle: r1 -> r2 -> r1",
        "an exception cannot also be the rule it is an exception to; remove one `overrides`",
        11,
        "r1",
    ),
    "cyclic-override (itself)": Expect(
        "cyclic-override",
        'fact a: boolean "a"\n' + REVIEW + "rule r overrides r if a then decide license_review = favorable\n",
        "rule `r` overrides itself",
        "a rule cannot be an exception to itself; remove `r` from its `overrides`",
        10,
        "r",
    ),
    "cyclic-definition": Expect(
        "cyclic-definition",
        'fact a: boolean "a"\ndefine risky "r" = a or doubtful\ndefine doubtful "d" = risky\n',
        "`risky` depends on itself: risky -> doubtful -> risky",
        "a derived fact must be computable from facts, tables and other derived facts",
        8,
        "risky",
    ),
    "cyclic-definition (itself)": Expect(
        "cyclic-definition",
        'define x "x" = x\n',
        "`x` depends on itself: x -> x",
        "a derived fact must be computable from facts, tables and other derived facts",
        7,
        "x",
    ),
    "presence-of-required": Expect(
        "presence-of-required",
        'fact name: string "n"\n'
        + REVIEW
        + "rule r if name is present then decide license_review = favorable\n",
        "`name` is required, so it is always present",
        "mark the fact `optional`, or drop the test",
        10,
        "name is present",
        Severity.WARNING,
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_diagnostic(case: Expect) -> None:
    text = HEADER + case.body
    result = check_text(text, "t.policy")
    assert [d.code for d in result.diagnostics] == [case.code], [d.message for d in result.diagnostics]
    (diagnostic,) = result.diagnostics
    assert diagnostic.message == case.message
    assert diagnostic.help == case.help
    assert diagnostic.severity is case.severity
    assert diagnostic.file == "t.policy"
    assert diagnostic.line == case.line
    assert underlined(diagnostic, text) == case.underlined
    assert result.ok is (case.severity is not Severity.ERROR)
    assert (result.program is None) is (case.severity is Severity.ERROR)


def test_rendered_diagnostic_underlines_the_span() -> None:
    text = (
        HEADER
        + 'fact hr_abuse_risk: boolean "risk"\nobligation review "r"\nrule r if hr_abuse_rsk then require review\n'
    )
    (diagnostic,) = check_text(text, "t.policy").diagnostics
    assert render(diagnostic, {"t.policy": text}) == (
        "error[unknown-fact]: unknown fact `hr_abuse_rsk`\n"
        "  --> t.policy:9:11\n"
        "  |\n"
        "9 | rule r if hr_abuse_rsk then require review\n"
        "  |           ^^^^^^^^^^^^\n"
        "  = help: did you mean `hr_abuse_risk`?"
    )


# ---------------------------------------------------------------------------
# Codes that need other files


def test_header_codes() -> None:
    text = 'policy "p"\n  title "t"\n  title "again"\n  effective 2021-01-01\n  ends 2020-12-31\n  status final\n'
    result = check_text(text, "h.policy")
    found = [
        (d.code, d.message, d.help, d.line, underlined(d, text) if d.line == d.end_line else "(header)")
        for d in result.diagnostics
    ]
    assert found == [
        (
            "missing-header-field",
            "policy `p` has no `version`",
            'add `version "YYYY-MM-DD"`: the version name, usually its effective date',
            1,
            "(header)",
        ),
        (
            "missing-header-field",
            "policy `p` has no `source`",
            'add `source "..."`: the citation of the text this version implements',
            1,
            "(header)",
        ),
        (
            "duplicate-header-field",
            "`title` is given twice",
            "keep one; a version's header says each thing once",
            3,
            '"again"',
        ),
        (
            "bad-date-range",
            "the version ends (2020-12-31) before it takes effect (2021-01-01)",
            "`ends` is the last day in force and must not precede `effective`",
            5,
            "2020-12-31",
        ),
        (
            "bad-status",
            "unknown status `final`",
            "the status is one of `draft`, `proposed`, `in-force`",
            6,
            "final",
        ),
    ]


def test_a_vocabulary_needs_no_policy_header_fields() -> None:
    assert check_text('vocabulary "v"\nfact a: boolean "a"\n', "v.vocab").diagnostics == []


def test_rule_in_vocabulary() -> None:
    text = 'vocabulary "v"\nfact a: boolean "a"\nobligation o "o"\nrule r if a then require o\n'
    (diagnostic,) = check_text(text, "v.vocab").diagnostics
    assert (diagnostic.code, diagnostic.message, diagnostic.line, underlined(diagnostic, text)) == (
        "rule-in-vocabulary",
        "rule `r` is in a vocabulary",
        4,
        "r",
    )
    assert diagnostic.help == "vocabularies hold shared declarations; move the rule into a policy file"


def test_file_not_found(write_policy: Callable[..., Path]) -> None:
    path = write_policy('use "missing.vocab"\n')
    (diagnostic,) = check_file(path).diagnostics
    assert diagnostic.code == "file-not-found"
    assert diagnostic.message.startswith("cannot read `") and diagnostic.message.endswith(
        "missing.vocab`: No such file or directory"
    )
    assert diagnostic.help == "check the path; `use` paths are relative to the file that uses them"
    assert (diagnostic.line, diagnostic.column, diagnostic.end_column) == (7, 1, 20)


def test_file_not_found_for_the_checked_file_itself(tmp_path: Path) -> None:
    (diagnostic,) = check_file(tmp_path / "nowhere.policy").diagnostics
    assert diagnostic.code == "file-not-found"
    assert diagnostic.line == 0  # a file-level location
    assert diagnostic.location == diagnostic.file


def test_use_not_vocabulary(write_policy: Callable[..., Path]) -> None:
    path = write_policy('use "other.policy"\n', files={"other.policy": HEADER})
    (diagnostic,) = check_file(path).diagnostics
    assert (diagnostic.code, diagnostic.message, diagnostic.line) == (
        "use-not-vocabulary",
        "`other.policy` is a policy, not a vocabulary",
        7,
    )
    assert diagnostic.help == 'move the shared declarations into a file that starts with `vocabulary "ID"`'


def test_cyclic_use(write_policy: Callable[..., Path]) -> None:
    path = write_policy(
        'use "a.vocab"\n',
        files={"a.vocab": 'vocabulary "a"\nuse "b.vocab"\n', "b.vocab": 'vocabulary "b"\nuse "a.vocab"\n'},
    )
    (diagnostic,) = check_file(path).diagnostics
    assert diagnostic.code == "cyclic-use"
    assert diagnostic.file.endswith("b.vocab") and diagnostic.line == 2
    assert diagnostic.message.startswith("`a.vocab` is already being used further up: ")
    assert [Path(p.strip()).name for p in diagnostic.message.split(": ", 1)[1].split("->")] == [
        "test.policy",
        "a.vocab",
        "b.vocab",
        "a.vocab",
    ]
    assert diagnostic.help == "remove one of the `use` lines"


def test_a_vocabulary_used_twice_is_read_once(write_policy: Callable[..., Path]) -> None:
    path = write_policy(
        'use "a.vocab"\nuse "b.vocab"\n',
        files={
            "a.vocab": 'vocabulary "a"\nuse "c.vocab"\n',
            "b.vocab": 'vocabulary "b"\nuse "c.vocab"\n',
            "c.vocab": 'vocabulary "c"\nfact shared: boolean "declared once"\n',
        },
    )
    assert check_file(path).diagnostics == []


def test_duplicate_name_between_a_policy_and_its_vocabulary(write_policy: Callable[..., Path]) -> None:
    path = write_policy('use "vocab/trade.vocab"\nfact quantity: number "again"\n')
    (diagnostic,) = check_file(path).diagnostics
    assert (diagnostic.code, diagnostic.message, diagnostic.line) == (
        "duplicate-name",
        "`quantity` is declared twice",
        8,
    )
    assert "trade.vocab:" in (diagnostic.help or "")


TABLE_DATA: list[tuple[str, str]] = [
    ("not json", "in `t.json`, line 1 column 1: not valid JSON (Expecting value)"),
    ('{"rows": []}', "in `t.json`, the top level: expected an object with an `entries` list"),
    ('{"entries": [{"key": "CN"}]}', "in `t.json`, entries[0]: expected an object with `key` and `value`"),
    (
        '{"entries": [{"key": "FR", "value": "x"}]}',
        "in `t.json`, entries[0].key: `FR` is not a value of `Country`",
    ),
    ('{"entries": [{"key": "CN", "value": 3}]}', "in `t.json`, entries[0].value: expected a string, found 3"),
    (
        '{"entries": [{"key": "CN", "value": "x", "effective": "2020-13-01"}]}',
        "in `t.json`, entries[0].effective: `2020-13-01` is not a date (YYYY-MM-DD)",
    ),
    (
        '{"entries": [{"key": "CN", "value": "a", "ends": "2021-01-01"}, {"key": "CN", "value": "b", "effective": "2021-01-01"}]}',
        "in `t.json`, key `CN`: two entries are in force on the same day; end one before the next begins",
    ),
]


@pytest.mark.parametrize(
    ("data", "message"), TABLE_DATA, ids=[m.split(": ", 1)[0][12:] or m for _, m in TABLE_DATA]
)
def test_table_data(write_policy: Callable[..., Path], data: str, message: str) -> None:
    body = 'enum Country "c" = <CN, DE>\ntable t: Country -> string "t" from "t.json"\n'
    path = write_policy(body, files={"t.json": data})
    (diagnostic,) = check_file(path).diagnostics
    assert diagnostic.code == "table-data"
    assert diagnostic.message == message
    # at the `table` line when the file is not readable JSON (its text is never quoted), else at
    # the offending value inside the JSON file itself
    assert (diagnostic.file, diagnostic.line) == (str(path), 8) or diagnostic.file.endswith("t.json")


def test_table_data_missing_file(write_policy: Callable[..., Path]) -> None:
    path = write_policy('table t: string -> string "t" from "nowhere.json"\n')
    (diagnostic,) = check_file(path).diagnostics
    assert diagnostic.code == "table-data"
    assert diagnostic.message == "in `nowhere.json`, the file: cannot be read (No such file or directory)"


def test_conflict_is_proven_with_a_witness(in_root: Path) -> None:
    (result,) = api.check(["fixtures/language/conflict.policy"])
    (diagnostic,) = result.diagnostics
    assert diagnostic.code == "conflict"
    assert diagnostic.message == (
        "rules `government-favorable` and `risk-not-favorable` can both take effect and decide "
        "`license_review` differently (`favorable` and `not_favorable`)"
    )
    assert diagnostic.help == (
        "for example when destination = CN, end_user.type = government, hr_abuse_risk = true; "
        "make one an exception to the other with `overrides government-favorable` (or the reverse), "
        "or narrow a condition"
    )
    assert (diagnostic.line, diagnostic.column, diagnostic.end_column) == (17, 6, 24)


def test_no_conflict_where_precedence_settles_it(in_root: Path) -> None:
    (result,) = api.check(["fixtures/language/precedence.policy"])
    assert result.diagnostics == []


def test_no_conflict_when_the_rules_cannot_fire_together(write_policy: Callable[..., Path]) -> None:
    path = write_policy(
        'use "vocab/trade.vocab"\n'
        "rule a if destination = CN then decide license_review = favorable\n"
        "rule b if destination = DE then decide license_review = denial\n"
    )
    (result,) = api.check([path])
    assert result.diagnostics == []


# ---------------------------------------------------------------------------
# Everything checks clean: the fixtures, the bundled policies, and the brief's sentence


def test_the_brief_sentence_checks_clean_with_the_vocabulary(write_policy: Callable[..., Path]) -> None:
    vocab = (LANGUAGE / "vocab" / "trade.vocab").read_text(encoding="utf-8")
    assert "fact control_reason: set of Reason" in vocab and "enum Reason" in vocab
    assert re.search(r"enum Reason [^\n]*<[^>]*\bCC\b[^>]*\binfosec\b", vocab)
    assert re.search(r"enum Capability [^\n]*<[^>]*\bsurveillance\b", vocab)
    path = write_policy(
        'use "vocab/trade.vocab"\n'
        "rule surveillance-review\n"
        "  if control_reason in <CC, infosec> and capability includes surveillance then require human-rights review\n"
    )
    result = check_file(path)
    assert result.diagnostics == []
    assert result.program is not None
    (rule,) = result.program.rules
    assert rule.id == "surveillance-review"


@pytest.mark.parametrize("folder", ["fixtures/language", "policies"])
def test_fixture_and_bundled_policies_check_clean(in_root: Path, folder: str) -> None:
    results = api.check([folder])
    assert results
    problems = [
        d
        for r in results
        for d in r.diagnostics
        if not (d.code == "conflict" and d.file.endswith("conflict.policy"))
    ]
    assert problems == []


def test_checking_collects_every_problem_not_only_the_first() -> None:
    text = (
        HEADER
        + 'fact a: boolean "a"\nobligation o "o"\nrule r1 if b then require o\nrule r2 if a then require p\n'
    )
    result = check_text(text, "t.policy")
    assert [(d.code, d.line) for d in result.diagnostics] == [("unknown-fact", 9), ("unknown-obligation", 10)]


def test_diagnostics_are_in_source_order() -> None:
    text = HEADER + "rule r2 if zz then require q\n" + 'fact a: Nope "a"\n'
    result = check_text(text, "t.policy")
    keys = [d.sort_key() for d in result.diagnostics]
    assert keys == sorted(keys)
    assert [d.line for d in result.diagnostics] == [7, 7, 8]


# ---------------------------------------------------------------------------
# Syntax errors say what was expected, in words

SYNTAX: dict[str, tuple[str, str, str | None, tuple[int, int], str]] = {
    # name: (body after HEADER, message, help, (line, column), underlined text)
    "missing condition after and": (
        "rule r\n  if a and\n  then require x\n",
        "expected a condition after `and`, found `then`",
        "a condition is a fact, a comparison or a test such as `x in <A, B>`",
        (9, 3),
        "then",
    ),
    "missing condition after and, at the end of the file": (
        "rule r\n  if a and",
        "expected a condition after `and`",
        "a condition is a fact, a comparison or a test such as `x in <A, B>`",
        (8, 11),
        "",
    ),
    "missing then": (
        "rule r\n  if a\n  require x\n",
        "expected `then` before the outcome, found `require`",
        "a rule reads `if CONDITION then OUTCOME`",
        (9, 3),
        "require",
    ),
    "two conditions without an operator": (
        "rule r\n  if a b then require x\n",
        "expected `then`, or `and`, `or`, `unless` or a comparison to continue the condition, found name `b`",
        "a rule reads `if CONDITION then OUTCOME`",
        (8, 8),
        "b",
    ),
    "nothing after then": (
        "rule r\n  if a then\n",
        "expected an outcome after `then`",
        "write `decide NAME = VALUE`, `require OBLIGATION` or `recommend STEP`",
        (8, 12),
        "",
    ),
    "unclosed parenthesis": (
        "rule r\n  if (a and b\n  then require x\n",
        "expected `)` to close the parenthesis, found `then`",
        "every `(` needs a matching `)`",
        (9, 3),
        "then",
    ),
    "unclosed parenthesis at the end of the file": (
        "rule r\n  if (a and b",
        "expected `)` to close the parenthesis",
        "every `(` needs a matching `)`",
        (8, 14),
        "",
    ),
    "unclosed string": (
        'rule r "the description\n  if a then require x\n',
        "this string is not closed on its line",
        'add the closing `"`: a string cannot run over several lines',
        (7, 8),
        '"',
    ),
    "keyword used as a name": (
        'fact in: boolean "x"\n',
        "`in` is a keyword and cannot be used as a name here",
        "choose another name, for example with a suffix: `in_value`",
        (7, 6),
        "in",
    ),
    "keyword used as a rule id": (
        "rule then if a then require x\n",
        "`then` is a keyword and cannot be used as a name here",
        "choose another name, for example with a suffix: `then_value`",
        (7, 6),
        "then",
    ),
    "keyword used as an enumeration value": (
        'enum Outcome "o" = <decide, other>\n',
        "`decide` is a keyword and cannot be used as a name here",
        "choose another name, for example with a suffix: `decide_value`",
        (7, 21),
        "decide",
    ),
    "single quotes": (
        "rule r 'description'\n  if a then require x\n",
        "unexpected character `'`",
        'strings use double quotes: `"..."`',
        (7, 8),
        "'",
    ),
    "braces": (
        "rule r {\n  if a then require x }\n",
        "unexpected character `{`",
        "declarations are not braced: a declaration runs until the next keyword",
        (7, 8),
        "{",
    ),
    "missing set after in": (
        "rule r if a in then require x\n",
        "expected a set after `in`, found `then`",
        "write a set literal like `<CC, infosec>`, or a group, table or set-valued fact",
        (7, 16),
        "then",
    ),
    "missing value after a comparison": (
        "rule r if a = then require x\n",
        "expected a value after `=`, found `then`",
        None,
        (7, 15),
        "then",
    ),
    "citation without quotes": (
        "rule r cite section if a then require x\n",
        "expected a citation in double quotes after `cite`, found name `section`",
        'write the section or paragraph in double quotes, for example `cite "s. 2(1)"`',
        (7, 13),
        "section",
    ),
    "fact without a colon": (
        'fact a "x"\n',
        'expected `:` and a type after the fact\'s name, found string "x"',
        'a fact reads `fact NAME: TYPE "description"`',
        (7, 8),
        '"x"',
    ),
    "fact without a description": (
        'fact a: boolean\nfact b: boolean "b"\n',
        "expected the fact's description in double quotes",
        'a fact reads `fact NAME: TYPE "description"`',
        (7, 16),
        "",
    ),
    "unclosed set literal": (
        "rule r if a in <A, B then require x\n",
        "expected `,` or `>`: the set (opened at line 7) is not closed, found `then`",
        "close the set with `>` after its last item: `<CC, infosec>`",
        (7, 22),
        "then",
    ),
    "decide without =": (
        "rule r if a then decide x y\n",
        "unexpected name `y`, expected `=`",
        None,
        (7, 27),
        "y",
    ),
}


@pytest.mark.parametrize("name", list(SYNTAX))
def test_syntax_error_messages(name: str) -> None:
    body, message, help_text, (line, column), text_under = SYNTAX[name]
    text = HEADER + body
    result = parse(text, "s.policy")
    (diagnostic,) = result.diagnostics
    assert diagnostic.code == "syntax"
    assert diagnostic.message == message
    assert diagnostic.help == help_text
    assert (diagnostic.line, diagnostic.column) == (line, column)
    assert underlined(diagnostic, text) == text_under


def test_syntax_error_in_the_header() -> None:
    text = 'policy "p"\n  titel "t"\n'
    (diagnostic,) = parse(text, "s.policy").diagnostics
    assert diagnostic.message == "expected a header field or a declaration, found name `titel`"
    assert diagnostic.help == "did you mean `title`?"
    assert underlined(diagnostic, text) == "titel"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("   \n\n", "the file is empty"),
        ("# only a comment\n", "unexpected end of file, expected `policy` or `vocabulary`"),
        ('fact a: boolean "a"\n', "unexpected `fact`, expected `policy` or `vocabulary`"),
    ],
)
def test_files_without_a_header(text: str, message: str) -> None:
    result = parse(text, "e.policy")
    assert result.tree is None
    assert [d.message for d in result.diagnostics] == [message]
    assert all(d.line >= 1 for d in result.diagnostics)


def test_an_empty_file_is_reported_by_the_checker() -> None:
    result = check_text("", "e.policy")
    (diagnostic,) = result.diagnostics
    assert (diagnostic.code, diagnostic.message, diagnostic.help) == (
        "syntax",
        "the file is empty",
        'a file starts with `policy "ID"` or `vocabulary "ID"`',
    )
    assert result.program is None


# Typical mistakes; none of their messages may show Lark's names for tokens.
MISTAKES = [
    "rule r if a and then require x",
    "rule r if a then",
    "rule r if (a",
    "rule r if a) then require x",
    "rule r if a b c then require x",
    "rule r if a == b then require x",
    "rule r if a = b = c then require x",
    "rule r if a in <A B> then require x",
    "rule r if a in <A,> then require x",
    "rule r if t[ then require x",
    "rule r if t[a then require x",
    "rule r if a is then require x",
    "rule r if a includes any then require x",
    "rule r if then require x",
    "rule r then require x",
    "rule r if a then decide",
    "rule r if a then decide d =",
    "rule r if a then require",
    "rule r if a then require x and",
    "rule r overrides if a then require x",
    "rule r cite if a then require x",
    "rule if a then require x",
    "fact a boolean",
    "fact a: set boolean",
    "fact a: set of",
    "fact: boolean",
    "enum E = <A>",
    'enum E "e" = A, B',
    'group g "g" <A>',
    'table t: A -> B "t"',
    'table t: A B "t" from "x"',
    'define d "d"',
    'define d = "d"',
    'decision d: E default "d"',
    "obligation",
    'recommendation r cite "x"',
    "use ../x.vocab",
    'rule r if a then require x y "z"',
    "rule r if a then decide d = v w",
    "policy",
]
LARK_NAMES = re.compile(
    r"\$END|__ANON|\b(RPAR|LPAR|LSQB|RSQB|LESSTHAN|MORETHAN|COMMA|COLON|EQUAL|DOT|NAME|STRING)\b"
)


@pytest.mark.parametrize("body", MISTAKES)
def test_syntax_errors_never_show_lark_token_names(body: str) -> None:
    result = parse(HEADER + body + "\n", "m.policy")
    assert result.diagnostics, "the mistake must be reported"
    for diagnostic in result.diagnostics:
        assert diagnostic.code == "syntax"
        assert not LARK_NAMES.search(diagnostic.message), diagnostic.message
        prose = re.sub(r"`[^`]*`", "", diagnostic.help or "")  # placeholders in examples are fine
        assert not LARK_NAMES.search(prose), diagnostic.help
        assert diagnostic.line >= 7 and diagnostic.column >= 1
