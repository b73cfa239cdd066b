"""Shared test fixtures: where the fixture policies live, and a header for policies written inline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LANGUAGE = ROOT / "fixtures" / "language"
ERRORS = ROOT / "fixtures" / "errors"

#: The header of a policy written inline in a test; 6 lines, so the first declaration is on line 7.
HEADER = """policy "test"
  title "Test policy"
  version "2021-01-01"
  effective 2021-01-01
  status in-force
  source "tests"
"""


@pytest.fixture
def in_root(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from the repository root, so paths in diagnostics read `fixtures/...` on every machine."""
    monkeypatch.chdir(ROOT)
    return ROOT


@pytest.fixture
def write_policy(tmp_path: Path) -> Callable[..., Path]:
    """Write `HEADER` + body as a policy file (and any other files given) under a temporary folder.

    The test vocabulary `fixtures/language/vocab/trade.vocab` and its tables are copied beside
    the policy, so a policy can say `use "vocab/trade.vocab"`.
    """

    def write(
        body: str, name: str = "test.policy", header: str = HEADER, files: dict[str, str] | None = None
    ) -> Path:
        (tmp_path / "vocab").mkdir(exist_ok=True)
        (tmp_path / "data").mkdir(exist_ok=True)
        for source in ("vocab/trade.vocab", "data/country-groups.json", "data/eccn-paragraphs.json"):
            (tmp_path / source).write_text((LANGUAGE / source).read_text(encoding="utf-8"), encoding="utf-8")
        for other, text in (files or {}).items():
            (tmp_path / other).write_text(text, encoding="utf-8")
        path = tmp_path / name
        path.write_text(header + body, encoding="utf-8")
        return path

    return write
