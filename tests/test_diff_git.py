"""`policy diff FILE --against git:REV`: the whole policy tree at REV, and a revision that is only a revision."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import main

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

VOCAB = """vocabulary "shared"
  title "Shared facts"

enum Review "review" = <favorable, not_favorable, not_applicable>

fact cc: boolean "controlled for crime control"
fact risk: boolean "risk of abuse"

decision license_review: Review default not_applicable "how the application is reviewed"
"""

POLICY = """policy "mini"
  title "Mini"
  version "2021-01-01"
  effective 2021-01-01
  status in-force
  source "tests"

use "../shared/facts.vocab"

rule favorable "CC items are considered favourably"
  cite "P(1)"
  if cc{extra}
  then decide license_review = favorable
"""


def git(root: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return proc.stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with policies/shared/facts.vocab and policies/mini/2021-01-01.policy committed."""
    (tmp_path / "policies" / "shared").mkdir(parents=True)
    (tmp_path / "policies" / "mini").mkdir()
    (tmp_path / "policies" / "shared" / "facts.vocab").write_text(VOCAB, encoding="utf-8")
    (tmp_path / "policies" / "mini" / "2021-01-01.policy").write_text(
        POLICY.format(extra=" and not risk"), encoding="utf-8"
    )
    (tmp_path / "cases").mkdir()
    for cc in (True, False):
        for risk in (True, False):
            case = {"cc": cc, "risk": risk}
            (tmp_path / "cases" / f"cc-{cc}-risk-{risk}.json").write_text(json.dumps(case))
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "first")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _diff(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["diff", "policies/mini/2021-01-01.policy", "--cases", "cases", *args], catch_exceptions=False
    )
    return result.exit_code, result.output


def test_a_vocabulary_and_a_version_file_changed_together(repo: Path) -> None:
    """The working copy renames the default review in the vocabulary and edits the rule: the
    committed version must be decided with the committed vocabulary (its default included)."""
    vocab = repo / "policies" / "shared" / "facts.vocab"
    vocab.write_text(VOCAB.replace("not_applicable", "none"), encoding="utf-8")
    (repo / "policies" / "mini" / "2021-01-01.policy").write_text(POLICY.format(extra=""), encoding="utf-8")
    code, output = _diff("--against", "git:HEAD", "--format", "json")
    assert code == 0, output
    report = json.loads(output)
    assert report["before"]["label"] == "git:HEAD"
    assert report["summary"]["failed"] == 0
    changes = {c["case"]: c["changes"][0] for c in report["cases"]}
    assert (changes["cc-True-risk-True"]["before"], changes["cc-True-risk-True"]["after"]) == (
        "not_applicable",
        "favorable",
    )
    assert (changes["cc-False-risk-False"]["before"], changes["cc-False-risk-False"]["after"]) == (
        "not_applicable",
        "none",
    )
    assert report["summary"]["changed"] == 3
    assert not any(p.name.startswith("policy-diff-git-") for p in Path(repo).iterdir())


def test_a_branch_name_is_a_revision(repo: Path) -> None:
    git(repo, "branch", "reviewed")
    code, output = _diff("--against", "git:reviewed")
    assert code == 0, output
    assert "git:reviewed -> working copy" in output


@pytest.mark.parametrize("revision", ["--output=written.txt", "-o", "--", "-", "HEAD\nmain"])
def test_an_option_is_never_passed_to_git_as_a_revision(repo: Path, revision: str) -> None:
    """`git:--output=PATH` once made `git show` write a file: revisions starting with `-` are refused."""
    code, output = _diff("--against", f"git:{revision}")
    assert code == 2
    assert "is not a git revision" in output
    assert not (repo / "written.txt").exists()
    assert not list((repo / "policies" / "mini").glob("written*"))


def test_an_unknown_revision_is_a_usage_error(repo: Path) -> None:
    code, output = _diff("--against", "git:no-such-branch")
    assert code == 2
    assert "`no-such-branch` is not a commit" in output


def test_a_file_not_in_the_revision(repo: Path) -> None:
    new = repo / "policies" / "mini" / "2022-01-01.policy"
    new.write_text(POLICY.replace("2021-01-01", "2022-01-01").format(extra=""), encoding="utf-8")
    result = CliRunner().invoke(
        main, ["diff", str(new.relative_to(repo)), "--cases", "cases", "--against", "git:HEAD"]
    )
    assert result.exit_code == 2
    assert "cannot read" in result.output and "git log -- FILE" in result.output
