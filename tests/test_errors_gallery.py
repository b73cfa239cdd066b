"""The error gallery (fixtures/errors/, one broken file per code) and its page, docs/errors.md.

Every diagnostic code the core can emit has a gallery file that produces it, the rendered
output of each file is a snapshot, and docs/errors.md shows each code with its gallery file
and that same rendered output, so the page cannot drift from what `policy check` prints.
Lint codes (`policy lint --list-codes`) are documented with the linter, not here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from engine import api
from engine.codes import CODES, GALLERY_STAGES, all_codes
from engine.errors import render_all
from tests.conftest import ERRORS, ROOT

DOC = ROOT / "docs" / "errors.md"
GALLERY = sorted(p for p in ERRORS.iterdir() if p.suffix in (".policy", ".vocab"))
CODE_CALL = re.compile(r'(?:_error|_warn|Diagnostic\.at)\(\s*f?"([a-z][a-z{}-]*)"')
PRINTED_CODE = re.compile(r"error\[([a-z][a-z-]*)\]")
#: Codes built with an f-string, and the words that fill them in.
PLACEHOLDERS = {"{noun}": ("obligation", "recommendation")}
#: The modules that read policies: every code they emit has a gallery file. Tools (formatter,
#: diff...) may emit codes no broken file is meant to produce; those are documented only.
CORE = (
    "parser.py",
    "loader.py",
    "checker.py",
    "analysis.py",
    "api.py",
    "registry.py",
    "runtime.py",
    "compiler.py",
)


def _lint_codes() -> set[str]:
    try:
        from engine.linter import CODES
    except ImportError:  # pragma: no cover - the linter is optional for this test
        return set()
    return set(CODES)


def engine_codes(modules: tuple[str, ...] | None = None) -> tuple[set[str], set[str]]:
    """(diagnostic codes, codes the CLI prints for cases) found in the source of engine/*.py."""
    diagnostics: set[str] = set()
    printed: set[str] = set()
    for source in sorted((ROOT / "engine").rglob("*.py")):
        if modules is not None and source.name not in modules:
            continue
        text = source.read_text(encoding="utf-8")
        for code in CODE_CALL.findall(text):
            for placeholder, fillers in PLACEHOLDERS.items():
                if placeholder in code:
                    diagnostics.update(code.replace(placeholder, f) for f in fillers)
                    break
            else:
                assert "{" not in code, f"{source.name}: add the values of `{code}` to PLACEHOLDERS"
                diagnostics.add(code)
        printed.update(PRINTED_CODE.findall(text))
    return diagnostics - _lint_codes(), printed - diagnostics


def rendered(path: Path) -> str:
    """What `policy check` prints for a gallery file (without the summary line)."""
    (result,) = api.check([path.relative_to(ROOT)])
    return render_all(result.diagnostics, result.sources)


def test_the_scan_finds_the_codes_it_should() -> None:
    codes, printed = engine_codes()
    assert {"syntax", "unknown-fact", "unknown-obligation", "unknown-recommendation", "conflict"} <= codes
    assert printed >= OPERATOR_CODES


def test_the_source_emits_only_registered_codes() -> None:
    """The registry (engine/codes.py) is the list; the source scan is the cross-check that it is whole."""
    codes, printed = engine_codes()
    unregistered = sorted((codes | printed) - set(all_codes()))
    assert unregistered == [], f"add {unregistered} to engine/codes.py"
    core, _ = engine_codes(CORE)
    assert all(CODES[code].stage in GALLERY_STAGES for code in core)


#: Codes the operator commands (`policy serve`, `policy log`, `policy replay`) print; each has a section.
OPERATOR_CODES = {c.code for c in CODES.values() if c.stage == "operator"}


def test_operator_codes_are_documented() -> None:
    _, printed = engine_codes()
    errors_page = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    assert printed & OPERATOR_CODES == OPERATOR_CODES, "an operator code is no longer printed: drop it here"
    for code in OPERATOR_CODES:
        assert f"## `{code}`" in errors_page, f"docs/errors.md has no section for `{code}`"


def test_every_code_has_a_gallery_file() -> None:
    assert {p.stem for p in GALLERY} == {c.code for c in CODES.values() if c.stage in GALLERY_STAGES}


@pytest.mark.parametrize("path", GALLERY, ids=[p.stem for p in GALLERY])
def test_gallery_file_produces_its_code(in_root: Path, path: Path) -> None:
    (result,) = api.check([path.relative_to(ROOT)])
    assert result.diagnostics, f"{path.name} produces no diagnostic"
    assert {d.code for d in result.diagnostics} == {path.stem}
    assert all(d.line > 0 for d in result.diagnostics)


@pytest.mark.parametrize("path", GALLERY, ids=[p.stem for p in GALLERY])
def test_gallery_rendering(in_root: Path, path: Path, snapshot: SnapshotAssertion) -> None:
    assert rendered(path) == snapshot


# ---------------------------------------------------------------------------
# docs/errors.md


def doc_sections() -> dict[str, str]:
    """The body of each `## \\`code\\`` section of docs/errors.md."""
    text = DOC.read_text(encoding="utf-8")
    parts = re.split(r"^## `([a-z-]+)`\n", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def blocks(section: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", section, re.S)


def test_every_code_is_documented() -> None:
    missing = sorted(set(CODES) - set(doc_sections()))
    assert missing == [], f"docs/errors.md has no section for {missing}"
    assert all(c.anchor == f"docs/errors.md#{c.code}" for c in CODES.values())


def test_the_index_lists_every_documented_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    index = text.split("\n## ", 1)[0]
    for code in doc_sections():
        assert f"[`{code}`](#{code})" in index, code
    rows = dict(re.findall(r"^\| \[`([a-z-]+)`\]\(#[a-z-]+\) \| (\w+) \|", index, re.M))
    assert rows == {c.code: c.severity.value for c in CODES.values()}, (
        "the index disagrees with engine/codes.py"
    )


@pytest.mark.parametrize("path", GALLERY, ids=[p.stem for p in GALLERY])
def test_the_page_shows_the_gallery_file_and_its_output(in_root: Path, path: Path) -> None:
    section = doc_sections()[path.stem]
    link = f"../fixtures/errors/{path.name}"
    assert f"]({link})" in section, f"the `{path.stem}` section should link {link}"
    source = path.read_text(encoding="utf-8")
    assert source in blocks(section, "policy"), f"docs/errors.md shows an old {path.name}"
    output = rendered(path)
    assert output + "\n" in blocks(section, "text"), (
        f"docs/errors.md shows an old rendering of {path.name}; it is now:\n{output}"
    )
