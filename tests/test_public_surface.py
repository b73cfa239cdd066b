"""The public surface (engine/__init__.py): a small typed API, one error hierarchy, ISO dates.

An embedding application type-checks against the engine: `engine/py.typed` ships in the
wheel, and `mypy --strict` passes on a user script that loads, evaluates and catches errors.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest

import engine
from engine.errors import CaseDiagnostic
from tests.conftest import LANGUAGE, ROOT

USER_SCRIPT = """\
import datetime

import engine

policy: engine.Policy = engine.load("fixtures/language/demo", at="2021-01-01")
try:
    decision: engine.Decision = policy.evaluate({"eccn": "0A978"}, at=datetime.date(2021, 1, 1))
except engine.CaseError as error:
    codes: list[str] = [d.code for d in error.diagnostics]
    fields: list[str] = [field for field, _ in error.problems]
except engine.Error as error:
    print(engine.Diagnostic.model_validate(error.diagnostics[0]).message)
else:
    print(engine.render_decision(decision, "text"))
"""


def test_internals_are_not_in_the_surface() -> None:
    assert "RawTrace" not in engine.__all__ and "Resolution" not in engine.__all__
    assert len(engine.__all__) <= 22
    for name in engine.__all__:
        assert hasattr(engine, name), name


def test_py_typed_ships_with_the_package() -> None:
    assert (ROOT / "engine" / "py.typed").is_file()
    assert 'packages = ["engine"]' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def test_mypy_strict_passes_on_a_user_script(tmp_path: Path) -> None:
    script = tmp_path / "user_script.py"
    script.write_text(USER_SCRIPT, encoding="utf-8")
    mypy = Path(sys.executable).parent / "mypy"
    command = [str(mypy)] if mypy.exists() else [sys.executable, "-m", "mypy"]
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    result = subprocess.run(
        [*command, "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(script)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_error_is_an_engine_error_with_coded_diagnostics() -> None:
    for error in (engine.PolicyError, engine.CaseError, engine.UsageError, engine.VersionError):
        assert issubclass(error, engine.Error)
    assert issubclass(engine.VersionError, engine.UsageError)  # callers catching UsageError still do
    with pytest.raises(engine.VersionError) as caught:
        engine.load(LANGUAGE / "demo", version="no-such")
    assert [d.code for d in caught.value.diagnostics] == ["version"]
    assert caught.value.help and "its versions are" in caught.value.help


def test_case_problems_are_coded_diagnostics() -> None:
    policy = engine.load(LANGUAGE / "demo", version="2020-10-06")
    with pytest.raises(engine.CaseError) as caught:
        policy.evaluate({"eccn": 1, "colour": "red", "destination": "ZZ"})
    found = {d.field: d.code for d in caught.value.diagnostics if isinstance(d, CaseDiagnostic)}
    assert found["colour"] == "unknown-fact"
    assert found["destination"] == "invalid-value"
    assert found["eccn"] == "invalid-value"
    assert "missing-fact" in found.values()
    assert caught.value.problems == [(d.field, d.message) for d in caught.value.case_diagnostics]
    with pytest.raises(engine.CaseError) as not_an_object:
        policy.evaluate([])  # type: ignore[arg-type]
    assert [d.code for d in not_an_object.value.diagnostics] == ["invalid-case"]


def test_the_api_takes_iso_date_strings() -> None:
    by_string = engine.load(LANGUAGE / "demo", at="2021-01-01")
    by_date = engine.load(LANGUAGE / "demo", at=datetime.date(2021, 1, 1))
    assert by_string.version == by_date.version and by_string.at == by_date.at
    with pytest.raises(engine.UsageError, match="is not a date"):
        engine.load(LANGUAGE / "demo", at="2021-02-30")
