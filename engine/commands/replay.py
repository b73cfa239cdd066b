"""`policy replay LOG --against POLICY@VERSION`: re-decide logged decisions under a version.

Exit status: 0 replayed (every recorded-version replay identical, no failed case), 1 a
replay under the recorded version differed or a case could not be compared, 2 usage.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import click

from engine import diff as d
from engine.commands.options import DATE, fail_usage, report_policy_error
from engine.errors import PolicyError, UsageError

if TYPE_CHECKING:
    from engine.decisionlog.replay import ReplayOutcome, SameVersion


@click.command("replay")
@click.argument("log")
@click.option(
    "--against",
    "against",
    required=True,
    metavar="POLICY@VERSION",
    help="The version to re-decide under: a policy folder with a version name or date, or a file.",
)
@click.option("--since", type=DATE, metavar="DATE", help="Only decisions logged from this date (UTC).")
@click.option("--until", type=DATE, metavar="DATE", help="Only decisions logged before this date (UTC).")
@click.option("--recorded", metavar="VERSION", help="Only decisions the log says were made by this version.")
@click.option("--format", "fmt", type=click.Choice(d.FORMATS), default="text", show_default=True)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the report to a file."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes for replays under the recorded version.",
)
def command(
    log: str,
    against: str,
    since: date | None,
    until: date | None,
    recorded: str | None,
    fmt: str,
    output: Path | None,
    workers: int,
) -> None:
    """Re-decide LOG's decisions under POLICY@VERSION, each on its logged evaluation date.

    \b
    policy replay decisions.db --against policies/ear-742.7@2020-10-06        (the recorded version: must be identical)
    policy replay decisions.db --against policies/ear-742.7@2024-07-29 --format html -o replay.html

    Decisions made by the same version text must come out identical (result and trace hash);
    those made by another version give the reviewer's diff report of `policy diff`.
    """
    from engine.decisionlog.backends import open_store
    from engine.decisionlog.replay import replay
    from engine.decisionlog.store import LogError

    try:
        spec = d.Spec.parse(against)
        side = d.resolve_spec(spec, None)
    except UsageError as exc:
        fail_usage(exc)
    except PolicyError as exc:
        report_policy_error(exc)
    folder = spec.path if spec.path.is_dir() else None
    try:
        with open_store(log) as store:
            outcome = replay(
                store, side, folder, since=since, until=until, workers=workers, recorded=recorded
            )
    except LogError as exc:
        click.echo(f"error[log]: {exc}", err=True)
        sys.exit(1)
    if fmt == "html" and len(outcome.reports) > 1:
        fail_usage(
            UsageError(
                f"the window holds decisions of {len(outcome.reports)} other versions; an HTML report shows one",
                "pick one with --recorded VERSION, or use --format text, md or json",
            )
        )
    text = _render(
        outcome, fmt, color=output is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    )
    if output is None:
        click.echo(text, nl=False)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail_usage(UsageError(f"cannot write `{output}`: {exc.strerror}"))
        click.echo(f"wrote {output}", err=True)
    click.echo(_summary(outcome), err=True)
    sys.exit(0 if outcome.ok else 1)


def _summary(outcome: ReplayOutcome) -> str:
    same = outcome.same
    others = sum(r.summary.compared + r.summary.failed for r in outcome.reports)
    skipped = ", ".join(f"{n} skipped ({why})" for why, n in outcome.skipped.items())
    parts = [
        f"{same.identical}/{same.replayed} identical under the recorded version",
        f"{others} diffed against another version",
    ]
    return "replay: " + "; ".join(parts + ([skipped] if skipped else []))


def _render(outcome: ReplayOutcome, fmt: str, color: bool) -> str:
    """The diff reports with a header about the replays under the recorded version."""
    if fmt == "json":
        return json.dumps(outcome.to_json(), indent=2, ensure_ascii=False) + "\n"
    same = outcome.same
    against = outcome.against
    if fmt == "html":
        if outcome.reports:
            return d.render(outcome.reports[0], "html")
        return _html_same(same, against)
    lines = [
        f"replay under {against.policy} @ {against.version} (hash {against.content_hash[:12]})",
        f"decisions logged under this version: {same.replayed}, identical (result and trace hash): {same.identical}",
    ]
    lines += [f"  NOT IDENTICAL #{m['seq']} {m['decision_id']}: {m['problem']}" for m in same.mismatches[:50]]
    for why, n in outcome.skipped.items():
        lines.append(f"skipped: {n} ({why})")
    head = ("\n".join(lines) + "\n") if fmt == "text" else "\n".join(f"> {line}  " for line in lines) + "\n\n"
    bodies = [d.render(report, fmt, color=color) for report in outcome.reports]
    return head + "".join("\n" + body for body in bodies)


def _html_same(same: SameVersion, against: d.VersionInfo) -> str:
    from html import escape

    text = f"replay under {against.policy} @ {against.version}: {same.identical}/{same.replayed} identical"
    return f"<!doctype html><meta charset=utf-8><title>replay</title><p>{escape(text)}</p>\n"
