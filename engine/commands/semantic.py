"""`policy diff --semantic`: the options and the wiring; the proofs are `engine.proofs`.

Kept apart from `commands/diff.py` so that command only gains one decorator and one branch.
z3 is imported when a semantic diff runs, not when the CLI starts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from engine import diff as d
from engine.cases import CaseFile
from engine.commands.options import fail_usage
from engine.errors import UsageError


def semantic_options(func: Any) -> Any:
    """`--semantic`, `--save-witnesses DIR`, `--timeout MS`, `--max-regions N`."""
    func = click.option(
        "--max-regions",
        type=click.IntRange(min=1),
        default=64,
        show_default=True,
        help="With --semantic: stop after this many regions (the report then says incomplete, exit 3).",
    )(func)
    func = click.option(
        "--timeout",
        "timeout_ms",
        type=click.IntRange(min=1),
        default=10_000,
        show_default=True,
        metavar="MS",
        help="With --semantic: per-query solver timeout in milliseconds (hit: incomplete, exit 3).",
    )(func)
    func = click.option(
        "--save-witnesses",
        type=click.Path(file_okay=False, path_type=Path),
        metavar="DIR",
        help="With --semantic: write each region's witness case to DIR as a case fixture.",
    )(func)
    func = click.option(
        "--semantic",
        is_flag=True,
        help="Prove where the versions differ over every valid case (z3), not only on a case folder.",
    )(func)
    return func


def run_semantic(
    before: d.Side,
    after: d.Side,
    *,
    fmt: str,
    output: Path | None,
    fail_on_change: bool,
    semantic: bool,
    save_witnesses: Path | None,
    timeout_ms: int,
    max_regions: int,
    corpus: tuple[list[CaseFile], str] | None = None,
) -> None:
    """Run the proof, print or write the report, exit 0 (1 with --fail-on-change and a difference, 3 incomplete)."""
    from engine import proofs

    budget = proofs.Budget(timeout_ms=timeout_ms, max_regions=max_regions)
    try:
        report = proofs.semantic_diff(
            proofs.Version(before.policy.compiled, before.at, before.label),
            proofs.Version(after.policy.compiled, after.at, after.label),
            budget,
        )
    except proofs.Unsupported as exc:
        fail_usage(UsageError(f"cannot prove this diff: {exc}", "compare the versions on cases instead"))
    except proofs.ProofError as exc:
        click.echo(f"internal error (the solver and the evaluator disagree): {exc}", err=True)
        click.echo(
            "  = help: this is a bug in the symbolic compiler; please report it with both versions", err=True
        )
        sys.exit(4)
    text = proofs.render(report, fmt)
    cases = None
    if corpus is not None:  # the corpus transitions first, the proved regions beside them
        cases = d.compare(before, after, corpus[0], cases_from=corpus[1])
        text = _beside(cases, report, text, fmt)
    if output is None:
        click.echo(text, nl=False)
    else:
        try:
            tmp = output.with_name(output.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(output)
        except OSError as exc:
            fail_usage(
                UsageError(
                    f"cannot write `{output}`: {exc.strerror}", "check the folder exists and is writable"
                )
            )
        click.echo(f"wrote {output} ({len(report.regions)} region(s), {report.status})", err=True)
    if save_witnesses is not None:
        try:
            written = proofs.save_witnesses(report, save_witnesses)
        except OSError as exc:
            fail_usage(UsageError(f"cannot write witnesses to `{save_witnesses}`: {exc.strerror}"))
        click.echo(f"wrote {len(written)} witness case(s) to {save_witnesses}", err=True)
    if report.exit_code:
        sys.exit(report.exit_code)
    if (fail_on_change and report.regions) or (cases is not None and cases.summary.failed):
        sys.exit(1)


def _beside(cases: d.DiffReport, report: Any, semantic: str, fmt: str) -> str:
    """One report: the case diff, then the semantic regions (JSON: a `semantic` member)."""
    corpus = d.render(cases, fmt)
    if fmt == "json":
        data = json.loads(corpus)
        data["semantic"] = report.dump()
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "html":
        section = semantic[semantic.index("<h1>") : semantic.index("</body>")]
        return corpus.replace("</body>", section + "</body>", 1) if "</body>" in corpus else corpus + section
    return corpus + "\n" + semantic
