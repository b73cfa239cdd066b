"""`policy docs`: the committed policy pages are current, and version changes are classified right.

The committed pages under docs/policies/ are re-rendered in memory and compared byte for
byte with the files; a small two-version policy written here pins the page layout (an
amber snapshot) and each kind of change between versions.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from syrupy.assertion import SnapshotAssertion

from engine.changes import rule_aspects
from engine.checker import check_file
from engine.cli import main
from engine.policydocs import (
    GENERATED_MARK,
    compare_versions,
    render_docs,
    stale_pages,
)
from engine.program import Program

ROOT = Path(__file__).resolve().parent.parent

VOCAB = """
vocabulary "trade"
  title "Facts shared by the demo policies"

enum Reason "reasons for control" = <NS, CC, AT>
enum Review "licence review policy" = <favorable, not_favorable, denial, not_applicable>

fact control_reason: set of Reason "reasons for control of the item"
fact civil_disorder: boolean "civil disorder in the country of destination"
fact hr_abuse_risk: boolean "a risk that the items will be used to abuse human rights"
fact end_user.name: optional string "name of the end user"

define cc_item "a crime control item" = control_reason includes CC
group exempt_reasons "reasons that never lead to review" = <NS>

decision license_review: Review default not_applicable "how the application is reviewed"
obligation human-rights review "human rights are weighed in the licence review"
recommendation check-end-user "Check the end user" cite "Guidance, step 1"
"""

OLD = """
policy "demo"
  title "Demo licensing policy"
  version "2020-01-01"
  effective 2020-01-01
  ends 2020-12-31
  status in-force
  source "Demo Act s. 1"
  description "The first version."

use "../shared/trade.vocab"

rule favorable "Crime control items are considered favourably"
  cite "s. 1(a)"
  if cc_item
  then decide license_review = favorable

rule disorder "Civil disorder removes the presumption"
  cite "s. 1(b)"
  overrides favorable
  if cc_item and civil_disorder
  then decide license_review = not_favorable

rule recommend-check "Check the end user"
  cite "s. 2"
  if cc_item
  then recommend check-end-user

define risky "a reason to weigh human rights" = hr_abuse_risk

rule flag "Weigh human rights when there is a reason to"
  cite "s. 4"
  if risky
  then require human-rights review

rule dropped "A rule the next version drops"
  cite "s. 3"
  if hr_abuse_risk
  then require human-rights review
"""

NEW = """
policy "demo"
  title "Demo licensing policy"
  version "2021-01-01"
  effective 2021-01-01
  status in-force
  source "Demo Act s. 1, as amended"

use "../shared/trade.vocab"

define cc_case "a crime control item that is not exempt" = cc_item and not control_reason in exempt_reasons

define risky "a reason to weigh human rights" = hr_abuse_risk or civil_disorder

rule flag "Weigh human rights when there is a reason to"
  cite "s. 4"
  if risky
  then require human-rights review

# Same rule, laid out differently: not a change.
rule favorable "Crime control items are considered favourably"
  cite "s. 1(a)"
  if cc_item then decide license_review = favorable

rule disorder "Civil disorder removes the favourable presumption"
  cite "s. 1(b)"
  overrides favorable
  if cc_item and civil_disorder
  then decide license_review = not_favorable and require human-rights review

rule recommend-check "Check the end user"
  cite "s. 2", "s. 2A"
  if cc_case
  unless end_user.name is missing
  then recommend check-end-user

rule risk "A risk of abuse removes the presumption"
  cite "s. 1(c)"
  overrides favorable
  if cc_item and hr_abuse_risk
  then decide license_review = not_favorable
