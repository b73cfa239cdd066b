"""The parser: every construct of docs/language.md, exact spans, comments, equality without spans.

Expected trees are written by hand with the node types of `engine.syntax`; spans are left out
of them on purpose, since node equality ignores spans (that is itself tested below). The
syntax trees of the example policies under fixtures/language/ are snapshots (JSON from
`syntax.to_data`, spans included), so any change to what a file parses to shows up in review.
"""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from engine import syntax as s
from engine.errors import Span
from engine.parser import parse
from tests.conftest import HEADER, LANGUAGE


def parse_ok(text: str, path: str = "test.policy") -> s.SourceFile:
    result = parse(text, path)
    assert result.diagnostics == [], [d.message for d in result.diagnostics]
    assert result.tree is not None
    return result.tree


def condition(expr: str) -> s.Expr:
    """The condition of `rule r if EXPR then require x`, parsed in a policy."""
    return parse_ok(HEADER + f"rule r if {expr} then require x\n").rules[0].condition


def item(text: str) -> s.Item:
    tree = parse_ok(HEADER + text + "\n")
    assert len(tree.items) == 1
    return tree.items[0]


def ref(dotted: str) -> s.Ref:
    return s.Ref(tuple(dotted.split(".")))


def lit(value: str | Decimal | date | bool) -> s.Literal:
    return s.Literal(value)


def words(text: str) -> s.Ident:
    return s.Ident(text)


# ---------------------------------------------------------------------------
# Conditions: each row of docs/language.md §8.1, plus literals and precedence

CONDITIONS: list[tuple[str, s.Expr]] = [
    # logic
    ("a and b", s.And((ref("a"), ref("b")))),
    ("a or b", s.Or((ref("a"), ref("b")))),
    ("not a", s.Not(ref("a"))),
    ("(a)", ref("a")),
    ("a and b and c", s.And((ref("a"), ref("b"), ref("c")))),
    ("a or b and c", s.Or((ref("a"), s.And((ref("b"), ref("c")))))),
    ("(a or b) and c", s.And((s.Or((ref("a"), ref("b"))), ref("c")))),
    ("not a and b", s.And((s.Not(ref("a")), ref("b")))),
    ("not not a", s.Not(s.Not(ref("a")))),
    ("not (a or b)", s.Not(s.Or((ref("a"), ref("b"))))),
    (
        "not civil_disorder and (a or b)",
        s.And((s.Not(ref("civil_disorder")), s.Or((ref("a"), ref("b"))))),
    ),
    # bare facts, dotted paths
    ("hr_abuse_risk", ref("hr_abuse_risk")),
    ("end_user.type.kind", ref("end_user.type.kind")),
    # comparisons
    ("end_user.type = government", s.Compare("=", ref("end_user.type"), ref("government"))),
    ("destination != US", s.Compare("!=", ref("destination"), ref("US"))),
    ("quantity < 10", s.Compare("<", ref("quantity"), lit(Decimal(10)))),
    ("quantity <= -2", s.Compare("<=", ref("quantity"), lit(Decimal(-2)))),
    ("quantity > 10.5", s.Compare(">", ref("quantity"), lit(Decimal("10.5")))),
    ("application_date >= 2020-10-06", s.Compare(">=", ref("application_date"), lit(date(2020, 10, 6)))),
    ('eccn = "0A978"', s.Compare("=", ref("eccn"), lit("0A978"))),
    ("flag = true", s.Compare("=", ref("flag"), lit(True))),
    ("flag != false", s.Compare("!=", ref("flag"), lit(False))),
    ("a = b", s.Compare("=", ref("a"), ref("b"))),
    # membership and sets
    (
        "control_reason in <CC, infosec>",
        s.Member(ref("control_reason"), s.SetLiteral((ref("CC"), ref("infosec")))),
    ),
    ("eccn in water_cannon_eccns", s.Member(ref("eccn"), ref("water_cannon_eccns"))),
    ("x in <>", s.Member(ref("x"), s.SetLiteral(()))),
    (
        'eccn in <"0A977", "0A978">',
        s.Member(ref("eccn"), s.SetLiteral((lit("0A977"), lit("0A978")))),
    ),
    ("n in <1, 2.5>", s.Member(ref("n"), s.SetLiteral((lit(Decimal(1)), lit(Decimal("2.5")))))),
    ("capability includes surveillance", s.Includes(ref("capability"), ref("surveillance"), "one")),
    ('tags includes "urgent"', s.Includes(ref("tags"), lit("urgent"), "one")),
    (
        "capability includes any hr_capabilities",
        s.Includes(ref("capability"), ref("hr_capabilities"), "any"),
    ),
    (
        "control_reason includes all <CC, NS>",
        s.Includes(ref("control_reason"), s.SetLiteral((ref("CC"), ref("NS"))), "all"),
    ),
    # tables
    ("eccn in cc_column_1", s.Member(ref("eccn"), ref("cc_column_1"))),
    (
        "country_groups[destination] includes D5",
        s.Includes(s.Lookup(s.Ident("country_groups"), ref("destination")), ref("D5"), "one"),
    ),
    (
        'paragraph[eccn] = "(a)(1)"',
        s.Compare("=", s.Lookup(s.Ident("paragraph"), ref("eccn")), lit("(a)(1)")),
    ),
    # presence
    ("end_user.name is missing", s.Presence(ref("end_user.name"), False)),
    ("end_user.name is present", s.Presence(ref("end_user.name"), True)),
    # names that look like keywords: case matters, so `IN` is a name
    ("destination = IN", s.Compare("=", ref("destination"), ref("IN"))),
    ("x in <IN, OR, AND>", s.Member(ref("x"), s.SetLiteral((ref("IN"), ref("OR"), ref("AND"))))),
    # strings: escapes are decoded, `#` inside a string is not a comment
    (r'name = "say \"hi\" \\ #1"', s.Compare("=", ref("name"), lit('say "hi" \\ #1'))),
]


