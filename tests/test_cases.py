"""The case module (engine/cases.py): one reader, one wording, one record tree for every tool."""

from __future__ import annotations

from pathlib import Path

import pytest

import engine
from engine import cases
from engine.errors import CaseError
from tests.conftest import LANGUAGE


def codes(exc: pytest.ExceptionInfo[CaseError]) -> list[tuple[str, int, int]]:
    return [(d.code, d.line, d.column) for d in exc.value.diagnostics]


def test_bad_json_is_located() -> None:
    with pytest.raises(CaseError) as caught:
        cases.parse_case('{\n  "eccn": ,\n}', "case.json")
    assert codes(caught) == [("invalid-json", 2, 11)]
    assert caught.value.diagnostics[0].location == "case.json:2:11"


def test_bytes_that_are_not_utf8_are_bad_json_with_a_column() -> None:
    with pytest.raises(CaseError) as caught:
        cases.decode_json(b'{"a": "\xff"}')
    assert codes(caught) == [("invalid-json", 1, 8)]
    assert caught.value.case_diagnostics[0].message.startswith("not UTF-8 text")


def test_json_that_is_not_an_object_is_not_a_case() -> None:
    with pytest.raises(CaseError) as caught:
        cases.parse_case("[1, 2]")
    assert codes(caught) == [("invalid-case", 0, 0)]


def test_an_unreadable_file_is_a_problem_of_the_case(tmp_path: Path) -> None:
    missing = cases.read_case_file(tmp_path / "nowhere.json")
    assert missing.facts is None and missing.problem is not None
    assert missing.problem.code == "unreadable-case"
    assert missing.problem_text == "cannot read the file: No such file or directory"


def test_one_wording_for_read_problems(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    (tmp_path / "list.json").write_text("[]", encoding="utf-8")
    (tmp_path / "ok.json").write_text('{"$comment": "why", "a": 1}', encoding="utf-8")
    broken = cases.read_case_file(tmp_path / "broken.json")
    assert broken.problem_text == (
        "not JSON: line 1, column 2: Expecting property name enclosed in double quotes"
    )
    assert cases.read_case_file(tmp_path / "list.json").problem_text == cases.CASE_IS
    ok = cases.read_case_file(tmp_path / "ok.json")
    assert ok.facts == {"$comment": "why", "a": 1} and ok.comment == "why"


def test_field_paths_read_as_the_case_author_writes_them() -> None:
    assert cases.field_path(("end_user", "type")) == "end_user.type"
    assert cases.field_path(("control_reason", 1)) == "control_reason[1]"
    assert cases.field_path(()) == "(case)"


def test_records_follow_dotted_fact_paths_in_declaration_order() -> None:
    program = engine.load(LANGUAGE / "demo", version="2020-10-06").compiled.program
    tree = cases.records(program)
    top = list(tree.entries)
    assert top == list(dict.fromkeys(path.split(".")[0] for path in program.facts))
    end_user = tree.at("end_user")
    assert {key for key, _ in end_user.facts()} == {
        path.split(".", 1)[1] for path in program.facts if path.startswith("end_user.")
    }
    assert cases.value_at({"end_user": {"name": "x"}}, "end_user.name") == "x"
    assert cases.value_at({"end_user": None}, "end_user.name") is None
