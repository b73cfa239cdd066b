"""Renderers for decisions: JSON from the models, text and Markdown from jinja2 templates.

The templates receive a small view built here (outcomes first, then the rules behind
them, then what did not fire), so the two human formats say the same things.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from engine import escape
from engine.models import ConditionTrace, Decision, RuleTrace, to_json_value

if TYPE_CHECKING:  # jinja2 is imported on first render: `import engine` + evaluate never pays for it
    from jinja2 import Environment

FORMATS = ("text", "json", "md")


def new_environment(autoescape: bool = True) -> Environment:
    """A jinja2 environment over the package's templates, set up the way every report needs.

    Every `{{ value }}` is escaped for the template's format by `engine.escape.finalize`
    (terminal text, Markdown or HTML, told apart by the template's file name); `autoescape`
    is on so that text the engine composed itself (`Markup`, macro output) is not escaped twice.
    The argument is kept for callers that passed it; escaping is never switched off.
    """
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("engine", "templates"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=True,
        finalize=escape.make_finalize(),
    )
    env.filters["value"] = format_value
    env.filters["e"] = env.filters["escape"] = escape.escape_filter
    env.filters["code"] = escape.code
    env.filters["fenced"] = escape.fenced
    return env


@cache
def environment() -> Environment:
    """The environment of the decision reports (templates ship inside the package)."""
    return new_environment()


def format_value(value: Any) -> str:
    """A fact value as an author would write it: sets in braces, booleans lowercase, missing as such."""
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "{" + ", ".join(format_value(v) for v in value) + "}"
    return str(value)


def format_reads(
    reads: dict[str, Any], derived: frozenset[str], defaults: frozenset[str] = frozenset()
) -> str:
    """`name = value` pairs; a derived fact with no value is unknown, a fact with none is missing,
    and a fact the case left out shows its declared default, marked `(default)`."""
    return ", ".join(
        f"{k} = {'unknown' if v is None and k in derived else format_value(v)}"
        + (" (default)" if k in defaults else "")
        for k, v in reads.items()
    )


def verdict(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "unknown"}[value]


@dataclass
class Line:
    """One condition line of an explanation: depth, verdict, text, and the values it read."""

    depth: int
    verdict: str
    condition: str
    reads: str


@dataclass
class RuleView:
    rule: str
    citations: str
    description: str | None
    status: str
    relation: str
    lines: list[Line] = field(default_factory=list)
    unknown_reason: str = "no table entry in force for a key it looks up"


def condition_lines(
    trace: ConditionTrace,
    depth: int = 1,
    only_failing: bool = False,
    derived: frozenset[str] = frozenset(),
    defaults: frozenset[str] = frozenset(),
) -> list[Line]:
    """The condition tree as indented lines; a top-level `and` is shown as its parts.

    With `only_failing`, a top-level `and` shows only the parts that were not true: the
    reason a rule did not fire.
    """
    if depth == 1 and trace.kind == "and":
        return [
            line
            for child in trace.children
            if not only_failing or child.value is not True
            for line in condition_lines(child, 1, False, derived, defaults)
        ]
    reads = format_reads(trace.reads, derived, defaults)
    if trace.computed:  # the arithmetic the test did, after the values it read
        done = ", ".join(
            f"{k} = {'unknown' if v is None else format_value(v)}" for k, v in trace.computed.items()
        )
        reads = f"{reads}; computed {done}" if reads else f"computed {done}"
    out = [Line(depth, verdict(trace.value), trace.condition, reads)]
    for child in trace.children:
        out += condition_lines(child, depth + 1, False, derived, defaults)
    return out


def _rule_view(
    rule: RuleTrace,
    explain_failing: bool,
    derived: frozenset[str] = frozenset(),
    defaults: frozenset[str] = frozenset(),
) -> RuleView:
    relation = ""
    if rule.overrides and rule.status == "fired":
        relation = ", an exception to " + ", ".join(rule.overrides)
    if rule.status == "overridden":
        relation = ", overridden by " + ", ".join(rule.overridden_by)
    lines = condition_lines(rule.condition, only_failing=explain_failing, derived=derived, defaults=defaults)
    for clause in rule.unless:
        if not explain_failing or clause.value is not False:
            lines += [
                Line(
                    1,
                    verdict(clause.value),
                    "unless " + clause.condition,
                    format_reads(clause.reads, derived, defaults),
                )
            ]
    reason = RuleView.unknown_reason
    if any(v is None for c in _conditions(rule) for v in c.computed.values()):
        reason = "a value it computes is unknown (a division by zero) or a table has no entry in force"
    return RuleView(
        rule.rule, "; ".join(rule.citations), rule.description, rule.status, relation, lines, reason
    )


def _conditions(rule: RuleTrace) -> list[ConditionTrace]:
    """Every condition trace of a rule, sub-conditions included."""
    todo, out = [rule.condition, *rule.unless], []
    while todo:
        current = todo.pop()
        out.append(current)
        todo += current.children
    return out


def view(decision: Decision, explain: bool) -> dict[str, Any]:
    """Everything the text and Markdown templates show, in the order they show it."""
    traces = {r.rule: r for r in decision.trace.rules} if decision.trace else {}
    derived = frozenset(decision.trace.derived) if decision.trace else frozenset()
    defaults = frozenset(decision.trace.defaults) if decision.trace else frozenset()

    def because(rule_ids: list[str]) -> list[RuleView]:
        views = []
        for rule_id in rule_ids:
            if rule_id in traces:
                views.append(_rule_view(traces[rule_id], False, derived, defaults))
        return views

    outcomes = []
    for name, value in decision.decisions.items():
        ids = [r.rule for r in value.rules]
        shown = format_value(to_json_value(value.value))
        label = f"{name} = {shown}" if value.value is not None else f"{name} = (conflict)"
        outcomes.append(
            {
                "label": label,
                "default": value.default,
                "rules": value.rules,
                "explained": because(ids),
                "undetermined": [r.rule for r in value.undetermined_by],
            }
        )
    for kind, items in (("require", decision.obligations), ("recommend", decision.recommendations)):
        for item in items:
            ids = [r.rule for r in item.rules]
            outcomes.append(
                {
                    "label": f"{kind} {item.name}",
                    "default": False,
                    "rules": item.rules,
                    "explained": because(ids),
                    "citations": item.citations,
                    "undetermined": [],
                }
            )
    rules = decision.trace.rules if decision.trace else []
    return {
        "d": decision,
        "explain": explain,
        "outcomes": outcomes,
        "overridden": [_rule_view(r, False, derived, defaults) for r in rules if r.status == "overridden"],
        "unknown": [
            (_rule_view(r, False, derived, defaults), r.missing) for r in rules if r.status == "unknown"
        ],
        "not_fired": [_rule_view(r, True, derived, defaults) for r in rules if r.status == "not_fired"],
    }


def render_decision(decision: Decision, fmt: str = "text", explain: bool = False) -> str:
    """Render a decision as text, JSON or Markdown."""
    if fmt == "json":
        return (
            escape.json_text(json.dumps(decision.model_dump(mode="json"), indent=2, ensure_ascii=False))
            + "\n"
        )
    template = {"text": "decision.txt.j2", "md": "decision.md.j2"}[fmt]
    text = environment().get_template(template).render(**view(decision, explain))
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"