@pytest.mark.parametrize(("text", "expected"), CONDITIONS, ids=[c[0] for c in CONDITIONS])
def test_condition_forms(text: str, expected: s.Expr) -> None:
    assert condition(text) == expected


@pytest.mark.parametrize(("text", "_"), CONDITIONS, ids=[c[0] for c in CONDITIONS])
def test_unparse_reads_back_to_the_same_tree(text: str, _: s.Expr) -> None:
    tree = condition(text)
    assert condition(s.unparse(tree)) == tree


def test_unparse_keeps_only_needed_parentheses() -> None:
    assert s.unparse(condition("(a or b) and not (c)")) == "(a or b) and not c"
    assert s.unparse(condition("((a and b)) or c")) == "a and b or c"
    assert s.unparse(condition("not (a and b)")) == "not (a and b)"


def test_the_brief_sentence_parses_as_written_as_the_body_of_a_rule() -> None:
    text = (
        HEADER + "rule surveillance-review\n"
        "  if control_reason in <CC, infosec> and capability includes surveillance"
        " then require human-rights review\n"
    )
    (rule,) = parse_ok(text).rules
    assert rule == s.RuleDecl(
        id=s.Ident("surveillance-review"),
        description=None,
        citations=(),
        overrides=(),
        condition=s.And(
            (
                s.Member(ref("control_reason"), s.SetLiteral((ref("CC"), ref("infosec")))),
                s.Includes(ref("capability"), ref("surveillance"), "one"),
            )
        ),
        unless=(),
        outcomes=(s.Require(words("human-rights review")),),
    )


# ---------------------------------------------------------------------------
# Declarations: each section of docs/language.md


def test_policy_header_with_every_field() -> None:
    tree = parse_ok(
        'policy "ear-742.7"\n'
        '  title "Crime control"\n'
        '  version "2020-10-06"\n'
        "  effective 2020-10-06\n"
        "  ends 2024-07-28\n"
        "  status in-force\n"
        '  source "15 CFR 742.7"\n'
        '  description "Longer prose"\n'
    )
    assert tree.header == s.Header(
        "policy",
        "ear-742.7",
        (
            s.HeaderField("title", "Crime control"),
            s.HeaderField("version", "2020-10-06"),
            s.HeaderField("effective", date(2020, 10, 6)),
            s.HeaderField("ends", date(2024, 7, 28)),
            s.HeaderField("status", "in-force"),
            s.HeaderField("source", "15 CFR 742.7"),
            s.HeaderField("description", "Longer prose"),
        ),
    )
    assert tree.items == ()
    assert tree.header.get("ends") == s.HeaderField("ends", date(2024, 7, 28))
    assert tree.header.get("nothing") is None


