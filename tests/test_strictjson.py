"""engine/strictjson.py: the one JSON reader for cases and tables (issue 11)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import strictjson
from engine.strictjson import JsonError, Limits, locate, parse


def error_of(data: str | bytes, limits: Limits = strictjson.DEFAULT) -> JsonError:
    with pytest.raises(JsonError) as caught:
        parse(data, "case.json", limits)
    return caught.value


def test_duplicate_keys_are_rejected_at_the_repeat() -> None:
    err = error_of('{\n  "hr_abuse_risk": true,\n  "hr_abuse_risk": false\n}')
    assert (err.code, err.line, err.column) == ("duplicate-key", 3, 3)
    assert "hr_abuse_risk" in err.message and err.help
    assert error_of('{"a": {"b": 1, "b": 1}}').code == "duplicate-key"


def test_limits_are_located_errors_not_crashes() -> None:
    assert error_of("[" * 10_000 + "]" * 10_000).code == "too-deep"
    assert error_of('{"n": ' + "9" * 5000 + "}").code == "number-too-long"
    assert error_of('{"n": NaN}').code == "not-a-number"
    assert error_of('{"n": 1e999}').code == "not-a-number"
    assert error_of(b"x" * 100, Limits(max_bytes=10)).code == "too-large"
    assert parse("[" * 64 + "]" * 64) == parse("[" * 64 + "]" * 64)


def test_utf8_policy_is_one_for_all() -> None:
    assert parse(b'\xef\xbb\xbf{"a": "\xc3\xa9"}') == {"a": "é"}  # one leading BOM: skipped
    err = error_of(b'{\n "a": "\xed\xa0\x80"}')  # CESU-8 / an encoded surrogate: not UTF-8
    assert (err.code, err.line, err.column) == ("invalid-utf8", 2, 8)
    assert error_of(b'{"a": "\xff"}').code == "invalid-utf8"
    assert error_of('{"a": "\\udc80"}').code == "lone-surrogate"
    assert parse('{"a": "\\ud83d\\ude00"}') == {"a": "😀"}  # a whole pair is a character
    assert error_of('{"a": 1}\ufeff').code == "invalid-json"


def test_syntax_errors_are_located() -> None:
    err = error_of('{\n  "a": 1,\n}')
    assert (err.code, err.line, err.column) == ("invalid-json", 3, 1)


def test_read_reports_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(JsonError) as caught:
        strictjson.read(tmp_path / "missing.json")
    assert caught.value.code == "cannot-read"


def test_locate_finds_values_by_path() -> None:
    text = '{\n  "entries": [\n    {"key": "a", "value": 1},\n    {"key": "b",\n     "value": "x"}\n  ]\n}\n'
    assert locate(text, ("entries", 1, "value")) == (5, 15)
    assert locate(text, ("entries", 0)) == (3, 5)
    assert locate(text, ("entries", 9)) == (2, 14)  # as deep as it exists


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@given(JSON)
def test_valid_json_reads_as_json_loads_does(value: object) -> None:
    text = json.dumps(value)
    try:
        assert parse(text) == json.loads(text)
    except JsonError as err:  # only for what the rules reject
        assert err.code in ("lone-surrogate", "too-deep")


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    try:
        parse(data)
    except JsonError as err:
        assert err.code and err.message
