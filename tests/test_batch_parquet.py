"""`policy batch` over Parquet: rows decided as `evaluate` decides them, Parquet or JSON lines out, rejects
with their row number, the same output for one and two workers, nothing left behind on a usage error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from engine import api
from engine.cli import main

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "policies" / "ear-742.7"


def cases() -> list[dict[str, Any]]:
    out = []
    for file in sorted((ROOT / "fixtures" / "cases").glob("*.json")):
        case = json.loads(file.read_text(encoding="utf-8"))
        case.pop("$comment", None)
        out.append(case)
    return out


@pytest.fixture
def parquet(tmp_path: Path) -> Path:
    rows = [{"id": f"A{i}", **c} for i, c in enumerate(cases())]
    rows[4] = {**rows[4], "destination": "ZZ"}
    path = tmp_path / "cases.parquet"
    pq.write_table(pa.Table.from_struct_array(pa.array(rows)), path, row_group_size=10)
    return path


def batch(*args: str) -> Any:
    return CliRunner().invoke(main, ["batch", str(POLICY), *args])


def test_parquet_out_holds_what_evaluate_decides(parquet: Path, tmp_path: Path) -> None:
    policy = api.load(POLICY)
    for workers in ("1", "2"):
        out = tmp_path / f"decisions-{workers}.parquet"
        result = batch(str(parquet), "-o", str(out), "--workers", workers)
        assert result.exit_code == 0, result.output
        assert "52 lines: 51 decisions, 1 rejects" in result.output
        rows = pq.read_table(out).to_pylist()
        assert [r["row"] for r in rows] == [i for i in range(1, 53) if i != 5]
        for row in rows:
            decision = policy.evaluate(cases()[row["row"] - 1])
            assert row["id"] == f"A{row['row'] - 1}"
            assert row["license_review"] == decision.value("license_review")
            assert (row["obligations"], row["fired"]) == (decision.obligation_names, decision.fired)
        (reject,) = [
            json.loads(x) for x in (tmp_path / f"decisions-{workers}.rejects.jsonl").read_text().splitlines()
        ]
        assert reject["row"] == 5 and reject["problems"][0]["path"] == "destination"
    assert pq.read_table(tmp_path / "decisions-1.parquet").equals(
        pq.read_table(tmp_path / "decisions-2.parquet")
    )


def test_json_lines_out_are_the_eval_decisions_with_the_row(parquet: Path, tmp_path: Path) -> None:
    policy = api.load(POLICY)
    out = tmp_path / "decisions.jsonl"
    result = batch(str(parquet), "-o", str(out), "--workers", "1", "--trace")
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 51
    for line in lines:
        row = line.pop("row")
        assert line.pop("id") == f"A{row - 1}"
        expected = policy.evaluate(cases()[row - 1], trace=True)
        assert line == json.loads(expected.model_dump_json())


def test_usage_errors_leave_no_file(parquet: Path, tmp_path: Path) -> None:
    jsonl = tmp_path / "cases.jsonl"
    jsonl.write_text("{}\n", encoding="utf-8")
    result = batch(str(jsonl), "-o", str(tmp_path / "out.parquet"))
    assert result.exit_code == 2 and "Parquet output needs Parquet input" in result.output
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"eccn": [1.5]}), bad)
    result = batch(str(bad), "-o", str(tmp_path / "out.parquet"))
    assert result.exit_code == 2 and "`eccn`" in result.output and "Traceback" not in result.output
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob(".*.tmp"))
