"""Opt-in: `engine.spark.decide` on Spark `local[2]` gives what `evaluate` gives.

Runs only where pyspark and Java are installed and POLICY_SPARK_TESTS=1 is set (not part of
`make test`: a JVM start costs 5-10 s, and pyspark is not a dev dependency):

    pip install 'policy-engine[spark]'
    POLICY_SPARK_TESTS=1 python -m pytest tests/test_spark.py
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    os.environ.get("POLICY_SPARK_TESTS") != "1"
    or importlib.util.find_spec("pyspark") is None
    or shutil.which("java") is None,
    reason="opt-in: needs POLICY_SPARK_TESTS=1, pyspark and Java",
)


def test_spark_map_in_arrow_decides_as_evaluate(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyspark.sql import SparkSession

    import engine
    import engine.spark

    cases = []
    for i, file in enumerate(sorted((ROOT / "fixtures" / "cases").glob("*.json"))):
        case = json.loads(file.read_text(encoding="utf-8"))
        case.pop("$comment", None)
        cases.append({"id": f"A{i}", **case})
    path = tmp_path / "cases.parquet"
    pq.write_table(pa.Table.from_struct_array(pa.array(cases)), path)
    policy = engine.load(ROOT / "policies" / "ear-742.7", version="2020-10-06")
    spark = SparkSession.builder.master("local[2]").appName("policy-engine-test").getOrCreate()
    try:
        rows = engine.spark.decide(spark.read.parquet(str(path)), policy, id_column="id").collect()
    finally:
        spark.stop()
    by_id = {r["id"]: r for r in rows}
    assert len(by_id) == len(cases)
    for case in cases:
        decision = policy.evaluate({k: v for k, v in case.items() if k != "id"})
        row = by_id[case["id"]]
        assert row["license_review"] == decision.value("license_review")
        assert list(row["fired"]) == decision.fired
        assert row["error"] is None
