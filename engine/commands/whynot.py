"""`policy why-not POLICY CASE --want DECISION=VALUE | +OUTCOME`: what would change the outcome.

The proof is `engine.deepcheck.why_not` (z3, imported only when the command runs); this
module reads the options and the case and prints the answer.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from typing import Any

import click

from engine.commands.options import fail_usage, load_policy, read_case, report_case_error, version_options
from engine.errors import CaseError, UsageError


@click.command("why-not")
@click.argument("policy")
@click.argument("case")
@click.option(
    "--want",
    required=True,
    metavar="DECISION=VALUE|+OUTCOME|-OUTCOME",
    help="The outcome wanted: a decision value, or an obligation/recommendation gained (+) or lost (-).",
)
@version_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--timeout", "timeout_ms", type=click.IntRange(min=1), default=10_000, show_default=True, metavar="MS"
)
def command(
    policy: str, case: str, want: str, at: date | None, version: str | None, fmt: str, timeout_ms: int
) -> None:
    """Up to three smallest sets of fact changes that would give CASE the wanted outcome.

    \b
    policy why-not policies/ear-742.7 fixtures/cases/x.json --want license_review=favorable
    policy why-not policies/ear-742.7 fixtures/cases/x.json --want "+human-rights review"

    Each set is minimal and checked by deciding the changed case. Exit status: 0 (found, or
    already so), 1 impossible (with the rules that block it), 2 usage error, 3 incomplete.
    """
    from engine.deepcheck import Want, why_not
    from engine.proofs import Budget, ProofError

    loaded = load_policy(policy, version, at)
    program = loaded.compiled.program
    try:
        wanted = Want.parse(want, program)
    except ValueError as exc:
        fail_usage(UsageError(f"--want: {exc}", "write DECISION=VALUE, +OBLIGATION or -OBLIGATION"))
    facts = read_case(case)
    try:
        answer = why_not(
            loaded.compiled, facts, wanted, at=at or loaded.at, budget=Budget(timeout_ms=timeout_ms)
        )
    except CaseError as exc:
        report_case_error(exc, "<stdin>" if case == "-" else case)
    except ProofError as exc:
        click.echo(f"internal error (the solver and the evaluator disagree): {exc}", err=True)
        sys.exit(4)
    if fmt == "json":
        click.echo(json.dumps(answer.dump(), indent=2, ensure_ascii=False, default=str))
    else:
        click.echo(_text(answer), nl=False)
    sys.exit({"already": 0, "changes": 0, "impossible": 1, "incomplete": 3}[answer.status])


def _text(answer: Any) -> str:
    want = answer.want.label()
    if answer.status == "already":
        return f"the case already gets {want}\n"
    if answer.status == "impossible":
        lines = [f"impossible: no valid case gets {want} ({answer.reason})"]
        if answer.blocking:
            lines.append("blocked by: " + ", ".join(answer.blocking))
        return "\n".join(lines) + "\n"
    if answer.status == "incomplete":
        return f"incomplete: no change set found within the bounds ({answer.reason})\n"
    lines = [
        f"{len(answer.options)} smallest change set(s) that give {want} (each checked by the evaluator):"
    ]
    for n, option in enumerate(answer.options, 1):
        lines.append(
            f"  {n}. " + "; ".join(f"{c.fact}: {_shown(c.before)} -> {_shown(c.after)}" for c in option)
        )
    return "\n".join(lines) + "\n"


def _shown(value: Any) -> str:
    return "(absent)" if value is None else json.dumps(value, ensure_ascii=False)
