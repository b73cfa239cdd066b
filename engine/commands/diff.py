"""`policy diff`: compare two policy versions by what they decide on a folder of cases (or one case).

The arguments name the two sides (`FOLDER@A FOLDER@B`, `FOLDER@A @B`, two files, one
folder for its two latest versions, or one file `--against git:REV`), optionally followed by
one case file; the work is done by `engine.diff`, this module only wires options to it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import click

from engine import diff as d
from engine.cases import CaseFile, read_case_file
from engine.commands.options import DATE, fail_usage, report_policy_error
from engine.commands.semantic import run_semantic, semantic_options
from engine.errors import PolicyError, UsageError
from engine.terminal import Counter, use_color

GIT_PREFIX = "git:"


@click.command("diff")
@click.argument("targets", nargs=-1, required=True, metavar="POLICY@A [POLICY@B] [CASE]")
@click.option(
    "--cases",
    "cases_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Folder of JSON cases to decide under both versions.",
)
@click.option(
    "--against",
    metavar="git:REV",
    help="Compare the working copy of one policy file with the policy tree committed at REV (e.g. git:HEAD).",
)
@click.option(
    "--at",
    type=DATE,
    metavar="DATE",
    help="Decide every case on this date under both versions (default: each version's own date).",
)
@click.option("--format", "fmt", type=click.Choice(d.FORMATS), default="text", show_default=True)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the report to a file."
)
@click.option("--fail-on-change", is_flag=True, help="Exit 1 if any case's outcome changes (to gate CI).")
@semantic_options
def command(
    targets: tuple[str, ...],
    cases_dir: Path | None,
    against: str | None,
    at: date | None,
    fmt: str,
    output: Path | None,
    fail_on_change: bool,
    **semantic: Any,
) -> None:
    """Compare two versions of a policy by what they decide.

    \b
    policy diff policies/ear-742.7@2020-03-09 @2020-10-06 --cases fixtures/cases
    policy diff policies/ear-742.7 --cases fixtures/cases          (the two latest versions)
    policy diff old.policy new.policy fixtures/cases/one.json      (one case, side by side)
    policy diff policies/ear-742.7/2020-10-06.policy --against git:HEAD --cases fixtures/cases

    A and B are version names or dates (a date picks the version in force then and decides
    the cases on that date). Exit status: 0, or 1 when a case could not be compared or, with
    --fail-on-change, when any outcome changed; 2 for usage errors.
    """
    try:
        specs, case_file = _split_case(targets)
        if semantic["semantic"]:  # proofs over every case (engine.proofs); cases, if given, beside them
            corpus = _cases(case_file, cases_dir) if case_file or cases_dir else None
            with _sides(specs, against, at) as sides:
                run_semantic(
                    *sides, fmt=fmt, output=output, fail_on_change=fail_on_change, corpus=corpus, **semantic
                )
            return
        inputs, cases_from = _cases(case_file, cases_dir)
        with _sides(specs, against, at) as (before, after), Counter("policy diff:", len(inputs)) as counter:
            report = d.compare(
                before,
                after,
                inputs,
                cases_from=cases_from,
                single=case_file is not None,
                progress=counter.step,
            )
    except UsageError as exc:
        fail_usage(exc)
    except PolicyError as exc:
        report_policy_error(exc)
    _emit(report, fmt, output)
    if report.summary.failed or (fail_on_change and report.decisions_changed):
        sys.exit(1)


def _split_case(targets: tuple[str, ...]) -> tuple[list[str], Path | None]:
    """A last argument that is a `.json` file is the single case; the rest name versions."""
    specs = list(targets)
    case_file = None
    if len(specs) > 1 and specs[-1].endswith(".json"):
        case_file = Path(specs.pop())
    if len(specs) > 2:
        raise UsageError(
            f"too many arguments: {' '.join(targets)}", "give at most two versions and one case file"
        )
    return specs, case_file


def _cases(case_file: Path | None, cases_dir: Path | None) -> tuple[list[CaseFile], str]:
    """The cases to compare: one file, or every JSON file of --cases."""
    if case_file is not None and cases_dir is not None:
        raise UsageError("give either one CASE or --cases DIR, not both", "drop one of them")
    if case_file is not None:
        if not case_file.is_file():
            raise UsageError(f"case `{case_file}` does not exist", "give a JSON case file")
        return [read_case_file(case_file)], str(case_file)
    if cases_dir is None:
        raise UsageError(
            "no cases to compare",
            "give --cases DIR (a folder of JSON cases) or a CASE file after the versions",
        )
    return [read_case_file(f) for f in d.case_files(cases_dir)], str(cases_dir)


@contextmanager
def _sides(specs: list[str], against: str | None, at: date | None) -> Iterator[tuple[d.Side, d.Side]]:
    """Load both sides; a git copy lives only while its version is loaded."""
    with ExitStack() as stack:
        if against is not None:
            yield _against(specs, against, at, stack)
            return
        if len(specs) == 2:
            first = d.Spec.parse(specs[0])
            second = d.Spec.parse(specs[1], previous=first)
            yield d.resolve_spec(first, at), d.resolve_spec(second, at)
            return
        only = d.Spec.parse(specs[0])
        if only.selector is None and only.path.is_dir():
            yield d.latest_two(only.path, at)
            return
        raise UsageError(
            f"`{specs[0]}` names one version; a diff needs two",
            "add a second version (POLICY@A POLICY@B), or compare a file with --against git:HEAD",
        )


def _against(specs: list[str], against: str, at: date | None, stack: ExitStack) -> tuple[d.Side, d.Side]:
    """`FILE --against git:REV`: the file in the policy tree at REV (before) against the working copy (after)."""
    if not against.startswith(GIT_PREFIX) or len(against) == len(GIT_PREFIX):
        raise UsageError(
            f"`--against {against}` is not a git revision", "write --against git:HEAD (or git:REV)"
        )
    if len(specs) != 1:
        raise UsageError(
            "--against compares one file with its committed version", "give exactly one policy file"
        )
    revision = against[len(GIT_PREFIX) :]
    file = d.policy_file(d.Spec.parse(specs[0]))
    copy = stack.enter_context(d.git_tree(file, revision))
    before = d.side_from_file(copy, against, at, display=f"{against}:{file}")
    after = d.side_from_file(file, "working copy", at, display=str(file))
    return before, after


def _emit(report: d.DiffReport, fmt: str, output: Path | None) -> None:
    """Write the report to the file or stdout; colour only for text on a terminal."""
    color = output is None and fmt == "text" and use_color(sys.stdout)
    text = d.render(report, fmt, color=color)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail_usage(
            UsageError(f"cannot write `{output}`: {exc.strerror}", "check the folder exists and is writable")
        )
    click.echo(f"wrote {output} ({report.summary.changed} changed case(s))", err=True)
