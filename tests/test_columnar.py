"""Typed columnar ingestion (engine/columnar.py): the generated loop over encoded Arrow columns gives
the key `CompiledRules.decide` gives, for every bundled version and for every fact type; values
outside their enumeration and missing required facts are rejects with their row; decimals are exact;
`decide_batches` answers what `evaluate` answers; `import engine` loads neither pyarrow nor dask.
"""

from __future__ import annotations

import datetime
import json
import pickle
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import api
from engine.columnar import Columnar, ColumnarError, PolicyRef, case_of_row, decide_batches, parse_key
from engine.runtime import CompiledPolicy

ROOT = Path(__file__).resolve().parent.parent
CASE_FILES = sorted((ROOT / "fixtures" / "cases").glob("*.json"))
BUNDLED = [
    ROOT / "policies" / "ear-742.7" / "2020-03-09.policy",
    ROOT / "policies" / "ear-742.7" / "2020-10-06.policy",
    ROOT / "policies" / "ear-742.7" / "2024-07-29.policy",
    ROOT / "policies" / "ear-742.11" / "1996-03-25.policy",
    ROOT / "policies" / "state-surveillance-dd" / "2020-09-30.policy",
]

TYPED = """policy "typed"
  title "Typed facts"
  version "1"
  effective 2021-01-01
  status in-force
  source "tests"

enum Color "colours" = <red, green, blue>
enum Review "review" = <yes, no>

fact amount: number "an amount"
fact limit: optional number "a limit"
fact when: date "a date"
fact days: set of date "dates"
fact amounts: set of number "amounts"
fact colors: set of Color "colours"
fact names: set of string "names"
fact party.kind: Color "kind"
fact party.since: optional date "since"
fact party.flag: optional boolean "flag"
fact top: string "text"

decision review: Review default no "review"
obligation check "a check"
obligation late "late"
obligation named "named"

rule big "Big amounts"
  cite "tests"
  if amount > 10.25
  then decide review = yes

rule small-limit "A limit under 3.5"
  cite "tests"
  overrides big
  if limit < 3.5 and amount > 10.25
  then decide review = no and require check

rule late "Late or early"
  cite "tests"
  if when >= 2020-06-01 or party.since < 2019-01-01
  then require late

rule sets "Set tests"
  cite "tests"
  if colors includes any <red, blue> and not party.kind = green and (amounts includes 2.5 or days includes 2020-01-01)
  then require named

rule names "Names"
  cite "tests"
  if names includes "a" and top = "x" and party.flag
  then require check
"""

SCHEMA = pa.schema(
    [
        ("amount", pa.decimal128(18, 4)),
        ("limit", pa.decimal128(10, 1)),
        ("when", pa.date32()),
        ("days", pa.list_(pa.date32())),
        ("amounts", pa.list_(pa.decimal128(10, 2))),
        ("colors", pa.list_(pa.string())),
        ("names", pa.list_(pa.string())),
        ("party", pa.struct([("kind", pa.string()), ("since", pa.date32()), ("flag", pa.bool_())])),
        ("top", pa.string()),
    ]
)


@pytest.fixture(scope="module")
def typed(tmp_path_factory: pytest.TempPathFactory) -> api.Policy:
    path = tmp_path_factory.mktemp("typed") / "typed.policy"
    path.write_text(TYPED, encoding="utf-8")
    return api.load(path)


def fixture_cases() -> list[dict[str, Any]]:
    cases = []
    for f in CASE_FILES:
        case = json.loads(f.read_text(encoding="utf-8"))
        case.pop("$comment", None)
        cases.append(case)
    return cases


def as_batch(rows: list[dict[str, Any]], schema: pa.Schema | None = None) -> pa.RecordBatch:
    if schema is not None:
        return pa.RecordBatch.from_pylist(rows, schema=schema)
    return pa.RecordBatch.from_struct_array(pa.array(rows))


def json_case(row: dict[str, Any]) -> dict[str, Any]:
    """An Arrow-side row as the JSON case `evaluate` takes (dates as text)."""

    def one(v: Any) -> Any:
        if isinstance(v, datetime.date):
            return v.isoformat()
        if isinstance(v, list):
            return [one(x) for x in v]
        if isinstance(v, dict):
            return {k: one(x) for k, x in v.items() if x is not None}
        return v

    return {k: one(v) for k, v in row.items() if v is not None}