def test_vocabulary_header() -> None:
    tree = parse_ok('vocabulary "trade"\n  title "Facts"\n')
    assert tree.header == s.Header("vocabulary", "trade", (s.HeaderField("title", "Facts"),))


DECLARATIONS: list[tuple[str, s.Item]] = [
    ('use "../vocab/trade.vocab"', s.Use("../vocab/trade.vocab")),
    (
        'enum Reason "reasons for control" = <NS, CC, infosec>',
        s.EnumDecl(
            s.Ident("Reason"), "reasons for control", (s.Ident("NS"), s.Ident("CC"), s.Ident("infosec"))
        ),
    ),
    ('fact eccn: string "the ECCN"', s.FactDecl(("eccn",), s.TypeExpr("string"), "the ECCN")),
    (
        'fact control_reason: set of Reason "reasons"',
        s.FactDecl(("control_reason",), s.TypeExpr("Reason", is_set=True), "reasons"),
    ),
    (
        'fact end_user.name: optional string "name"',
        s.FactDecl(("end_user", "name"), s.TypeExpr("string", optional=True), "name"),
    ),
    (
        'fact tags: optional set of string "tags"',
        s.FactDecl(("tags",), s.TypeExpr("string", is_set=True, optional=True), "tags"),
    ),
    (
        'group water "water cannon ECCNs" = <"0A977", "0D977">',
        s.GroupDecl(s.Ident("water"), "water cannon ECCNs", s.SetLiteral((lit("0A977"), lit("0D977")))),
    ),
    (
        "group hr = <surveillance, recording>",
        s.GroupDecl(s.Ident("hr"), None, s.SetLiteral((ref("surveillance"), ref("recording")))),
    ),
    (
        'table country_groups: Country -> set of CountryGroup "groups" from "../data/cg.json"',
        s.TableDecl(
            s.Ident("country_groups"),
            s.TypeExpr("Country"),
            s.TypeExpr("CountryGroup", is_set=True),
            "groups",
            "../data/cg.json",
        ),
    ),
    (
        'define groups: set of CountryGroup "groups of the destination" = country_groups[destination]',
        s.DefineDecl(
            s.Ident("groups"),
            s.TypeExpr("CountryGroup", is_set=True),
            "groups of the destination",
            s.Lookup(s.Ident("country_groups"), ref("destination")),
        ),
    ),
    (
        'define embargoed "embargoed" = groups includes D5 or destination = MO',
        s.DefineDecl(
            s.Ident("embargoed"),
            None,
            "embargoed",
            s.Or(
                (
                    s.Includes(ref("groups"), ref("D5"), "one"),
                    s.Compare("=", ref("destination"), ref("MO")),
                )
            ),
        ),
    ),
    (
        'decision license_review: Review default not_applicable "how it is reviewed"',
        s.DecisionDecl(
            s.Ident("license_review"), s.TypeExpr("Review"), s.Ref(("not_applicable",)), "how it is reviewed"
        ),
    ),
    (
        'decision subject_to_ear: boolean default false "typed"',
        s.DecisionDecl(s.Ident("subject_to_ear"), s.TypeExpr("boolean"), s.Literal(False), "typed"),
    ),
    (
        'decision percent: number scale 2 rounding half_up default 0 "scaled"',
        s.DecisionDecl(
            s.Ident("percent"),
            s.TypeExpr("number", scale=2, rounding=s.Ident("half_up")),
            s.Literal(Decimal(0)),
            "scaled",
        ),
    ),
    (
        'decision license_review: Review "no default: the checker says missing-default"',
        s.DecisionDecl(
            s.Ident("license_review"),
            s.TypeExpr("Review"),
            None,
            "no default: the checker says missing-default",
        ),
    ),
    (
        'obligation human-rights review "weighed"',
        s.ObligationDecl(words("human-rights review"), "weighed"),
    ),
    (
        'recommendation review-product "Review it" cite "step 1" cite "a", "b"',
        s.RecommendationDecl(words("review-product"), "Review it", ("step 1", "a", "b")),
    ),
    ('recommendation tailor "Tailor it"', s.RecommendationDecl(words("tailor"), "Tailor it", ())),
]


