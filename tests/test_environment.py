"""The entry object (engine.Environment) and the loading stage (engine/loader.py) it owns."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import engine
from engine.checker import check_unit
from engine.loader import Loader
from tests.conftest import LANGUAGE

BODY = """
use "vocab/trade.vocab"

rule r1 "Flagged cases"
  cite "test (a)"
  if hr_abuse_risk
  then decide license_review = not_favorable
"""


def test_one_cache_by_content(write_policy: Callable[..., Path]) -> None:
    path = write_policy(BODY)
    env = engine.Environment()
    first = env.load(path)
    assert env.load(path) is first  # unchanged: checked and compiled once
    path.write_text(path.read_text(encoding="utf-8").replace("Flagged cases", "Flagged"), encoding="utf-8")
    assert env.load(path) is not first  # any edit is seen on the next load
    assert engine.Environment().load(path) is not env.load(path)  # each environment has its own cache


def test_an_edited_table_file_is_a_new_policy(tmp_path: Path, write_policy: Callable[..., Path]) -> None:
    path = write_policy(BODY)
    env = engine.Environment()
    first = env.load(path)
    table = tmp_path / "data" / "country-groups.json"
    table.write_text(table.read_text(encoding="utf-8").replace("\n", "\n "), encoding="utf-8")
    assert env.load(path) is not first


def test_the_overlay_is_read_instead_of_the_disk(write_policy: Callable[..., Path]) -> None:
    path = write_policy(BODY)
    unsaved = path.read_text(encoding="utf-8").replace("if hr_abuse_risk", "if hr_abuse_rsk")
    result = engine.Environment(overlay={str(path): unsaved}).check_file(path)
    assert [d.code for d in result.diagnostics] == ["unknown-fact"]
    assert engine.Environment().check_file(path).ok


def test_check_results_are_copies(write_policy: Callable[..., Path]) -> None:
    env = engine.Environment()
    path = write_policy(BODY)
    env.check_file(path).diagnostics.append(engine.Diagnostic(code="x", message="x", file="x"))
    assert env.check_file(path).diagnostics == []


def test_the_loader_gathers_and_the_checker_only_checks(in_root: Path) -> None:
    unit = Loader().gather(Path("fixtures/language/demo/2020-10-06.policy"))
    assert unit.root is not None and unit.diagnostics == []
    assert any(path.suffix == ".vocab" for _, path in unit.items)  # `use` followed
    assert unit.tables and all(t.problem is None for t in unit.tables.values())
    result = check_unit(unit)
    assert result.ok and result.program is not None


def test_a_missing_vocabulary_is_reported_by_the_loading_stage(write_policy: Callable[..., Path]) -> None:
    unit = Loader().gather(write_policy(BODY.replace("vocab/trade.vocab", "vocab/none.vocab")))
    assert [d.code for d in unit.diagnostics] == ["file-not-found"]


def test_versions_come_from_the_environment() -> None:
    env = engine.Environment()
    assert [v.version for v in env.versions(LANGUAGE / "demo")] == [
        v.version for v in engine.read_versions(LANGUAGE / "demo")
    ]
    with pytest.raises(engine.VersionError):
        env.load(LANGUAGE / "demo", version="nope")