def expected_key(compiled: CompiledPolicy, case: dict[str, Any], when: datetime.date) -> tuple[int, ...]:
    return tuple(sorted(compiled.fired(compiled.validate(case), when), key=lambda i: i if i >= 0 else ~i))


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: f"{p.parent.name}@{p.stem}")
def test_keys_match_the_compiled_rules_on_every_fixture_case(path: Path) -> None:
    policy = api.load(path)
    cases = fixture_cases()
    batch = as_batch(cases)
    when = policy.info.effective
    for at in (when, datetime.date(2019, 1, 1), datetime.date(2026, 1, 1)):
        ids, keys, encoded = Columnar(policy.compiled, batch.schema).decide(batch, at)
        assert not encoded.rejects
        for i, case in enumerate(cases):
            assert keys[ids[i]] == expected_key(policy.compiled, case, at), (path, i, at)


def _typed_rows() -> Any:
    colors = st.lists(st.sampled_from(["red", "green", "blue"]), max_size=3)
    decimals = st.decimals(min_value=-100, max_value=100, places=2, allow_nan=False)
    dates = st.dates(min_value=datetime.date(2018, 1, 1), max_value=datetime.date(2022, 12, 31))
    return st.fixed_dictionaries(
        {
            "amount": st.decimals(min_value=-50, max_value=50, places=4, allow_nan=False),
            "limit": st.none() | st.decimals(min_value=0, max_value=10, places=1, allow_nan=False),
            "when": dates,
            "days": st.lists(
                st.sampled_from([datetime.date(2020, 1, 1), datetime.date(2020, 1, 2)]) | dates, max_size=3
            ),
            "amounts": st.lists(
                st.sampled_from([Decimal("2.5"), Decimal("2.50"), Decimal("1")]) | decimals, max_size=3
            ),
            "colors": colors,
            "names": st.lists(st.sampled_from(["a", "b", "", "a\x1fb"]), max_size=3),
            "party": st.fixed_dictionaries(
                {
                    "kind": st.sampled_from(["red", "green", "blue"]),
                    "since": st.none() | dates,
                    "flag": st.none() | st.booleans(),
                }
            ),
            "top": st.sampled_from(["x", "y", ""]),
        }
    )


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(_typed_rows(), min_size=1, max_size=20))
def test_every_fact_type_decides_as_the_compiled_rules(typed: api.Policy, rows: list[dict[str, Any]]) -> None:
    """Numbers, optional numbers, dates, sets of each, enum sets, strings, optional records: same keys."""
    batch = as_batch(rows, SCHEMA)
    columnar = Columnar(typed.compiled, batch.schema)
    when = datetime.date(2021, 1, 1)
    ids, keys, encoded = columnar.decide(batch, when)
    assert not encoded.rejects
    for i, row in enumerate(rows):
        case = json_case(row)
        assert keys[ids[i]] == expected_key(typed.compiled, case, when), case
        decoded = case_of_row(batch, i, typed.compiled.program)  # what a trace is made from
        assert typed.compiled.validate(decoded) == typed.compiled.validate(case)


def test_decimals_are_exact_and_floats_are_refused(typed: api.Policy) -> None:
    """10.2500001 > 10.25 although a float would round it; 0.1 + 0.2 style values stay exact."""
    base = {
        "when": datetime.date(2020, 1, 1),
        "days": [],
        "amounts": [],
        "colors": [],
        "names": [],
        "party": {"kind": "red", "since": None, "flag": None},
        "top": "y",
        "limit": None,
    }
    schema = SCHEMA.set(0, pa.field("amount", pa.decimal128(38, 20)))
    rows = [
        {**base, "amount": Decimal("10.25000000000000000001")},
        {**base, "amount": Decimal("10.25")},
        {**base, "amount": Decimal("-10.25000000000000000001")},
    ]
    batch = as_batch(rows, schema)
    when = datetime.date(2021, 1, 1)
    ids, keys, _ = Columnar(typed.compiled, batch.schema).decide(batch, when)
    assert [0 in keys[i] for i in ids] == [True, False, False]  # rule `big`: amount > 10.25
    assert [keys[i] for i in ids] == [expected_key(typed.compiled, json_case(r), when) for r in rows]
    as_float = SCHEMA.set(0, pa.field("amount", pa.float64()))
    with pytest.raises(ColumnarError, match="floating point"):
        Columnar(typed.compiled, as_float)
    as_int = SCHEMA.set(0, pa.field("amount", pa.int64()))
    batch = as_batch([{**base, "amount": 11}, {**base, "amount": 10}], as_int)
    ids, keys, _ = Columnar(typed.compiled, batch.schema).decide(batch, when)
    assert [0 in keys[i] for i in ids] == [True, False]