@pytest.mark.parametrize(("text", "expected"), DECLARATIONS, ids=[d[0][:40] for d in DECLARATIONS])
def test_declarations(text: str, expected: s.Item) -> None:
    assert item(text) == expected


def test_rule_with_every_part() -> None:
    rule = item(
        'rule hr-risk "A risk removes the presumption"\n'
        '  cite "15 CFR 742.7(b)(1)"\n'
        '  cite "85 FR 63007", "85 FR 63009"\n'
        "  overrides cc-favorable, other\n"
        "  if control_reason in <CC> and (civil_disorder or hr_abuse_risk)\n"
        "  unless destination in cc_exempt\n"
        "  unless destination = US\n"
        "  then decide license_review = not_favorable and require human-rights review"
        " and recommend review-product-capabilities\n"
    )
    assert rule == s.RuleDecl(
        id=s.Ident("hr-risk"),
        description="A risk removes the presumption",
        citations=("15 CFR 742.7(b)(1)", "85 FR 63007", "85 FR 63009"),
        overrides=(s.Ident("cc-favorable"), s.Ident("other")),
        condition=s.And(
            (
                s.Member(ref("control_reason"), s.SetLiteral((ref("CC"),))),
                s.Or((ref("civil_disorder"), ref("hr_abuse_risk"))),
            )
        ),
        unless=(
            s.Member(ref("destination"), ref("cc_exempt")),
            s.Compare("=", ref("destination"), ref("US")),
        ),
        outcomes=(
            s.Decide(s.Ident("license_review"), s.Ref(("not_favorable",))),
            s.Require(words("human-rights review")),
            s.Recommend(words("review-product-capabilities")),
        ),
    )


def test_cite_and_overrides_may_come_in_any_order() -> None:
    rule = item('rule r overrides a cite "x" overrides b cite "y" if c then require o')
    assert isinstance(rule, s.RuleDecl)
    assert rule.citations == ("x", "y")
    assert [o.name for o in rule.overrides] == ["a", "b"]


def test_source_file_lists_items_in_order_and_rules() -> None:
    tree = parse_ok(
        HEADER + 'fact a: boolean "a"\nrule r1 if a then require x\nrule r2 if a then require y\n'
    )
    assert [type(i).__name__ for i in tree.items] == ["FactDecl", "RuleDecl", "RuleDecl"]
    assert [r.id.name for r in tree.rules] == ["r1", "r2"]


def test_layout_is_free() -> None:
    spread = parse_ok(HEADER + "rule\n r\n if\n a\n and\n b\n then\n require\n x\n")
    packed = parse_ok(HEADER + "rule r if a and b then require x")
    assert spread == packed


# ---------------------------------------------------------------------------
# Spans


SPAN_TEXT = """policy "p"
  title "t"
  version "1"
  effective 2021-01-01
  status in-force
  source "s"
rule hr-risk "why"
  if control_reason in <CC, infosec>
     and capability includes surveillance
  then require human-rights review
"""


def test_spans_are_exact_lines_and_columns() -> None:
    tree = parse_ok(SPAN_TEXT, "f.policy")
    (rule,) = tree.rules
    assert rule.span == Span("f.policy", 7, 1, 10, 35)
    assert rule.id.span == Span("f.policy", 7, 6, 7, 13)
    cond = rule.condition
    assert isinstance(cond, s.And)
    assert cond.span == Span("f.policy", 8, 6, 9, 42)
    member, includes = cond.operands
    assert isinstance(member, s.Member) and isinstance(includes, s.Includes)
    assert member.span == Span("f.policy", 8, 6, 8, 37)
    assert member.item.span == Span("f.policy", 8, 6, 8, 20)
    assert isinstance(member.collection, s.SetLiteral)
    assert member.collection.span == Span("f.policy", 8, 24, 8, 37)
    assert [i.span for i in member.collection.items] == [
        Span("f.policy", 8, 25, 8, 27),
        Span("f.policy", 8, 29, 8, 36),
    ]
    assert includes.span == Span("f.policy", 9, 10, 9, 42)
    assert includes.item.span == Span("f.policy", 9, 30, 9, 42)
    (outcome,) = rule.outcomes
    assert outcome.span == Span("f.policy", 10, 8, 10, 35)
    assert isinstance(outcome, s.Require)
    assert outcome.name.span == Span("f.policy", 10, 16, 10, 35)