"""


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A policies folder with one two-version policy and its vocabulary; returns the folder."""
    policies = tmp_path / "policies"
    for name, text in {
        "shared/trade.vocab": VOCAB,
        "demo/2020-01-01.policy": OLD,
        "demo/2021-01-01.policy": NEW,
    }.items():
        (policies / name).parent.mkdir(parents=True, exist_ok=True)
        (policies / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return policies


def program(path: Path) -> Program:
    result = check_file(path)
    assert result.program is not None and result.ok, result.diagnostics
    return result.program


def test_committed_policy_docs_are_current() -> None:
    pages = render_docs(ROOT / "policies", ROOT / "docs" / "policies")
    stale = stale_pages(ROOT / "docs" / "policies", pages)
    assert not stale, "docs/policies/ is stale: run `policy docs` and commit the result\n" + "\n".join(stale)


def test_changes_are_classified_by_syntax_not_layout(demo: Path) -> None:
    changes = compare_versions(
        program(demo / "demo/2020-01-01.policy"), program(demo / "demo/2021-01-01.policy")
    )
    assert [r.id for r in changes.added] == ["risk"]
    assert [r.id for r in changes.removed] == ["dropped"]
    assert [r.id for r in changes.unchanged] == ["flag", "favorable"]
    kinds = {c.id: c.kinds for c in changes.changed}
    assert kinds == {
        "disorder": ("outcomes", "description"),
        "recommend-check": ("condition", "unless", "citations"),
    }
    assert changes.derived_added == ("cc_case",)
    assert [d.name for d in changes.derived_changed] == ["risky"]
    assert changes.indirect == {"flag": ("risky",)}, "written the same, but reads a redefined derived fact"
    assert not changes.facts_added and not changes.facts_removed and not changes.facts_changed


def test_wording_only_changes_say_so(demo: Path) -> None:
    old = program(demo / "demo/2020-01-01.policy")
    edited = OLD.replace('cite "s. 1(a)"', 'cite "s. 1(a)(i)"').replace(
        "considered favourably", "viewed kindly"
    )
    (demo / "demo/2020-06-01.policy").write_text(
        textwrap.dedent(edited).replace('"2020-01-01"', '"2020-06-01"').replace("2020-01-01", "2020-06-01"),
        encoding="utf-8",
    )
    changes = compare_versions(old, program(demo / "demo/2020-06-01.policy"))
    (change,) = changes.changed
    assert change.id == "favorable" and change.kinds == ("description", "citations") and change.wording_only


def test_overrides_compare_as_a_set(demo: Path) -> None:
    new = program(demo / "demo/2021-01-01.policy")
    rule = next(r for r in new.rules if r.id == "disorder").decl
    assert rule_aspects(rule, rule) == ()


def test_demo_pages(demo: Path, tmp_path: Path, snapshot: SnapshotAssertion) -> None:
    pages = render_docs(demo, tmp_path / "docs")
    assert sorted(pages) == ["README.md", "demo/2020-01-01.md", "demo/2021-01-01.md", "demo/README.md"]
    assert all(text.startswith(GENERATED_MARK) for text in pages.values())
    assert str(tmp_path) not in "".join(pages.values()), "pages must not name the machine's paths"
    assert pages == snapshot


def test_rendering_is_deterministic(demo: Path, tmp_path: Path) -> None:
    assert render_docs(demo, tmp_path / "docs") == render_docs(demo, tmp_path / "docs")


def test_cli_writes_checks_and_cleans_up(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "docs"
    runner = CliRunner()
    args = ["docs", str(demo), "-o", str(out)]

    stale = runner.invoke(main, [*args, "--check"])
    assert (
        stale.exit_code == 1 and "README.md: missing" in stale.output and "run `policy docs`" in stale.output
    )
    assert not out.exists(), "--check writes nothing"

    assert runner.invoke(main, args).exit_code == 0
    assert runner.invoke(main, [*args, "--check"]).exit_code == 0

    (out / "vocabulary.md").write_text("# Hand-written\n", encoding="utf-8")
    (out / "demo/2020-01-01.md").write_text(f"{GENERATED_MARK} edited by hand -->\n", encoding="utf-8")
    (demo / "demo/2021-01-01.policy").unlink()
    edited = runner.invoke(main, [*args, "--check"])
    assert edited.exit_code == 1
    assert (
        "2020-01-01.md: out of date" in edited.output
        and "2021-01-01.md: no longer generated" in edited.output
    )

    rewritten = runner.invoke(main, args)
    assert rewritten.exit_code == 0 and "removed demo/2021-01-01.md" in rewritten.output
    assert (out / "vocabulary.md").read_text(encoding="utf-8") == "# Hand-written\n", (
        "hand-written pages are kept"
    )
    assert runner.invoke(main, [*args, "--check"]).exit_code == 0


def test_cli_reports_user_mistakes_without_a_traceback(demo: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["docs", str(tmp_path / "nowhere"), "-o", str(tmp_path / "out")])
    assert (
        missing.exit_code == 2 and "is not a folder" in missing.output and "Traceback" not in missing.output
    )

    (demo / "demo/2021-01-01.policy").write_text(
        NEW.replace("if cc_item and hr_abuse_risk", "if cc_item and hr_abuse_rsk"), encoding="utf-8"
    )
    broken = runner.invoke(main, ["docs", str(demo), "-o", str(tmp_path / "out")])
    assert broken.exit_code == 1 and "hr_abuse_rsk" in broken.output and "Traceback" not in broken.output