def test_values_outside_the_enumeration_and_missing_facts_are_rejects_with_their_row() -> None:
    policy = api.load(BUNDLED[1])
    cases = fixture_cases()[:5]
    cases[1] = {**cases[1], "destination": "ZZ"}
    cases[3] = {**cases[3], "control_reason": ["CC", "bogus"]}
    cases[4] = {**cases[4], "license_required": None}
    batch = as_batch(cases)
    ids, keys, encoded = Columnar(policy.compiled, batch.schema).decide(batch, policy.info.effective)
    assert sorted(encoded.rejects) == [1, 3, 4]
    assert (
        encoded.rejects[1][0][0] == "destination"
        and "'ZZ' is not one of the allowed values" in encoded.rejects[1][0][1]
    )
    assert encoded.rejects[3][0][0] == "control_reason" and "'bogus'" in encoded.rejects[3][0][1]
    assert encoded.rejects[4] == [("license_required", "is required but missing")]
    for i in (0, 2):
        assert keys[ids[i]] == expected_key(policy.compiled, cases[i], policy.info.effective)


def test_schema_problems_are_usage_errors_naming_the_column() -> None:
    policy = api.load(BUNDLED[1])
    cases = fixture_cases()[:2]
    with pytest.raises(ColumnarError, match="`bogus`"):
        Columnar(policy.compiled, as_batch([{**c, "bogus": 1} for c in cases]).schema)
    with pytest.raises(ColumnarError, match="required fact `eccn` has no column"):
        Columnar(
            policy.compiled, as_batch([{k: v for k, v in c.items() if k != "eccn"} for c in cases]).schema
        )
    with pytest.raises(ColumnarError, match="`civil_disorder` is a boolean"):
        Columnar(policy.compiled, as_batch([{**c, "civil_disorder": 1} for c in cases]).schema)


def test_decide_batches_answers_what_evaluate_answers() -> None:
    policy = api.load(BUNDLED[1])
    cases = fixture_cases()
    bad = {**cases[0], "destination": "ZZ"}
    batch = as_batch([{"$id": f"c{i}", **c} for i, c in enumerate([*cases, bad])])
    ref = PolicyRef.of(policy, id_column="$id")
    ref = pickle.loads(pickle.dumps(ref))  # it travels to workers
    (out,) = list(decide_batches(ref, [batch]))
    rows = out.to_pylist()
    assert len(rows) == len(cases) + 1
    for row, case in zip(rows, cases, strict=False):
        decision = policy.evaluate(case)
        assert row["license_review"] == decision.value("license_review")
        assert row["obligations"] == decision.obligation_names
        assert row["recommendations"] == decision.recommendation_names
        assert row["fired"] == decision.fired
        assert row["unknown"] == decision.unknown
        assert row["error"] is None
        assert parse_key(row["rule_key"]) == expected_key(policy.compiled, case, policy.info.effective)
    last = rows[-1]
    assert last["$id"] == f"c{len(cases)}" and last["license_review"] is None
    assert json.loads(last["error"])[0]["path"] == "destination"


def test_a_policy_ref_whose_sources_were_changed_is_refused() -> None:
    policy = api.load(BUNDLED[0])
    ref = PolicyRef.of(policy)
    name, text = ref.sources[0]
    forged = PolicyRef(
        ref.entry,
        ((name, text.replace("considered favourably", "considered well")), *ref.sources[1:]),
        "0" * 64,
    )
    with pytest.raises(ValueError, match="changed in transit"):
        forged.load()


