"""Coverage of rules and conditions by test cases, computed from decision traces."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from engine.checker import check_text
from engine.cli import main
from engine.coverage import VersionCoverage, collect, report_lines, total_percent
from engine.runtime import CompiledPolicy

ROOT = Path(__file__).resolve().parent.parent

POLICY = """policy "cov"
  title "t"
  version "1"
  effective 2020-01-01
  status draft
  source "s"

enum E "e" = <a, b>
fact x: boolean "x"
fact y: boolean "y"
fact z: optional boolean "z"
decision d: E default a "d"

rule r1 "r1"
  cite "c"
  if x and (y or z)
  then decide d = b

rule r2 "r2"
  cite "c"
  if not x
  unless y
  then decide d = b
"""


def _coverage(*cases: dict[str, Any]) -> VersionCoverage:
    result = check_text(POLICY, "cov.policy")
    assert result.program is not None, result.diagnostics
    policy = CompiledPolicy(result.program)
    [version] = collect(policy.evaluate(case, trace=True) for case in cases)
    return version


def test_counts_rules_and_every_condition_node() -> None:
    version = _coverage({"x": True, "y": True, "z": None})
    assert version.cases == 1
    assert version.rules["r1"].fired == 1 and version.rules["r2"].not_fired == 1
    texts = [(c.rule, c.clause, c.path, c.text) for c in version.conditions]
    assert texts == [
        ("r1", "if", (), "x and (y or z)"),
        ("r1", "if", (0,), "x"),
        ("r1", "if", (1,), "y or z"),
        ("r1", "if", (1, 0), "y"),
        ("r1", "if", (1, 1), "z"),
        ("r2", "if", (), "not x"),
        ("r2", "if", (0,), "x"),
        ("r2", "unless 1", (), "y"),
    ]
    z = next(c for c in version.conditions if c.text == "z")
    assert (z.true, z.false, z.unknown) == (0, 0, 1), "unknown counts as neither true nor false"


def test_percentage_is_over_true_and_false_outcomes() -> None:
    one = _coverage({"x": True, "y": True, "z": None})
    # 2 rules + 8 conditions = 20 outcomes; seen: r1 true, r2 false, and one value for each
    # condition except z (unknown): 2 + 7 = 9.
    assert one.outcomes == (9, 20)
    assert one.percent == 45.0
    full = _coverage(
        {"x": True, "y": True, "z": True},
        {"x": False, "y": False, "z": False},
        {"x": True, "y": False, "z": False},
    )
    assert full.outcomes == (20, 20)
    assert full.never_fired() == [] and full.never_false() == [] and full.never_true() == []


def test_lists_what_was_never_exercised() -> None:
    version = _coverage({"x": True, "y": True, "z": None})
    assert version.never_fired() == ["r2"]
    assert version.always_fired() == ["r1"]
    assert [c.text for c in version.never_false()] == ["x and (y or z)", "x", "y or z", "y", "z", "x", "y"]
    lines = report_lines([version])
    assert lines[1] == "  cov@1: 45.0% (9/20 outcomes, 1 cases, 1/2 rules fired)"
    assert "    never fired:" in lines and "      r2" in lines
    assert "      r1 (if): y or z" in lines


def test_total_is_over_outcomes_not_an_average() -> None:
    a = _coverage({"x": True, "y": True, "z": None})
    b = _coverage({"x": True, "y": True, "z": True}, {"x": False, "y": False, "z": False})
    seen = a.outcomes[0] + b.outcomes[0]
    assert total_percent([a, b]) == pytest.approx(100 * seen / 40)


# ---------------------------------------------------------------------------
# The command


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for folder in ("shared", "beta"):
        shutil.copytree(ROOT / "fixtures" / "lint" / folder, tmp_path / "policies" / folder)
    (tmp_path / "cases").mkdir()
    base = {"color": "red", "colors": [], "flag": False, "size": 1, "beta_only": True, "unused_fact": False}
    (tmp_path / "cases" / "flagged.json").write_text(json.dumps(base))
    (tmp_path / "cases" / "plain.json").write_text(json.dumps({**base, "beta_only": False}))
    (tmp_path / "intent").mkdir()
    (tmp_path / "intent" / "beta.toml").write_text(
        '[[expect]]\ncase = "flagged"\nversion = "2020-01-01"\noutcome = "denied"\n'
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, ["test", "--policies", "policies", "--cases", "cases", "intent", *args])


def test_coverage_report(project: Path, snapshot: Any) -> None:
    result = _run("--coverage")
    assert result.exit_code == 0
    assert result.output == snapshot


def test_min_coverage_fails_below_the_threshold(project: Path) -> None:
    result = _run("--min-coverage", "75")
    assert result.exit_code == 1
    assert "coverage 50.0% is below the minimum 75%" in result.output
    (project / "intent" / "beta.toml").write_text(
        (project / "intent" / "beta.toml").read_text()
        + '\n[[expect]]\ncase = "plain"\nversion = "2020-01-01"\noutcome = "none"\n'
    )
    assert _run("--min-coverage", "100").exit_code == 0


def test_coverage_json(project: Path) -> None:
    data = json.loads(_run("--coverage", "--format", "json").output)
    coverage = data["coverage"]
    assert coverage["percent"] == 50.0 and coverage["minimum"] is None
    [version] = coverage["versions"]
    assert (version["policy"], version["version"], version["cases"]) == ("beta", "2020-01-01", 1)
    assert version["rules"] == [
        {
            "rule": "beta-deny",
            "fired": 1,
            "not_fired": 0,
            "unknown": 0,
            "conditions": [
                {"clause": "if", "path": [], "condition": "beta_only", "true": 1, "false": 0, "unknown": 0}
            ],
        }
    ]


def test_bundled_pack_coverage(in_root: Path) -> None:
    """The bundled cases exercise every rule and condition both ways (keep it so)."""
    result = CliRunner().invoke(main, ["test", "--min-coverage", "100"])
    assert result.exit_code == 0, result.output[-3000:]
