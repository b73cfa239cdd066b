"""`policy impact`: one answer everywhere (workers 1, workers 2, Dask, JSON lines, and the single-case API),
reports a reviewer can read (transition counts, groups, Markdown under a comment's limit), rejects with
their row, full traces for changed cases, and no half-written file after an interrupt.

The scale tests generate 100,000 cases of history at test time (benchmarks/impact.py) once per session.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from engine import api, impact
from engine import diff as d
from engine.cases import read_case_file
from engine.cli import main

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import impact as history  # noqa: E402

POLICY = ROOT / "policies" / "ear-742.7"
CASES = ROOT / "fixtures" / "cases"
SCALE = 100_000


def sides(at: Any = None) -> tuple[d.Side, d.Side]:
    first = d.Spec.parse(f"{POLICY}@2020-03-09")
    return d.resolve_spec(first, at), d.resolve_spec(d.Spec.parse("@2020-10-06", first), at)


def run_report(source: str | Path, out: Path, executor: Any = None, **options: Any) -> bytes:
    before, after = sides()
    src = impact.open_source(source)
    facts = set(before.policy.compiled.program.facts)
    impact.run(
        before,
        after,
        src,
        fmt=options.pop("fmt", "json"),
        output=out,
        rejects=out.with_suffix(".rejects.jsonl"),
        id_column=impact.default_id_column(src, facts),
        executor=executor,
        **options,
    )
    return out.read_bytes()


@pytest.fixture(scope="session")
def scale_history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("history")
    parquet, lines = folder / "history.parquet", folder / "history.jsonl"
    history.write_history(SCALE, parquet, lines)
    return parquet, lines


@pytest.fixture(scope="session")
def scale_report(scale_history: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return run_report(scale_history[0], tmp_path_factory.mktemp("w1") / "impact.json")


# ---------------------------------------------------------------------------
# One answer


def test_fixture_cases_are_classified_as_policy_diff_classifies_them(tmp_path: Path) -> None:
    report = json.loads(run_report(CASES, tmp_path / "impact.json"))
    by_case = {c["case"]: g for g in report["groups"] for c in g["cases"]}
    before, after = sides()
    counts: Counter[str] = Counter()
    for file in d.case_files(CASES):
        expected = d.compare_case(read_case_file(file), before, after)
        counts[expected.status] += 1
        group = by_case.get(file.stem)
        if expected.status == "unchanged":
            assert group is None, file.stem
            continue
        assert group is not None and group["status"] == expected.status, file.stem
        assert group["transitions"] == expected.transitions, file.stem
        assert group["before"] == expected.before.model_dump(mode="json")  # type: ignore[union-attr]
        assert group["after"] == expected.after.model_dump(mode="json")  # type: ignore[union-attr]
        moved = [r.rule for r in expected.rules if r.status_changed]
        assert [m["rule"] for m in group["rules"]] == moved, file.stem
    sm = report["summary"]
    assert (sm["changed"], sm["reasons_changed"], sm["unchanged"]) == (
        counts["changed"],
        counts["reasons_changed"],
        counts["unchanged"],
    )


def test_the_report_is_byte_identical_for_one_worker_two_workers_and_dask(
    scale_history: tuple[Path, Path], scale_report: bytes, tmp_path: Path
) -> None:
    """Also: `engine.dask.decisions` (decide_batches with map_partitions) = decide_batches here."""
    from distributed import Client, LocalCluster

    from engine import dask as engine_dask
    from engine.columnar import PolicyRef, decide_batches

    out = tmp_path / "impact.json"  # the same name each time: the report names its rejects file
    expected = scale_report.replace(
        json.loads(scale_report)["rejects_file"].encode(), str(out.with_suffix(".rejects.jsonl")).encode()
    )
    assert run_report(scale_history[0], out, impact.pool(2)) == expected
    started = time.perf_counter()
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        assert (
            run_report(scale_history[0], out, lambda job, units: engine_dask.run_on(client, job, units))
            == expected
        )
        seconds = time.perf_counter() - started
        ref = PolicyRef.of(api.load(POLICY, version="2020-10-06"), id_column="id")
        small = tmp_path / "small.parquet"
        pq.write_table(pq.read_table(scale_history[0]).slice(0, 3_000), small, row_group_size=1_000)
        on_cluster = pa.Table.from_batches(engine_dask.decisions(ref, [str(small)]).compute())
        here = pa.Table.from_batches(list(decide_batches(ref, pq.ParquetFile(small).iter_batches())))
        assert on_cluster.to_pylist() == here.to_pylist()
    assert seconds < 60  # cluster start included; the target is 20 s on a quiet machine


def test_the_report_matches_the_single_case_api_on_every_case(
    scale_history: tuple[Path, Path], scale_report: bytes
) -> None:
    """All 100,000 generated cases, each decided by `Policy.evaluate` under both versions."""
    report = json.loads(scale_report)
    group_of = {c["row"]: g for g in report["groups"] for c in g["cases"]}
    before, after = sides()
    table = pq.read_table(scale_history[0])
    changed = reasons = 0
    for row, record in enumerate(table.to_pylist(), 1):
        case = {k: v for k, v in record.items() if k != "id" and v is not None}
        old = before.policy.evaluate(case, at=before.at)
        new = after.policy.evaluate(case, at=after.at)
        old_summary, new_summary = d.outcome_summary(old), d.outcome_summary(new)
        group = group_of.get(row)
        if old_summary.model_dump(exclude={"fired"}) != new_summary.model_dump(exclude={"fired"}):
            changed += 1
            assert group is not None and group["status"] == "changed", row
        elif group is not None:
            reasons += 1
            assert group["status"] == "reasons_changed", row
        if group is not None:
            assert group["before"] == old_summary.model_dump(mode="json"), row
            assert group["after"] == new_summary.model_dump(mode="json"), row
    assert (changed, reasons) == (report["summary"]["changed"], report["summary"]["reasons_changed"])
    assert report["summary"]["cases"] == SCALE
    assert 0.10 < changed / SCALE < 0.25  # the generated history changes about 15%


def test_json_lines_give_the_same_report_as_parquet(scale_history: tuple[Path, Path], tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    parquet = small / "h.parquet"
    pq.write_table(pq.read_table(scale_history[0]).slice(0, 5_000), parquet, row_group_size=1_000)
    with open(scale_history[1], encoding="utf-8") as source:
        (small / "h.jsonl").write_text("".join(next(source) for _ in range(5_000)), encoding="utf-8")
    a = json.loads(run_report(parquet, tmp_path / "a.json"))
    b = json.loads(run_report(small / "h.jsonl", tmp_path / "b.json"))
    for report in (a, b):
        del report["cases_from"], report["rejects_file"]
    assert a == b


# ---------------------------------------------------------------------------
# Reports


def test_markdown_fits_a_pull_request_comment_and_json_lists_every_case(
    scale_history: tuple[Path, Path], scale_report: bytes, tmp_path: Path
) -> None:
    report = json.loads(scale_report)
    listed = sum(len(g["cases"]) for g in report["groups"])
    assert listed == report["summary"]["changed"] + report["summary"]["reasons_changed"]
    assert all(g["count"] == len(g["cases"]) for g in report["groups"])
    text = run_report(scale_history[0], tmp_path / "impact.md", fmt="md").decode()
    assert len(text) < impact.MARKDOWN_LIMIT
    assert "### Changes by transition" in text and "and " in text and " more." in text
    # A report with a thousand groups of a thousand cases each is cut down, not truncated blindly.
    model = impact.ImpactReport.model_validate(
        {**{k: v for k, v in report.items() if k != "groups"}, "groups": []}
    )
    group = impact.Group.model_validate(
        {**report["groups"][0], "examples": [f"APP-{i:09d}" for i in range(1000)]}
    )
    big = model.model_copy(update={"groups": [group.model_copy(update={"group": i}) for i in range(1000)]})
    rendered = impact.render_human(big, "md")
    assert len(rendered) < impact.MARKDOWN_LIMIT and "more group(s)" in rendered


@pytest.mark.parametrize("fmt", ["text", "md", "html"])
def test_human_reports_name_counts_groups_and_rule_changes(fmt: str, tmp_path: Path) -> None:
    text = run_report(CASES, tmp_path / f"impact.{fmt}", fmt=fmt).decode()
    assert "21" in text  # changed cases of the 2020 change on the fixture cases
    assert "fingerprint-computers-kenya-police" in text
    assert "cc-hr-abuse-risk" in text
    if fmt == "html":
        assert "<script" not in text and "http" not in text.split("<body>")[1]


def test_explain_changed_writes_both_traces_of_every_changed_case(tmp_path: Path) -> None:
    explain = tmp_path / "traces.jsonl"
    report = json.loads(run_report(CASES, tmp_path / "impact.json", explain=explain))
    lines = [json.loads(line) for line in explain.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == report["summary"]["changed"]
    before, after = sides()
    for line in lines:
        case = json.loads((CASES / f"{line['case']}.json").read_text(encoding="utf-8"))
        for side, key in ((before, "before"), (after, "after")):
            expected = side.policy.evaluate(case, trace=True, at=side.at)
            assert line[key] == json.loads(expected.model_dump_json())
            assert line[key]["trace"]["rules"]


def test_rejects_name_their_row_and_the_rest_is_decided(tmp_path: Path) -> None:
    cases = []
    for file in sorted(CASES.glob("*.json"))[:6]:
        case = json.loads(file.read_text(encoding="utf-8"))
        case.pop("$comment", None)
        cases.append(case)
    cases[2] = {**cases[2], "destination": "ZZ"}
    parquet = tmp_path / "cases.parquet"
    pq.write_table(pa.Table.from_struct_array(pa.array(cases)), parquet)
    report = json.loads(run_report(parquet, tmp_path / "impact.json"))
    assert report["summary"]["rejected"] == 1 and report["summary"]["compared"] == 5
    (line,) = (tmp_path / "impact.rejects.jsonl").read_text(encoding="utf-8").splitlines()
    reject = json.loads(line)
    assert reject["row"] == 3 and reject["problems"][0]["path"] == "destination"
    assert "'ZZ' is not one of the allowed values" in reject["problems"][0]["reason"]


def test_cli_usage_errors_and_summary(tmp_path: Path) -> None:
    runner = CliRunner()
    parquet = tmp_path / "c.parquet"
    pq.write_table(pa.table({"bogus": [1], "eccn": ["0A978"]}), parquet)
    result = runner.invoke(main, ["impact", f"{POLICY}@2020-03-09", "@2020-10-06", str(parquet)])
    assert result.exit_code == 2 and "`bogus`" in result.output and "Traceback" not in result.output
    result = runner.invoke(main, ["impact", f"{POLICY}@2020-03-09", "@nope", str(CASES)])
    assert result.exit_code == 2 and "has no version `nope`" in result.output
    out = tmp_path / "r.md"
    result = runner.invoke(
        main,
        [
            "impact",
            f"{POLICY}@2020-03-09",
            "@2020-10-06",
            str(CASES),
            "--format",
            "md",
            "-o",
            str(out),
            "--workers",
            "1",
            "--fail-on-change",
        ],
    )
    assert result.exit_code == 1, result.output
    assert "52 cases: 21 changed" in result.output and out.exists()


# ---------------------------------------------------------------------------
# Interrupts


INTERRUPT_LINES = 12_000


def _interruptible(folder: Path, source: Path) -> tuple[list[str], dict[str, str], Path]:
    lines = folder / "cases.jsonl"
    if not lines.exists():
        with open(source, encoding="utf-8") as handle:
            lines.write_text("".join(next(handle) for _ in range(INTERRUPT_LINES)), encoding="utf-8")
    out = folder / "impact.json"
    command = [
        sys.executable, "-m", "engine", "impact", f"{POLICY}@2020-03-09", "@2020-10-06",
        str(lines), "--format", "json", "-o", str(out), "--workers", "2", "--explain", "changed",
    ]  # fmt: skip
    return command, {**os.environ, "PYTHONPATH": str(ROOT)}, out


@pytest.fixture(scope="module")
def uninterrupted(
    scale_history: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[bytes, bytes]:
    folder = tmp_path_factory.mktemp("interrupt")
    command, env, out = _interruptible(folder, scale_history[1])
    subprocess.run(command, cwd=folder, env=env, check=True, capture_output=True)
    return out.read_bytes(), out.with_suffix(".explain.jsonl").read_bytes()


@pytest.mark.parametrize(
    "how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["ctrl-c", "sigterm", "kill"]
)
def test_an_interrupted_run_writes_nothing_and_a_rerun_gives_the_same_bytes(
    how: int, scale_history: tuple[Path, Path], uninterrupted: tuple[bytes, bytes], tmp_path: Path
) -> None:
    command, env, out = _interruptible(tmp_path, scale_history[1])
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".impact.rejects.jsonl.*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.005)  # the run has started writing: interrupt it now
    time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(how)
    _, stderr = proc.communicate(timeout=60)
    assert not out.exists() and not out.with_suffix(".explain.jsonl").exists()
    assert not (tmp_path / "impact.rejects.jsonl").exists()
    if how != signal.SIGKILL:
        assert proc.returncode == 130, stderr
        assert "no report, rejects or traces were written" in stderr and "Traceback" not in stderr
        assert not list(tmp_path.glob(".*.tmp"))  # temporary files removed
    subprocess.run(command, cwd=tmp_path, env=env, check=True, capture_output=True)
    report, traces = uninterrupted
    assert out.read_bytes().replace(str(tmp_path).encode(), b"") == _relative(report)
    assert out.with_suffix(".explain.jsonl").read_bytes() == traces


def _relative(report: bytes) -> bytes:
    """The reference report without its own folder name (each test writes in its own folder)."""
    data = json.loads(report)
    folder = str(Path(data["rejects_file"]).parent)
    return report.replace(folder.encode(), b"")


def test_json_lines_through_arrow_decide_and_reject_as_the_exact_json_path(
    scale_history: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks Arrow's JSON parser reads exactly take the columnar path; any other block (a bad
    line, an unknown key, a number id, a blank line, a reject) the exact-JSON path: same bytes."""
    with open(scale_history[1], encoding="utf-8") as source:
        lines = [next(source) for _ in range(9_000)]
    lines[10] = '{"eccn": "0A978", "control_reason": ["CC"\n'  # not JSON
    lines[2_000] = lines[2_000].replace('"eccn"', '"ecn"')  # unknown key
    lines[4_000] = lines[4_000].replace('"destination": "', '"destination": "Z')  # outside the enumeration
    lines[6_000] = "\n"  # blank
    lines[8_000] = lines[8_000].replace('"$id": "APP', '"$id": 1, "x": "APP')  # a number id (and a bad key)
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    reports = []
    for arrow in (True, False):
        monkeypatch.setattr(impact, "ARROW_JSON", arrow)
        impact._workers.clear()
        out = tmp_path / "impact.json"
        traces = tmp_path / "traces.jsonl"
        report = run_report(path, out, explain=traces)
        reports.append((report, out.with_suffix(".rejects.jsonl").read_bytes(), traces.read_bytes()))
    assert reports[0] == reports[1]
    assert json.loads(reports[0][0])["summary"]["rejected"] == 4


