"""The pre-commit hooks and the CI workflow example name real commands with real options, and work."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from engine.cli import main
from tests.conftest import ROOT

yaml = pytest.importorskip("yaml")


def _known(words: list[str]) -> None:
    """`policy SUB --opt ...`: SUB exists and every option is one of its options."""
    assert words[0] == "policy"
    command = main.commands.get(words[1])
    assert isinstance(command, click.Command), f"no command `{words[1]}`"
    options = {o for p in command.params for o in getattr(p, "opts", [])}
    for word in words[2:]:
        if word.startswith("--"):
            assert word.split("=")[0] in options, f"`policy {words[1]}` has no option {word}"


def test_hooks_are_check_lint_fmt_and_real_commands(in_root: Path) -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    by_id = {h["id"]: h for h in hooks}
    assert set(by_id) == {"policy-check", "policy-fmt", "policy-lint"}
    for hook in hooks:
        words = shlex.split(hook["entry"]) + hook.get("args", [])
        _known(words)
        assert re.search(hook["files"], "policies/ear-742.7/2020-10-06.policy")


@pytest.mark.parametrize("hook_id", ["policy-check", "policy-lint"])
def test_read_only_hooks_pass_on_the_bundled_policies(hook_id: str, in_root: Path) -> None:
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    hook: dict[str, Any] = hooks[hook_id]
    files = [] if hook.get("pass_filenames") is False else ["policies/ear-742.7/2020-10-06.policy"]
    words = shlex.split(hook["entry"])[1:] + hook.get("args", []) + files
    result = CliRunner().invoke(main, words)
    assert result.exit_code == 0, result.output


def test_the_workflow_runs_the_checklist_junit_and_posts_the_markdown_diff() -> None:
    workflow = yaml.safe_load((ROOT / "docs" / "ci" / "github-actions.yml").read_text(encoding="utf-8"))
    scripts = [s["run"] for job in workflow["jobs"].values() for s in job["steps"] if "run" in s]
    commands = [
        shlex.split(line.strip().split("#")[0])
        for script in scripts
        for line in script.splitlines()
        if line.strip().startswith("policy ")
    ]
    for words in commands:
        _known([w for w in words if "$" not in w or w.startswith("--")])
    joined = [" ".join(c) for c in commands]
    assert any(c.startswith("policy test") and "--junit" in c for c in joined)
    assert any(c.startswith("policy diff") and "--format md" in c and "--against" in c for c in joined)
    assert any("gh pr comment" in s and "policy-diff.md" in s for s in scripts)
