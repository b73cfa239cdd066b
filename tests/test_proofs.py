"""Proofs about policies: the semantic diff, the deep check and why-not (z3).

Regions are checked from outside the solver: each condition is compiled back into the policy
language (so it parses and type-checks against version B), each witness is decided by the
compiled evaluator, and on a generated pair every one of 20,000 random cases that differs
must lie in a reported region with the same change (and no case that does not differ may).
"""

from __future__ import annotations

import json
import random
import re
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

pytest.importorskip("z3")

from benchmarks.proofs import changed_pair, reordered
from benchmarks.scale import COUNTRIES, policy_text
from engine import api
from engine.checker import CheckResult, check_file
from engine.cli import main
from engine.deepcheck import DEFAULT_REGION, SolverReasoner, deep_check, deepen, why_not
from engine.errors import Severity
from engine.proofs import (
    Budget,
    Output,
    SemanticReport,
    all_outputs,
    prove_diff,
    replayed_values,
)
from engine.runtime import CompiledPolicy
from tests.conftest import ROOT

A742 = ROOT / "policies" / "ear-742.7" / "2020-03-09.policy"
B742 = ROOT / "policies" / "ear-742.7" / "2020-10-06.policy"
GALLERY = sorted((ROOT / "fixtures" / "proofs").glob("*.policy"))


# ---------------------------------------------------------------------------
# helpers


def changes_of(a: api.Policy, b: api.Policy, case: dict[str, Any], at_a: date, at_b: date) -> str:
    """The joint change of a case, labelled as regions are ("" when nothing differs)."""
    da, db = a.evaluate(case, at=at_a), b.evaluate(case, at=at_b)
    labels = []
    for out in all_outputs([a.compiled.program, b.compiled.program]):
        va, vb = replayed_values(da, out), replayed_values(db, out)
        if va != vb:
            labels.append(
                f"{out.name}: {va} -> {vb}"
                if out.kind == "decision"
                else f"{'+' if vb == 'yes' else '-'} {out.name}"
            )
    return ", ".join(labels)


