"""Golden diff reports: text, Markdown and JSON for the bundled 742.7 version changes, pinned.

One file per report in `tests/__snapshots__/test_diff_golden/`, so a change in what a
version change does to the bundled cases, or in how the report says it, shows up as a
readable diff. Choices:

- Run from the repository root, so the paths in the reports read `policies/...` and
  `fixtures/...` on every machine.
- Content hashes are replaced by `<hash:VERSION>`: they change with every edit to a policy,
  vocabulary or table, comments included, and would churn the snapshots without any change
  in what is decided. `test_diff.py` checks the hash itself against `policy versions`.
- Each version decides the cases on its own effective date, never today.

Update deliberately: `pytest tests/test_diff_golden.py --snapshot-update`, and say in the
commit which behaviour changed and why.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from engine.checker import check_file
from engine.cli import main
from engine.registry import read_versions
from engine.runtime import content_hash

ROOT = Path(__file__).resolve().parent.parent
POLICY = "policies/ear-742.7"

#: (before, after): the 6 October 2020 rule, and the 2024 proposal against the text in force.
PAIRS = [("2020-03-09", "2020-10-06"), ("2020-10-06", "2024-07-29")]


class TextReport(SingleFileSnapshotExtension):
    _write_mode = WriteMode.TEXT
    file_extension = "txt"


class MarkdownReport(TextReport):
    file_extension = "md"


class JsonReport(TextReport):
    file_extension = "json.txt"  # not *.json: the golden-trace extension claims those in a full run


EXTENSIONS = {"text": TextReport, "md": MarkdownReport, "json": JsonReport}


def mask_hashes(report: str) -> str:
    """Replace every version's content hash (full and as shown, 12 characters) by a placeholder."""
    for entry in read_versions(ROOT / POLICY):
        program = check_file(entry.path).program
        assert program is not None, f"{entry.path} does not check"
        digest = content_hash(program)
        report = report.replace(digest, f"<hash:{entry.version}>").replace(
            digest[:12], f"<hash:{entry.version}>"
        )
    return report


def diff_report(*args: str) -> str:
    result = CliRunner().invoke(main, ["diff", *args])
    assert result.exit_code == 0, result.output
    return mask_hashes(result.output)


@pytest.mark.parametrize("fmt", ["text", "md", "json"])
@pytest.mark.parametrize(("before", "after"), PAIRS, ids=[f"{a}..{b}" for a, b in PAIRS])
def test_bundled_version_diff(
    in_root: Path, snapshot: SnapshotAssertion, before: str, after: str, fmt: str
) -> None:
    report = diff_report(f"{POLICY}@{before}", f"@{after}", "--cases", "fixtures/cases", "--format", fmt)
    assert report == snapshot(extension_class=EXTENSIONS[fmt])


def test_one_case_side_by_side(in_root: Path, snapshot: SnapshotAssertion) -> None:
    report = diff_report(
        f"{POLICY}@2020-03-09", "@2020-10-06", "fixtures/cases/water-cannon-hong-kong-police.json"
    )
    assert report == snapshot(extension_class=TextReport)