def test_case_ids_from_the_data_reach_no_terminal_as_escape_codes(tmp_path: Path) -> None:
    case = json.loads((CASES / "water-cannon-hong-kong-police.json").read_text(encoding="utf-8"))
    case.pop("$comment", None)
    lines = tmp_path / "cases.jsonl"
    lines.write_text(json.dumps({"$id": "evil\x1b[31mred\x07", **case}) + "\n", encoding="utf-8")
    for fmt in ("text", "md", "html"):
        text = run_report(lines, tmp_path / f"r.{fmt}", fmt=fmt).decode()
        assert "\x1b" not in text and "\x07" not in text
        assert "evil\\x1b[31mred\\x07" in text
    report = json.loads(run_report(lines, tmp_path / "r.json"))
    assert report["groups"][0]["cases"][0]["case"] == "evil\x1b[31mred\x07"  # JSON keeps it exactly


def test_progress_is_one_erasable_line() -> None:
    import io

    stream = io.StringIO()
    progress = impact.Progress(total=1_000, unit="parquet", stream=stream)
    progress(500, 500, 80)
    progress.close()
    assert stream.getvalue().startswith(
        "\r\x1b[2K 50.0%  500 cases, 80 changed"
    ) and stream.getvalue().endswith("\r\x1b[2K")


def test_memoised_traces_are_the_traces_evaluate_writes(
    scale_history: tuple[Path, Path], tmp_path: Path
) -> None:
    """Generated history repeats the facts rules read, so most traces come from the memo: each is
    compared with `Policy.evaluate(case, trace=True)` on the case as the table holds it."""
    small = tmp_path / "h.parquet"
    table = pq.read_table(scale_history[0]).slice(0, 4_000)
    pq.write_table(table, small)
    explain = tmp_path / "traces.jsonl"
    impact._workers.clear()
    run_report(small, tmp_path / "impact.json", explain=explain)
    (worker,) = impact._workers.values()
    assert worker.memo_hits > 100
    before, after = sides()
    records = table.to_pylist()
    for line in explain.read_text(encoding="utf-8").splitlines():
        traced = json.loads(line)
        record = records[traced["row"] - 1]
        case = {k: v for k, v in record.items() if k != "id" and v is not None}
        for side, key in ((before, "before"), (after, "after")):
            assert traced[key] == json.loads(
                side.policy.evaluate(case, trace=True, at=side.at).model_dump_json()
            )
