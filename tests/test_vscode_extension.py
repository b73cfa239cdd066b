"""The VS Code extension's own tests (editors/vscode/test/, node's test runner), run from the suite.

They need node and the extension's npm dependencies (`npm ci` in editors/vscode, which
.ci/run does through editors/vscode/ci.sh); without them this test is skipped, and CI
still runs them there, with `vsce package`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

EXTENSION = Path(__file__).resolve().parent.parent / "editors" / "vscode"


def test_extension_client_wiring_under_node() -> None:
    node = shutil.which("node")
    if node is None or not (EXTENSION / "node_modules" / "vscode-languageclient").is_dir():
        pytest.skip("node or the extension's node_modules are missing (run `npm ci` in editors/vscode)")
    done = subprocess.run(
        [node, "--test", "test/"], cwd=EXTENSION, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# fail 0" in done.stdout


def test_manifest_and_lock_agree() -> None:
    """package-lock.json is committed and pins the client library package.json asks for."""
    manifest = json.loads((EXTENSION / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((EXTENSION / "package-lock.json").read_text(encoding="utf-8"))
    assert lock["packages"][""]["dependencies"] == manifest["dependencies"]
    assert "node_modules/vscode-languageclient" in lock["packages"]
    assert manifest["main"] == "./extension.js" and (EXTENSION / "extension.js").is_file()