def test_header_spans() -> None:
    tree = parse_ok(SPAN_TEXT, "f.policy")
    assert tree.header.span.line == 1 and tree.header.span.col == 1
    effective = tree.header.get("effective")
    assert effective is not None
    assert effective.span == Span("f.policy", 4, 13, 4, 23)


def test_span_of_a_declaration_and_its_name() -> None:
    tree = parse_ok(HEADER + '\n\n  fact   end_user.name: optional string "n"\n', "f.policy")
    (fact,) = tree.items
    assert isinstance(fact, s.FactDecl)
    assert fact.span == Span("f.policy", 9, 3, 9, 44)
    assert fact.type.span == Span("f.policy", 9, 25, 9, 40)


def test_every_node_of_the_example_policies_has_a_span_inside_its_file() -> None:
    for path in sorted(LANGUAGE.rglob("*.policy")) + sorted(LANGUAGE.rglob("*.vocab")):
        text = path.read_text(encoding="utf-8")
        tree = parse_ok(text, str(path))
        lines = text.splitlines()
        for rule in tree.rules:
            for node in [rule.condition, *rule.unless]:
                for sub in s.walk(node):
                    span = sub.span
                    assert span.file == str(path)
                    assert 1 <= span.line <= span.end_line <= len(lines)
                    if span.line == span.end_line:
                        # the span covers exactly the node's text (modulo parentheses and layout)
                        snippet = lines[span.line - 1][span.col - 1 : span.end_col - 1]
                        assert snippet.strip(), (path, sub)


# ---------------------------------------------------------------------------
# Comments and equality


def test_comments_are_kept_with_their_spans() -> None:
    text = (
        "# leading comment\n"
        'policy "p"  # after the id\n'
        '  title "a # in a string is text"\n'
        '  version "1"\n  effective 2021-01-01\n  status draft\n  source "s"\n'
        "rule r  # interpretation: r\n"
        "  if a then require x\n"
    )
    tree = parse_ok(text, "c.policy")
    assert [c.text for c in tree.comments] == ["# leading comment", "# after the id", "# interpretation: r"]
    assert [c.span for c in tree.comments] == [
        Span("c.policy", 1, 1, 1, 18),
        Span("c.policy", 2, 13, 2, 27),
        Span("c.policy", 8, 9, 8, 28),
    ]
    title = tree.header.get("title")
    assert title is not None and title.value == "a # in a string is text"


def test_comments_are_kept_when_the_file_has_syntax_errors() -> None:
    result = parse(HEADER + "# kept\nrule r if a and then require x\n")
    assert result.tree is not None
    assert [c.text for c in result.tree.comments] == ["# kept"]


def test_equality_ignores_spans_and_layout() -> None:
    a = parse_ok(HEADER + 'fact a: boolean "a"\nrule r if a and (b or c) then require x\n', "one.policy")
    b = parse_ok(
        "\n\n"
        + HEADER
        + 'fact  a :  boolean  "a"\n\n# a comment\nrule r\n  if a\n  and (b\n  or c)\n  then require x\n',
        "two.policy",
    )
    assert a.items == b.items
    assert a.rules[0].span != b.rules[0].span
    assert hash(a.rules[0]) == hash(b.rules[0])


