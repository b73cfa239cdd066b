"""Decide a Spark DataFrame with `mapInArrow` (`pip install 'policy-engine[spark]'`, and Java).

`decide_batches` already has the `mapInArrow` contract, so this module only declares the
output schema to Spark (dictionary-encoded columns are sent as plain strings, which Spark
reads) and hands the function over; each executor's Python worker compiles the policy
once from the source text and content hash the `PolicyRef` carries.

    from pyspark.sql import SparkSession
    import engine, engine.spark

    spark = SparkSession.builder.getOrCreate()
    history = spark.read.parquet("s3://warehouse/licence-applications/")
    policy = engine.load("policies/ear-742.7", version="2020-10-06")
    decided = engine.spark.decide(history, policy, id_column="id")
    decided.groupBy("license_review").count().show()

Nothing here is imported by `import engine`.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any

from engine.columnar import PolicyRef, decide_batches, output_schema

__all__ = ["decide", "spark_schema"]


def _plain(batches: Iterable[Any]) -> Iterator[Any]:
    """Dictionary columns decoded to strings: Spark's Arrow reader takes plain types."""
    import pyarrow as pa

    for batch in batches:
        columns = [
            column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column
            for column in batch.columns
        ]
        yield pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _map(ref: PolicyRef, batches: Iterable[Any]) -> Iterator[Any]:
    yield from _plain(decide_batches(ref, batches))


def spark_schema(ref: PolicyRef, id_type: str = "string") -> str:
    """The output schema as Spark DDL (`license_review string, obligations array<string>, ...`)."""
    import pyarrow as pa

    parts = []
    for field in output_schema(ref):
        if field.name == ref.id_column:
            kind = id_type
        elif pa.types.is_list(field.type):
            kind = "array<string>"
        else:
            kind = "string"
        parts.append(f"`{field.name}` {kind}")
    return ", ".join(parts)


def decide(
    frame: Any,
    policy: Any,
    *,
    at: datetime.date | None = None,
    id_column: str | None = None,
) -> Any:
    """`frame.mapInArrow(decide_batches)`: one output row per input row, in the `decide_batches` schema.

    `policy` is an `engine.Policy` or a `PolicyRef`; `id_column` names a column carried to the
    output (the case id). Facts are read from the columns by name (records as struct columns).
    """
    ref = policy if isinstance(policy, PolicyRef) else PolicyRef.of(policy, at=at, id_column=id_column)
    id_type = "string"
    if ref.id_column is not None:
        id_type = frame.schema[ref.id_column].dataType.simpleString()
    return frame.mapInArrow(partial(_map, ref), spark_schema(ref, id_type))
