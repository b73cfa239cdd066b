"""`policy test`: run intent expectations; optionally measure coverage of rules and conditions.

Exit status: 0 every expectation passed (and coverage is at least `--min-coverage`), 1 a
failure, an error or low coverage, 2 usage error (a malformed intent file, a missing path).
"""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path
from typing import Any

import click

from engine.commands.options import fail_usage
from engine.coverage import VersionCoverage, collect, report_data, report_lines, total_percent
from engine.errors import UsageError, render_all
from engine.intent import Result, Runner, failure_text, load_expectations, result_data
from engine.registry import read_versions
from engine.terminal import Counter

DEFAULT_INTENT = "fixtures/intent"


@click.command("test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option(
    "--policies",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default="policies",
    show_default=True,
    help="Folder holding one folder per policy id.",
)
@click.option(
    "--cases",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default="fixtures/cases",
    show_default=True,
    help="Folder of case files (<case>.json).",
)
@click.option(
    "--coverage", "with_coverage", is_flag=True, help="Report which rules and conditions the cases exercised."
)
@click.option(
    "--min-coverage",
    type=click.FloatRange(0, 100),
    metavar="PERCENT",
    help="Fail when total coverage is below PERCENT (implies --coverage).",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Also write the results as JUnit XML to FILE (for CI test reports).",
)
@click.option(
    "--watch", is_flag=True, help="Run again whenever a policy, case or intent file changes (Ctrl-C stops)."
)
def command(
    paths: tuple[str, ...],
    policies: Path,
    cases: Path,
    with_coverage: bool,
    min_coverage: float | None,
    fmt: str,
    junit_path: Path | None,
    watch: bool,
) -> None:
    """Check that every case comes out as its intent file (default fixtures/intent) says."""
    if not paths and not Path(DEFAULT_INTENT).is_dir():
        raise click.UsageError(f"no intent files given and no `{DEFAULT_INTENT}` folder here")
    run_once = partial(_run, paths, policies, cases, with_coverage, min_coverage, fmt, junit_path)
    if not watch:
        run_once()
        return
    from engine.watch import watch_loop

    try:
        watch_loop([policies, cases, *(paths or [DEFAULT_INTENT])], run_once)
    except UsageError as exc:
        fail_usage(exc)


def _run(
    paths: tuple[str, ...],
    policies: Path,
    cases: Path,
    with_coverage: bool,
    min_coverage: float | None,
    fmt: str,
    junit_path: Path | None,
) -> None:
    """One run: load, evaluate, report, and exit with the status (the watch loop catches the exit)."""
    expectations, problems = load_expectations(paths or [DEFAULT_INTENT])
    if problems:
        click.echo(render_all(problems), err=True)
        sys.exit(2)
    runner = Runner(policies, cases)
    with Counter("policy test:", len(expectations)) as counter:
        results = []
        for expectation in expectations:
            results.append(runner.run(expectation))
            counter.step(expectation.id)
    versions = collect(r.decision for r in results if r.decision is not None)
    untested = _untested(policies, {(e.policy, e.version) for e in expectations})
    measure = with_coverage or min_coverage is not None
    below = min_coverage is not None and total_percent(versions) < min_coverage
    if junit_path is not None:
        _write_junit(results, junit_path)
    if fmt == "json":
        _json(results, versions if measure else None, min_coverage, untested)
    else:
        _text(results, versions if measure else None, min_coverage, below, untested)
    failed = any(r.status != "pass" for r in results)
    sys.exit(1 if failed or below else 0)


def _write_junit(results: list[Result], path: Path) -> None:
    """The JUnit report; a folder that cannot be written is a usage error, not a traceback."""
    from engine.junit import write_junit

    try:
        write_junit(results, path)
    except OSError as exc:
        fail_usage(
            UsageError(f"cannot write `{path}`: {exc.strerror}", "check the folder exists and is writable")
        )


def _untested(policies: Path, tested: set[tuple[str, str]]) -> list[str]:
    """Versions of the tested policies that no expectation names: coverage cannot see them."""
    found = []
    for policy in sorted({p for p, _ in tested}):
        folder = policies / policy
        if folder.is_dir():
            found += [
                f"{policy}@{e.version}" for e in read_versions(folder) if (policy, e.version) not in tested
            ]
    return found


def _text(
    results: list[Result],
    versions: list[VersionCoverage] | None,
    minimum: float | None,
    below: bool,
    untested: list[str],
) -> None:
    for result in results:
        if result.status != "pass":
            click.echo(failure_text(result) + "\n")
    if versions is not None:
        click.echo("\n".join(report_lines(versions, untested)))
        if below:
            click.echo(f"coverage {total_percent(versions):.1f}% is below the minimum {minimum:g}%")
        click.echo()
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "error")}
    policies = len({r.expectation.policy for r in results})
    click.echo(
        f"{len(results)} expectation(s) over {policies} policy(ies): {counts['pass']} passed, "
        f"{counts['fail']} failed, {counts['error']} error(s)"
    )


def _json(
    results: list[Result], versions: list[VersionCoverage] | None, minimum: float | None, untested: list[str]
) -> None:
    data: dict[str, Any] = {
        "summary": {s: sum(r.status == s for r in results) for s in ("pass", "fail", "error")},
        "results": [result_data(r) for r in results],
    }
    if versions is not None:
        data["coverage"] = report_data(versions, untested)
        data["coverage"]["minimum"] = minimum
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))
