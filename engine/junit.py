"""JUnit XML for `policy test --junit FILE`: the report format every CI system shows as test results.

One `<testsuite>` per policy id, one `<testcase>` per expectation (`name` is `case@version`,
`classname` the policy id, `file`/`line` the expectation in its intent file). A failed
expectation carries `<failure>` with the same report `policy test` prints, an erroneous one
`<error>`. Written with the standard library; the file is replaced atomically.
"""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from engine.intent import Result, failure_text

__all__ = ["junit_xml", "write_junit"]


def junit_xml(results: Sequence[Result]) -> str:
    """The results as a JUnit XML document (the common subset Jenkins, GitLab and GitHub read)."""
    root = ET.Element("testsuites", name="policy test")
    suites: dict[str, ET.Element] = {}
    for result in results:
        item = result.expectation
        suite = suites.get(item.policy)
        if suite is None:
            suite = suites[item.policy] = ET.SubElement(root, "testsuite", name=item.policy)
        case = ET.SubElement(
            suite,
            "testcase",
            name=f"{item.case}@{item.version}",
            classname=item.policy,
            file=str(item.source),
            line=str(item.line),
        )
        if result.status == "fail":
            first = result.mismatches[0]
            message = f"{first.what}: expected {first.expected}, got {first.actual}"
            ET.SubElement(case, "failure", message=message, type="mismatch").text = failure_text(result)
        elif result.status == "error":
            message = (result.error or "error").splitlines()[0]
            ET.SubElement(case, "error", message=message, type="error").text = failure_text(result)
    for element in [root, *suites.values()]:
        cases = element.iter("testcase")
        statuses = [[c.tag for c in case] for case in cases]
        element.set("tests", str(len(statuses)))
        element.set("failures", str(sum("failure" in s for s in statuses)))
        element.set("errors", str(sum("error" in s for s in statuses)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(results: Sequence[Result], path: Path) -> None:
    """Write the report beside `path` and move it into place: a reader never sees half a file."""
    text = junit_xml(results)
    folder = path.parent if str(path.parent) else Path(".")
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