def test_import_engine_loads_neither_pyarrow_nor_dask() -> None:
    code = (
        "import sys, engine, engine.cli\n"
        "heavy = [m for m in ('pyarrow', 'dask', 'distributed', 'pyspark') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_declared_defaults_apply_to_null_values_and_missing_columns() -> None:
    policy = api.load(ROOT / "fixtures" / "language" / "defaults.policy")
    rows = [
        {"listed": None, "party": {"kind": "government", "name": None}, "reasons": None, "quantity": 500},
        {"listed": False, "party": None, "reasons": ["CC"], "quantity": None},
        {"listed": True, "party": {"kind": None, "name": "x"}, "reasons": [], "quantity": 5},
    ]
    schema = pa.schema(
        [
            ("listed", pa.bool_()),
            ("party", pa.struct([("kind", pa.string()), ("name", pa.string())])),
            ("reasons", pa.list_(pa.string())),
            ("quantity", pa.int64()),
        ]
    )  # no `shipped` or `note` column at all: defaults (and missing) throughout
    batch = as_batch(rows, schema)
    when = datetime.date(2021, 7, 1)
    ids, keys, encoded = Columnar(policy.compiled, batch.schema).decide(batch, when)
    assert not encoded.rejects
    for i, row in enumerate(rows):
        assert keys[ids[i]] == expected_key(policy.compiled, json_case(row), when), row


def test_dictionary_encoded_and_sliced_columns_read_the_same() -> None:
    """Parquet readers hand out dictionary-encoded strings and slices of batches: same keys, same rejects."""
    policy = api.load(BUNDLED[1])
    cases = fixture_cases()
    cases[5] = {**cases[5], "control_reason": None}
    plain = as_batch(cases)
    index = plain.schema.get_field_index("control_reason")
    column = plain.column(index)
    encoded_list = pa.ListArray.from_arrays(
        column.offsets, column.values.dictionary_encode(), mask=column.is_null()
    )
    destination = plain.schema.get_field_index("destination")
    batch = plain.set_column(index, "control_reason", encoded_list)
    batch = batch.set_column(destination, "destination", batch.column(destination).dictionary_encode())
    when = policy.info.effective
    a_ids, a_keys, a_enc = Columnar(policy.compiled, plain.schema).decide(plain.slice(3, 20), when)
    b_ids, b_keys, b_enc = Columnar(policy.compiled, batch.schema).decide(batch.slice(3, 20), when)
    assert [a_keys[i] for i in a_ids] == [b_keys[i] for i in b_ids]
    assert a_enc.rejects == b_enc.rejects == {2: [("control_reason", "is required but missing")]}


def test_policies_with_arithmetic_are_decided_row_by_row_with_the_same_rules() -> None:
    """Computed numbers have no encoded form yet: each row is validated and decided by the compiled rules."""
    policy = api.load(ROOT / "fixtures" / "language" / "numbers.policy")
    enum = policy.compiled.program.facts["category"].type.enum or ""
    categories = policy.compiled.program.enums[enum]
    rows = [
        {"category": categories[i % len(categories)], "item_value": Decimal(1000 + 37 * i), "part_value": Decimal(i * 13) / 4,
         "freight": None if i % 3 else Decimal(12), "discount": None if i % 2 else Decimal("7.5")}
        for i in range(40)
    ]  # fmt: skip
    rows.append({**rows[0], "category": "nope"})
    schema = pa.schema(
        [
            ("category", pa.string()),
            ("item_value", pa.decimal128(12, 2)),
            ("part_value", pa.decimal128(12, 2)),
            ("freight", pa.decimal128(12, 2)),
            ("discount", pa.decimal128(12, 2)),
        ]
    )
    batch = as_batch(rows, schema)
    when = policy.info.effective
    ids, keys, encoded = Columnar(policy.compiled, batch.schema).decide(batch, when)
    assert list(encoded.rejects) == [40] and encoded.rejects[40][0][0] == "category"
    for i, row in enumerate(rows[:40]):
        case = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in row.items() if v is not None}
        assert keys[ids[i]] == expected_key(
            policy.compiled, {k: Decimal(v) if k != "category" else v for k, v in case.items()}, when
        )