def test_equality_sees_changes_in_meaning() -> None:
    assert condition("a and b") != condition("b and a")
    assert condition("a or b and c") != condition("(a or b) and c")
    assert condition("x in <A>") != condition("x includes A")
    assert condition("x includes any <A>") != condition("x includes all <A>")
    assert condition("x < 1") != condition("x <= 1")
    assert condition('x = "1"') != condition("x = 1")
    assert condition("x = 1.0") != condition("x = 1") or Decimal("1.0") == Decimal(1)


def test_numbers_are_exact_decimals_never_floats() -> None:
    cond = condition("x = 0.1")
    assert isinstance(cond, s.Compare) and isinstance(cond.right, s.Literal)
    assert cond.right.value == Decimal("0.1")
    assert type(cond.right.value) is Decimal


# ---------------------------------------------------------------------------
# Files that do not parse: recovery reports every broken declaration, located


def test_every_broken_declaration_is_reported() -> None:
    result = parse(
        HEADER
        + 'fact a: boolean "a"\nrule r1 if a and then require x\nfact b boolean "b"\nrule r2 if a then require\n',
        "broken.policy",
    )
    assert [(d.code, d.line) for d in result.diagnostics] == [("syntax", 8), ("syntax", 9), ("syntax", 10)]
    assert result.tree is not None
    assert [type(i).__name__ for i in result.tree.items] == ["FactDecl"]


def test_a_file_without_a_header_has_no_tree() -> None:
    result = parse('fact a: boolean "a"\n', "x.policy")
    assert result.tree is None
    assert [(d.code, d.line, d.column) for d in result.diagnostics] == [("syntax", 1, 1)]


def test_an_impossible_date_is_a_syntax_error() -> None:
    result = parse(HEADER + "rule r if d < 2021-02-30 then require x\n", "d.policy")
    (diagnostic,) = result.diagnostics
    assert diagnostic.message == "`2021-02-30` is not a calendar date"
    assert (diagnostic.line, diagnostic.column, diagnostic.end_column) == (7, 15, 25)


def test_an_enumeration_of_strings_is_a_syntax_error() -> None:
    result = parse(HEADER + 'enum E "e" = <A, "b">\n', "e.policy")
    (diagnostic,) = result.diagnostics
    assert diagnostic.code == "syntax"
    assert diagnostic.message == 'enumeration values are names, and "b" is not a name'
    assert (diagnostic.line, diagnostic.column, diagnostic.end_column) == (7, 18, 21)


# ---------------------------------------------------------------------------
# Snapshots: the syntax trees of the example policies


EXAMPLES = sorted(
    str(p.relative_to(LANGUAGE)) for p in [*LANGUAGE.rglob("*.policy"), *LANGUAGE.rglob("*.vocab")]
)


@pytest.mark.parametrize("name", [pytest.param(e, id=e.replace("/", "-")) for e in EXAMPLES])
def test_syntax_tree_snapshot(name: str, snapshot: SnapshotAssertion) -> None:
    # The JSON text `policy parse` prints, kept in the module's .ambr file.
    path = Path("fixtures/language") / name
    tree = parse_ok((LANGUAGE / name).read_text(encoding="utf-8"), str(path))
    assert json.dumps(s.to_data(tree), indent=2, ensure_ascii=False) == snapshot


def test_to_data_names_node_types_and_spans() -> None:
    data = s.to_data(condition("x in <A>"))
    assert data == {
        "node": "Member",
        "item": {"node": "Ref", "path": ["x"], "span": [7, 11, 7, 12]},
        "collection": {
            "node": "SetLiteral",
            "items": [{"node": "Ref", "path": ["A"], "span": [7, 17, 7, 18]}],
            "span": [7, 16, 7, 19],
        },
        "span": [7, 11, 7, 19],
    }


def _doc_blocks() -> list[str]:
    text = (LANGUAGE.parent.parent / "docs" / "language.md").read_text(encoding="utf-8")
    return re.findall(r"```policy\n(.*?)```", text, re.S)


@pytest.mark.parametrize("block", _doc_blocks(), ids=lambda b: b.strip().splitlines()[0][:40])
def test_every_example_in_the_language_reference_parses(block: str) -> None:
    body = re.sub(r"#[^\n]*", "", block).strip()
    is_file = body.startswith(("policy ", "vocabulary "))
    parse_ok(block if is_file else HEADER + block)