def region_checker(
    b_file: Path, report: SemanticReport, workdir: Path
) -> Callable[[dict[str, Any], date], set[int]]:
    """Version B with one extra rule per region (`if CONDITION then require zz-region-N`).

    The conditions must parse and check against B, and the rule fires exactly where the
    condition holds, so `inside(case)` says which regions contain a case, by the evaluator.
    """
    extra = []
    for n, region in enumerate(report.regions, 1):
        extra += [
            f'obligation zz-region-{n} "semantic diff region {n}"',
            f'rule zz-region-{n} "region {n}"',
            '  cite "tests"',
            f"  if {region.condition}",
            f"  then require zz-region-{n}",
        ]
    target = workdir / f"regions-{len(list(workdir.glob('regions-*')))}-{b_file.name}"
    target.write_text(b_file.read_text(encoding="utf-8") + "\n" + "\n".join(extra) + "\n", encoding="utf-8")
    checker = api.load(target)

    def inside(case: dict[str, Any], at: date) -> set[int]:
        names = checker.evaluate(case, at=at).obligation_names
        return {int(n.rsplit("-", 1)[1]) for n in names if n.startswith("zz-region-")}

    return inside


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of policies/ to write region checkers beside (their `use` paths must resolve)."""
    root = tmp_path_factory.mktemp("pack")
    shutil.copytree(ROOT / "policies", root / "policies")
    return root / "policies"


@pytest.fixture(scope="module")
def bundled() -> tuple[api.Policy, api.Policy, SemanticReport]:
    a, b = api.load(A742), api.load(B742)
    return a, b, prove_diff(a, b)


# ---------------------------------------------------------------------------
# the bundled 742.7 pair


def test_bundled_pair_regions_meet_the_targets(
    bundled: tuple[api.Policy, api.Policy, SemanticReport],
) -> None:
    _, _, report = bundled
    assert report.status == "different"
    assert 1 <= len(report.regions) <= 8
    assert all(r.literals <= 8 for r in report.regions), [(r.condition, r.literals) for r in report.regions]
    transitions = {r.transition for r in report.regions}
    assert "license_review: not_favorable -> favorable, - human-rights review" in transitions
    assert "license_review: not_applicable -> not_favorable, + human-rights review" in transitions
    # the water cannon of 85 FR 63009 arrive through the dated table, spelled out as keys
    assert any('eccn in <"0A977", "0D977", "0E977">' in r.condition for r in report.regions)


def test_bundled_regions_parse_back_and_hold_on_their_witnesses(
    bundled: tuple[api.Policy, api.Policy, SemanticReport], pack: Path
) -> None:
    a, b, report = bundled
    inside = region_checker(pack / "ear-742.7" / "2020-10-06.policy", report, pack / "ear-742.7")
    for n, region in enumerate(report.regions, 1):
        at_a, at_b = report.a.evaluated_at, report.b.evaluated_at
        assert changes_of(a, b, region.witness, at_a, at_b) == region.transition
        assert n in inside(region.witness, at_b), region.condition
        assert region.rules_a or region.from_ == "not_applicable"
        assert region.citations


def test_bundled_pair_matches_every_corpus_case(
    bundled: tuple[api.Policy, api.Policy, SemanticReport], pack: Path
) -> None:
    """The 21 bundled cases that change each lie in the region of their change; the others in none."""
    a, b, report = bundled
    inside = region_checker(pack / "ear-742.7" / "2020-10-06.policy", report, pack / "ear-742.7")
    changed = 0
    for file in sorted((ROOT / "fixtures" / "cases").glob("*.json")):
        case = json.loads(file.read_text(encoding="utf-8"))
        label = changes_of(a, b, case, date(2020, 3, 9), date(2020, 10, 6))
        regions = inside(case, date(2020, 10, 6))
        if label:
            changed += 1
            assert [report.regions[n - 1].transition for n in regions] == [label], file.name
        else:
            assert regions == set(), file.name
    assert changed == 21


# ---------------------------------------------------------------------------
# equivalence


def test_identical_reordered_and_reformatted_versions_are_equivalent(tmp_path: Path) -> None:
    text = B742.read_text(encoding="utf-8")
    blocks = re.split(r"\n(?=rule )", text)
    shuffled = [blocks[0], *reversed(blocks[1:])]
    copy = B742.parent / ".reordered-test.policy"
    try:
        copy.write_text(
            "\n".join(shuffled).replace("  cite", "      cite") + "\n# a comment\n", encoding="utf-8"
        )
        report = prove_diff(api.load(B742), api.load(copy))
    finally:
        copy.unlink(missing_ok=True)
    assert report.status == "equivalent"
    same = CliRunner().invoke(main, ["diff", "--semantic", str(B742), str(B742)])
    assert same.exit_code == 0 and "equivalent (proved)" in same.output


def test_generated_reordered_copy_is_equivalent(tmp_path: Path) -> None:
    rules, _, _ = changed_pair(200)
    (tmp_path / "a.policy").write_text(policy_text(rules), encoding="utf-8")
    (tmp_path / "b.policy").write_text(policy_text(reordered(rules)), encoding="utf-8")
    report = prove_diff(api.load(tmp_path / "a.policy"), api.load(tmp_path / "b.policy"))
    assert report.status == "equivalent"


def test_a_renamed_rule_is_still_proved_equivalent(tmp_path: Path) -> None:
    """Slicing fails (a rule id differs), so the solver proves it: no region."""
    text = B742.read_text(encoding="utf-8").replace("other-reason-favorable", "other-reason-fav")
    copy = B742.parent / ".renamed-test.policy"
    try:
        copy.write_text(text, encoding="utf-8")
        report = prove_diff(api.load(B742), api.load(copy))
    finally:
        copy.unlink(missing_ok=True)
    assert report.status == "equivalent" and report.queries > 0


# ---------------------------------------------------------------------------
# completeness on a generated pair


def test_every_differing_case_lies_in_a_region_with_its_change(tmp_path: Path) -> None:
    rules_a, rules_b, changed = changed_pair(100)
    (tmp_path / "a.policy").write_text(policy_text(rules_a), encoding="utf-8")
    (tmp_path / "b.policy").write_text(policy_text(rules_b), encoding="utf-8")
    a, b = api.load(tmp_path / "a.policy"), api.load(tmp_path / "b.policy")
    report = prove_diff(a, b)
    assert report.status == "different"
    assert len(report.regions) <= 20
    inside = region_checker(tmp_path / "b.policy", report, tmp_path)
    by_id = {r.id: r for r in [*rules_a, *rules_b]}
    hot_items = sorted({item for rid in changed for item in by_id[rid].items})
    hot_dest = sorted({c for rid in changed for c in (by_id[rid].dest or ())})
    thresholds = sorted({q for r in by_id.values() for q in (r.qty_gt, r.qty_le) if q is not None})
    rng = random.Random(13)
    when = date(2024, 1, 1)
    differing = misses = 0
    for _ in range(20_000):
        item = rng.choice(hot_items) if rng.random() < 0.8 else f"K{rng.randrange(25):05d}"
        destination = rng.choice(hot_dest) if rng.random() < 0.7 else rng.choice(COUNTRIES)
        quantity = (
            rng.choice(thresholds) + rng.choice([-1, 0, 1, 5]) if rng.random() < 0.8 else rng.randrange(200)
        )
        case = {"item": item, "destination": destination, "quantity": quantity}
        label = changes_of(a, b, case, when, when)
        regions = inside(case, when)
        if label:
            differing += 1
            if [report.regions[n - 1].transition for n in regions] != [label]:
                misses += 1
        else:
            assert regions == set(), (case, regions)
    assert misses == 0
    assert differing > 1_000  # the bias reaches the changed rules


# ---------------------------------------------------------------------------
# CLI: formats, witnesses, bounds


def test_cli_formats_and_saved_witnesses(tmp_path: Path, in_root: Path) -> None:
    args = ["diff", "--semantic", "policies/ear-742.7@2020-03-09", "@2020-10-06"]
    text = CliRunner().invoke(main, args)
    assert text.exit_code == 0, text.output
    assert "complete (proved)" in text.output and "[1] license_review" in text.output
    data = json.loads(CliRunner().invoke(main, [*args, "--format", "json"]).output)
    assert data["semantic_version"] == 1 and data["status"] == "different"
    for region in data["regions"]:
        assert {"output", "from", "to", "condition", "witness", "rules_a", "rules_b", "citations"} <= set(
            region
        )
    md = CliRunner().invoke(main, [*args, "--format", "md"]).output
    assert md.startswith("## Semantic diff") and "| 1 |" in md
    html = CliRunner().invoke(main, [*args, "--format", "html"]).output
    assert "<table>" in html and "&lt;" in html and '<"0A977"' not in html
    saved = CliRunner().invoke(main, [*args, "--save-witnesses", str(tmp_path / "w")])
    assert saved.exit_code == 0
    files = sorted((tmp_path / "w").glob("*.json"))
    assert len(files) == len(data["regions"])
    policy = api.load(B742)
    for file in files:
        policy.evaluate(json.loads(file.read_text(encoding="utf-8")))  # a valid case fixture


def test_region_cap_makes_the_report_incomplete_with_its_own_exit_code(in_root: Path) -> None:
    result = CliRunner().invoke(
        main, ["diff", "--semantic", "policies/ear-742.7@2020-03-09", "@2020-10-06", "--max-regions", "1"]
    )
    assert result.exit_code == 3
    assert "incomplete: 1 shown, more exist" in result.output
    assert "equivalent" not in result.output


def test_fail_on_change_gates_a_semantic_difference(in_root: Path) -> None:
    result = CliRunner().invoke(
        main, ["diff", "--semantic", "policies/ear-742.7@2020-03-09", "@2020-10-06", "--fail-on-change"]
    )
    assert result.exit_code == 1


# ---------------------------------------------------------------------------
# deep check: the planted gallery and the bundled pack


def _expected(path: Path) -> set[tuple[str, str]]:
    """`# expect: CODE RULE[, CODE RULE]` at the top of a gallery file."""
    line = next(x for x in path.read_text(encoding="utf-8").splitlines() if x.startswith("# expect:"))
    return {tuple(item.split()) for item in line.removeprefix("# expect:").split(",")}  # type: ignore[misc]


def _findings(path: Path) -> set[tuple[str, str]]:
    result = check_file(path)
    assert result.program is not None
    found = deep_check(CompiledPolicy(result.program)).diagnostics
    out = set()
    for d in found:
        if d.severity is Severity.NOTE:
            continue
        rules = re.findall(r"rules? `([^`]+)`(?: and `([^`]+)`)?", d.message)[0]
        out.add((d.code, "/".join(x for x in rules if x)))
    return out


@pytest.mark.parametrize("path", GALLERY, ids=lambda p: p.stem)
def test_planted_defect_is_found_and_nothing_else(path: Path) -> None:
    assert _findings(path) == _expected(path)


def test_the_bundled_pack_has_no_deep_findings() -> None:
    for path in sorted((ROOT / "policies").glob("*/*.policy")):
        assert _findings(path) == set(), path


def test_default_regions_are_notes_with_conditions() -> None:
    result = check_file(B742)
    assert result.program is not None
    notes = [d for d in deep_check(CompiledPolicy(result.program)).diagnostics if d.code == DEFAULT_REGION]
    assert len(notes) == 1 and notes[0].severity is Severity.NOTE
    assert "when not cc_application and not other_reason_application" in notes[0].message


def test_check_deep_cli(in_root: Path) -> None:
    clean = CliRunner().invoke(main, ["check", "--deep", "policies"])
    assert clean.exit_code == 0, clean.output
    # 7: ear-734.4 (issue 12) adds two decision-default-region notes for subject_to_ear
    assert "0 error(s), 0 warning(s), 7 note(s)" in clean.output
    planted = CliRunner().invoke(main, ["check", "--deep", "fixtures/proofs/conflict.policy"])
    assert planted.exit_code == 1
    assert planted.output.count("error[conflict]") == 2
    assert "fixtures/proofs/conflict.policy:17:6" in planted.output  # the other rule's span


def test_deepen_keeps_a_broken_file_as_it_is(tmp_path: Path) -> None:
    broken = CheckResult(None, [], {})
    assert deepen([broken]) == [broken]


def test_an_exhausted_budget_is_reported_incomplete() -> None:
    result = check_file(ROOT / "fixtures" / "proofs" / "conflict.policy")
    assert result.program is not None
    deep = deep_check(CompiledPolicy(result.program), budget=Budget(max_regions=0))
    assert deep.incomplete and any(d.code == "proof-incomplete" for d in deep.diagnostics)


# ---------------------------------------------------------------------------
# why-not

KENYA = ROOT / "fixtures" / "cases" / "fingerprint-computers-kenya-police.json"


def test_why_not_gives_verified_minimal_changes() -> None:
    policy = api.load(B742)
    case = json.loads(KENYA.read_text(encoding="utf-8"))
    answer = why_not(policy, case, "license_review=not_favorable")
    assert answer.status == "changes"
    assert {tuple(c.fact for c in option) for option in answer.options} == {
        ("civil_disorder",),
        ("hr_abuse_risk",),
    }
    for option in answer.options:
        changed = json.loads(json.dumps(case))
        for change in option:
            changed[change.fact] = change.after
        assert policy.evaluate(changed).decisions["license_review"].value == "not_favorable"


def test_why_not_already_and_impossible() -> None:
    policy = api.load(B742)
    case = json.loads(KENYA.read_text(encoding="utf-8"))
    assert why_not(policy, case, "license_review=favorable").status == "already"
    impossible = why_not(policy, case, "license_review=denial")
    assert impossible.status == "impossible" and "no rule decides" in impossible.reason


def test_why_not_impossible_names_the_blocking_rules(tmp_path: Path) -> None:
    """Favourable with civil disorder is blocked by the exceptions that take it away."""
    policy = api.load(B742)
    case = json.loads(KENYA.read_text(encoding="utf-8"))
    case["civil_disorder"] = True
    answer = why_not(policy, case, "license_review=favorable")
    assert answer.status == "changes"
    assert all(
        any(c.fact == "civil_disorder" for c in option) or len(option) >= 1 for option in answer.options
    )
    shadow = api.load(ROOT / "fixtures" / "proofs" / "shadowed.policy")
    result = why_not(shadow, case, "-human-rights review")
    assert result.status in ("changes", "already")


def test_why_not_cli(in_root: Path) -> None:
    base = ["why-not", "policies/ear-742.7", str(KENYA.relative_to(ROOT)), "--at", "2020-10-06"]
    found = CliRunner().invoke(main, [*base, "--want", "+human-rights review"])
    assert found.exit_code == 0 and "civil_disorder: false -> true" in found.output
    impossible = CliRunner().invoke(main, [*base, "--want", "license_review=denial"])
    assert impossible.exit_code == 1 and impossible.output.startswith("impossible")
    bad = CliRunner().invoke(main, [*base, "--want", "license_review=maybe"])
    assert bad.exit_code == 2 and "not a value of `license_review`" in bad.output
    js = json.loads(
        CliRunner().invoke(main, [*base, "--want", "license_review=not_favorable", "--format", "json"]).output
    )
    assert js["status"] == "changes" and len(js["options"]) == 2


def test_outputs_cover_every_declared_outcome() -> None:
    program = api.load(B742).compiled.program
    outs = all_outputs([program])
    assert Output("decision", "license_review") in outs
    assert len(outs) == 1 + len(program.obligations) + len(program.recommendations)


def test_solver_reasoner_answers_the_linters_questions() -> None:
    never = check_file(ROOT / "fixtures" / "proofs" / "never-fires.policy").program
    shadow = check_file(ROOT / "fixtures" / "proofs" / "shadowed.policy").program
    conflict = check_file(ROOT / "fixtures" / "proofs" / "conflict.policy").program
    assert never is not None and shadow is not None and conflict is not None
    reasoner = SolverReasoner(CompiledPolicy(never))
    assert reasoner.can_fire("planted-contradiction") is False
    assert reasoner.can_fire("cc-favorable") is True
    rule = next(r for r in never.rules if r.id == "planted-contradiction")
    assert reasoner.can_hold(rule.condition) is False
    shadowed = SolverReasoner(CompiledPolicy(shadow))
    assert shadowed.can_fire("planted-shadowed") is True
    assert shadowed.can_take_effect("planted-shadowed") is False
    witness = SolverReasoner(CompiledPolicy(conflict)).can_conflict("cc-hr-abuse-risk", "planted-conflict")
    assert witness is not None and witness["hr_abuse_risk"] is True
    assert SolverReasoner(CompiledPolicy(conflict)).can_conflict("cc-favorable", "cc-hr-abuse-risk") is None


def test_analysis_page_shows_real_output(in_root: Path) -> None:
    """Every output line pasted in docs/analysis.md is still what the command prints, in order."""
    from tests.test_diff import console_blocks

    text = (ROOT / "docs" / "analysis.md").read_text(encoding="utf-8")
    blocks = console_blocks(text)
    assert len(blocks) >= 2
    for command, lines in blocks:
        result = CliRunner().invoke(main, command.split()[1:] if '"' not in command else _split(command)[1:])
        printed = iter(line.rstrip() for line in result.output.splitlines())
        for line in lines:
            if line.startswith("[..."):
                continue
            assert any(out == line.rstrip() for out in printed), f"{command!r} no longer prints {line!r}"


def _split(command: str) -> list[str]:
    import shlex

    return shlex.split(command)


def test_semantic_regions_beside_the_corpus_transitions(in_root: Path) -> None:
    args = ["diff", "--semantic", "policies/ear-742.7@2020-03-09", "@2020-10-06", "--cases", "fixtures/cases"]
    text = CliRunner().invoke(main, args)
    assert text.exit_code == 0
    assert text.output.index("21 changed") < text.output.index("4 region(s) where the outputs differ")
    data = json.loads(CliRunner().invoke(main, [*args, "--format", "json"]).output)
    assert data["summary"]["changed"] == 21 and len(data["semantic"]["regions"]) == 4
    html = CliRunner().invoke(main, [*args, "--format", "html"]).output
    assert html.count("<html") == 1 and "id='semantic'" in html


def test_arithmetic_and_defaults_are_proved_too(tmp_path: Path) -> None:
    """A moved percentage in the numbers fixture: one region, its witness replayed, its condition
    in the policy's own arithmetic; why-not finds exact decimal changes."""
    source = ROOT / "fixtures" / "language"
    shutil.copytree(source, tmp_path / "language")
    original = tmp_path / "language" / "numbers.policy"
    moved = tmp_path / "language" / "numbers-moved.policy"
    moved.write_text(
        original.read_text(encoding="utf-8").replace("25% * item_value", "30% * item_value"), encoding="utf-8"
    )
    report = prove_diff(api.load(original), api.load(moved))
    # `part_value / item_value * 100 > limits[category]` is nonlinear: z3 may answer unknown for
    # some region, and the report must then say incomplete (never different or equivalent).
    assert report.status in ("different", "incomplete")
    assert (report.status == "incomplete") == bool(report.incomplete)
    transitions = {r.transition for r in report.regions}
    assert "review: deny -> refer" in transitions
    assert all(
        "25% * item_value" in r.condition and "30% * item_value" in r.condition for r in report.regions
    )
    inside = region_checker(moved, report, tmp_path / "language")
    for n, region in enumerate(report.regions, 1):
        assert n in inside(region.witness, report.b.evaluated_at)
    case = {"category": "sensitive", "item_value": "1000.123", "part_value": "10.5", "freight": "3"}
    answer = why_not(api.load(original), case, "review=deny")
    assert answer.status == "changes" and all(len(option) == 1 for option in answer.options)


def test_proof_benchmark_smoke(tmp_path: Path) -> None:
    """benchmarks/proofs.py in miniature: the pair has five changes, the files load, and the
    measured commands' parsing of the JSON report holds (nothing timed here)."""
    from benchmarks.proofs import write_pair

    a, b, again, changed = write_pair(tmp_path, 50)
    assert len(changed) == 5 and len(set(changed)) == 5
    report = prove_diff(api.load(a), api.load(b))
    dumped = json.loads(json.dumps(report.dump()))
    assert dumped["status"] == "different" and 1 <= len(dumped["regions"]) <= 20
    assert prove_diff(api.load(a), api.load(again)).status == "equivalent"
