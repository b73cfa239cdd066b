"""The HTML diff report in a real headless Chromium: it renders, its numbers match the JSON, the filter works.

Chromium runs the page's inline script and `--dump-dom` prints the DOM afterwards, so the
filter is driven through the URL hash it reads on load (`#transition=KEY`). Without a
browser the tests skip with the reason, except in CI (the `CI` variable is set), where a
missing browser is a failure: `.ci/install-browser.sh` installs Debian's `chromium`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from engine.cli import main

ROOT = Path(__file__).resolve().parent.parent
SIDES = ("policies/ear-742.7@2020-03-09", "@2020-10-06")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def find_browser() -> str | None:
    """Debian's chromium on PATH, or at its usual place."""
    return shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def chromium() -> str:
    """The browser's path; skip without one, but fail in CI, where it must be installed."""
    found = find_browser()
    if found:
        return found
    reason = "chromium is not installed (apt-get install -y chromium, or run .ci/install-browser.sh)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser test: {reason}")
    pytest.skip(reason)


@dataclass
class Page:
    """What the test reads from the rendered DOM."""

    counts: dict[str, int] = field(default_factory=dict)
    transition_counts: dict[str, int] = field(default_factory=dict)
    cases: dict[str, bool] = field(default_factory=dict)  # case name -> visible
    body_filter: str | None = None
    shown: str = ""
    title: str = ""


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.page = Page()
        self._capture: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.page.body_filter = a.get("data-filter")
        if "data-count" in a:
            self._capture = ("count", a["data-count"] or "")
        elif "data-transition-count" in a:
            self._capture = ("transition", a["data-transition-count"] or "")
        elif a.get("id") == "shown-count":
            self._capture = ("shown", "")
        elif tag == "title":
            self._capture = ("title", "")
        if tag == "section" and "case" in (a.get("class") or "").split():
            self.page.cases[a.get("data-case") or ""] = "hidden" not in a

    def handle_data(self, data: str) -> None:
        if self._capture is None:
            return
        kind, key = self._capture
        if kind == "count":
            self.page.counts[key] = int(data)
        elif kind == "transition":
            self.page.transition_counts[key] = int(data)
        elif kind == "shown":
            self.page.shown = data.strip()
        else:
            self.page.title = data.strip()
        self._capture = None


def read_dom(html: str) -> Page:
    reader = _Reader()
    reader.feed(html)
    return reader.page


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The HTML report of the 6 Oct 2020 change, and the JSON report of the same diff."""
    folder = tmp_path_factory.mktemp("html")
    html = folder / "report.html"
    old = Path.cwd()
    os.chdir(ROOT)
    try:
        runner = CliRunner()
        args = ["diff", *SIDES, "--cases", "fixtures/cases"]
        assert runner.invoke(main, [*args, "--format", "html", "-o", str(html)]).exit_code == 0
        data = json.loads(runner.invoke(main, [*args, "--format", "json"]).output)
    finally:
        os.chdir(old)
    yield html, data


def dump_dom(browser: str, page: Path, fragment: str, profile: Path) -> Page:
    """Load the page (running its script) and read the DOM chromium prints."""
    url = page.as_uri() + fragment
    proc = subprocess.run(
        [browser, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=180,  # a hung browser must not hang the suite; nothing here measures time
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "<section" in proc.stdout, f"chromium printed no page: {proc.stderr[-2000:]}"
    return read_dom(proc.stdout)


def test_page_renders_with_the_json_summary(report: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    html, data = report
    page = dump_dom(chromium(), html, "", tmp_path / "profile")
    summary = data["summary"]
    assert page.title.startswith("Policy diff: ear-742.7")
    for key in ("compared", "changed", "reasons_changed", "unchanged", "failed"):
        assert page.counts[key] == summary[key], key
    assert page.counts["total"] == summary["compared"] + summary["failed"]
    assert page.transition_counts == {t["key"]: t["count"] for t in summary["transitions"]}
    listed = [c["case"] for c in data["cases"]]
    assert sorted(page.cases) == sorted(listed)
    assert all(page.cases.values())  # no filter: every listed case is visible
    assert page.shown == f"{len(listed)} of {len(listed)} shown"


def test_filter_from_the_url_hash_shows_only_that_transition(
    report: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    html, data = report
    browser = chromium()
    transitions = data["summary"]["transitions"]
    assert len(transitions) >= 2
    for index, transition in enumerate(transitions):
        page = dump_dom(browser, html, f"#transition={transition['key']}", tmp_path / f"profile{index}")
        visible = sorted(name for name, shown in page.cases.items() if shown)
        assert visible == sorted(transition["cases"]), transition["label"]
        assert page.body_filter == transition["key"]
        assert page.shown == f"{transition['count']} of {len(data['cases'])} shown"


def test_an_unknown_transition_shows_every_case(report: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    html, _ = report
    page = dump_dom(chromium(), html, "#transition=no-such-transition", tmp_path / "profile")
    assert page.cases and all(page.cases.values())
    assert page.body_filter == ""


def test_a_missing_browser_skips_locally_but_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "find_browser", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium is not installed"):
        chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the browser test"):
        chromium()
