"""`policy lint`: every finding on fixtures/lint, configuration, suppressions, the lock file, and a
proof that "can never fire" is exactly right for simple tests (checked against brute force).
"""

from __future__ import annotations

import itertools
import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.checker import check_text
from engine.cli import main
from engine.errors import Severity, UsageError
from engine.linter import CODES, LintConfig, Reasoner, lint, read_lock, version_hash
from engine.runtime import CompiledPolicy

ROOT = Path(__file__).resolve().parent.parent
LINT = ROOT / "fixtures" / "lint"


def _codes(paths: list[Path | str], config: LintConfig | None = None) -> list[tuple[str, str, int]]:
    result = lint(paths, config or LintConfig())
    return [(d.code, Path(d.file).name, d.line) for d in result.findings]


def test_report_on_the_lint_fixtures(in_root: Path, snapshot: Any) -> None:
    result = CliRunner().invoke(main, ["lint", "fixtures/lint"])
    assert result.exit_code == 1
    assert result.output == snapshot


def test_every_lint_code_is_exercised_by_the_fixtures(in_root: Path) -> None:
    found = {code for code, _, _ in _codes([Path("fixtures/lint")])}
    assert found == set(CODES) - {"unused-vocabulary"}  # tested on its own below


def test_json_format(in_root: Path) -> None:
    result = CliRunner().invoke(main, ["lint", "--format", "json", "fixtures/lint/beta"])
    assert result.exit_code == 0
    assert json.loads(result.output) == []


def test_the_bundled_pack_has_no_error_findings(in_root: Path) -> None:
    result = lint([Path("policies")], LintConfig.load(ROOT / "pyproject.toml"))
    assert [d for d in result.findings if d.severity is Severity.ERROR] == []


# ---------------------------------------------------------------------------
# Unused declarations: judged across every policy that uses a vocabulary


def test_a_vocabulary_fact_read_by_one_policy_only_is_used(in_root: Path) -> None:
    found = _codes([Path("fixtures/lint/shared/lint.vocab")])
    assert ("unused-fact", "lint.vocab", 13) in found and ("unused-table", "lint.vocab", 15) in found
    assert all("beta_only" not in str(f) for f in found)
    messages = [d.message for d in lint([Path("fixtures/lint/shared/lint.vocab")]).findings]
    assert not any("beta_only" in m for m in messages)


def test_linting_a_policy_alone_does_not_judge_its_vocabulary(in_root: Path) -> None:
    assert all(file != "lint.vocab" for _, file, _ in _codes([Path("fixtures/lint/beta")]))


def test_a_vocabulary_no_policy_uses(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    vocab = tmp_path / "shared" / "v.vocab"
    vocab.write_text('vocabulary "v"\n\nfact a: boolean "a"\n')
    assert _codes([vocab]) == [("unused-vocabulary", "v.vocab", 1)]


def test_a_policys_own_declarations(tmp_path: Path) -> None:
    path = tmp_path / "p" / "1.policy"
    path.parent.mkdir()
    path.write_text(
        'policy "p"\n  title "t"\n  version "1"\n  effective 2020-01-01\n  status draft\n  source "s"\n\n'
        'enum E "e" = <a, b>\n\nfact used: E "u"\nfact spare: optional E "s"\n\n'
        'decision d: E default a "d"\n\n'
        'rule r "r"\n  cite "c"\n  if used = b\n  then decide d = b\n'
    )
    result = lint([path])
    assert [(d.code, d.line) for d in result.findings] == [("unused-fact", 11)]
    assert result.findings[0].help is not None and "required" not in result.findings[0].help


# ---------------------------------------------------------------------------
# Configuration and suppressions


def test_severities_from_pyproject(tmp_path: Path, in_root: Path) -> None:
    config = tmp_path / "pyproject.toml"
    config.write_text(
        '[tool.policy.lint]\nseverity = { missing-citation = "off", rule-never-fires = "warning" }\n'
    )
    findings = lint([Path("fixtures/lint/alpha/2020-01-01.policy")], LintConfig.load(config)).findings
    assert not any(d.code == "missing-citation" for d in findings)
    assert {d.severity for d in findings if d.code == "rule-never-fires"} == {Severity.WARNING}


def test_project_configuration_makes_citations_errors() -> None:
    config = LintConfig.load(ROOT / "pyproject.toml")
    assert config.severity["missing-citation"] is Severity.ERROR


@pytest.mark.parametrize(
    "table, message",
    [
        ('severity = { no-such-code = "off" }', "unknown code `no-such-code`"),
        ('severity = { missing-citation = "fatal" }', "`fatal`"),
        ('severity = "error"', "must be a table"),
    ],
)
def test_bad_configuration_is_a_usage_error(tmp_path: Path, table: str, message: str) -> None:
    config = tmp_path / "pyproject.toml"
    config.write_text(f"[tool.policy.lint]\n{table}\n")
    with pytest.raises(UsageError, match=message):
        LintConfig.load(config)
    result = CliRunner().invoke(main, ["lint", "--config", str(config), str(LINT / "beta")])
    assert result.exit_code == 2


def test_a_suppression_covers_its_comment_block_and_the_line_below(tmp_path: Path) -> None:
    path = tmp_path / "p" / "1.policy"
    path.parent.mkdir()
    header = (
        'policy "p"\n  title "t"\n  version "1"\n  effective 2020-01-01\n  status draft\n  source "s"\n\n'
    )
    body = (
        'fact a: boolean "a"\nobligation o "o"\n\n'
        '# lint: allow missing-citation -- first reason\n# more explanation\nrule one "1"\n  if a\n  then require o\n\n'
        '# lint: allow missing-citation -- not directly above\n\nrule two "2"\n  if a\n  then require o\n'
    )
    path.write_text(header + body)
    found = [(d.code, d.line) for d in lint([path]).findings]
    assert ("missing-citation", 13) not in found
    assert ("missing-citation", 19) in found
    assert ("unused-suppression", 17) in found


def test_list_codes() -> None:
    result = CliRunner().invoke(main, ["lint", "--list-codes"])
    assert result.exit_code == 0
    assert len(result.output.splitlines()) == len(CODES)


# ---------------------------------------------------------------------------
# The lock file: published versions are append-only


@pytest.fixture
def beta(tmp_path: Path) -> Path:
    folder = tmp_path / "policies" / "beta"
    shutil.copytree(LINT / "beta", folder)
    shutil.copytree(LINT / "shared", tmp_path / "policies" / "shared")
    return folder


def test_update_lock_records_new_in_force_versions_only(beta: Path) -> None:
    (beta / "versions.lock").unlink()
    draft = (beta / "2020-01-01.policy").read_text().replace('"2020-01-01"', '"2022-01-01"')
    (beta / "2022-01-01.policy").write_text(
        draft.replace("effective 2020-01-01", "effective 2022-01-01").replace("in-force", "draft")
    )
    result = CliRunner().invoke(main, ["lint", "--update-lock", str(beta)])
    assert result.exit_code == 0, result.output
    assert read_lock(beta) == {"2020-01-01": version_hash(beta / "2020-01-01.policy")}


def test_editing_a_locked_version_is_an_error_that_update_lock_does_not_hide(beta: Path) -> None:
    locked = read_lock(beta)
    version = beta / "2020-01-01.policy"
    version.write_text(version.read_text().replace("are denied", "are refused"))
    result = CliRunner().invoke(main, ["lint", "--update-lock", str(beta)])
    assert result.exit_code == 1
    assert "error[version-changed]: version `2020-01-01` was published" in result.output
    assert read_lock(beta) == locked


def test_closing_a_locked_versions_window_is_the_one_allowed_edit(beta: Path) -> None:
    version = beta / "2020-01-01.policy"
    version.write_text(
        version.read_text().replace("  status in-force", "  ends 2021-12-31\n  status in-force")
    )
    assert not any(code.startswith("version-") for code, _, _ in _codes([beta]))
    version.write_text(version.read_text().replace("ends 2021-12-31", "ends 2021-06-30"))
    assert not any(code.startswith("version-") for code, _, _ in _codes([beta]))
    version.write_text(version.read_text().replace('title "A clean policy"', 'title "A cleaner policy"'))
    assert ("version-changed", "2020-01-01.policy", 3) in _codes([beta])


def test_a_removed_locked_version_is_an_error(beta: Path) -> None:
    lock = read_lock(beta)
    (beta / "versions.lock").write_text(json.dumps({**lock, "2019-01-01": "0" * 64}))
    assert ("version-removed", "versions.lock", 1) in _codes([beta])


# ---------------------------------------------------------------------------
# The reasoner is sound and, for tests of one fact against constants, complete

VOCABULARY = """policy "prop"
  title "t"
  version "1"
  effective 2020-01-01
  status draft
  source "s"

enum C "c" = <r, g, b>
fact c: C "c"
fact cs: set of C "cs"
fact f: boolean "f"
fact o: optional boolean "o"
fact n: number "n"
fact oc: optional C "oc"
obligation ob "ob"
"""

DOMAIN: dict[str, list[Any]] = {
    "c": ["r", "g", "b"],
    "cs": [frozenset(x) for k in range(4) for x in itertools.combinations("rgb", k)],
    "f": [True, False],
    "o": [True, False, None],
    "n": [Decimal(x) for x in ("0", "1", "1.5", "2", "2.5", "3", "4")],
    "oc": ["r", "g", "b", None],
}
VALUES = st.sampled_from(["r", "g", "b"])
SUBSETS = st.lists(VALUES, unique=True, max_size=3).map(lambda v: "<" + ", ".join(v) + ">")
ATOMS = st.one_of(
    st.tuples(st.sampled_from(["c =", "c !=", "oc =", "oc !="]), VALUES).map(" ".join),
    st.tuples(st.sampled_from(["c in", "oc in", "cs in", "cs includes any", "cs includes all"]), SUBSETS).map(
        " ".join
    ),
    VALUES.map(lambda v: f"cs includes {v}"),
    st.sampled_from(["f", "o", "o is present", "o is missing", "oc is missing", "true", "false"]),
    st.tuples(st.sampled_from(["<", "<=", ">", ">=", "=", "!="]), st.sampled_from(["1", "2", "3"])).map(
        lambda t: f"n {t[0]} {t[1]}"
    ),
)
CONDITIONS = st.recursive(
    ATOMS,
    lambda inner: st.one_of(
        inner.map(lambda e: f"not ({e})"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]}) and ({t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]}) or ({t[1]})"),
    ),
    max_leaves=6,
)


def _fires_somewhere(policy: CompiledPolicy) -> bool:
    for combo in itertools.product(*DOMAIN.values()):
        if any(i >= 0 for i in policy.fired(dict(zip(DOMAIN, combo, strict=True)))):  # -1: unknown
            return True
    return False


@settings(max_examples=60, deadline=None)
@given(condition=CONDITIONS, unless=st.none() | CONDITIONS)
def test_never_fires_exactly_when_no_case_fires_it(condition: str, unless: str | None) -> None:
    clause = f"  unless {unless}\n" if unless else ""
    text = f'{VOCABULARY}\nrule r "r"\n  cite "c"\n  if {condition}\n{clause}  then require ob\n'
    result = check_text(text, "prop.policy")
    assert result.program is not None, result.diagnostics
    reasoner = Reasoner(result.program)
    verdict = reasoner.satisfiable(reasoner.fires(result.program.rules[0]))
    assert verdict == _fires_somewhere(CompiledPolicy(result.program))


def test_a_test_between_two_facts_is_never_used_as_proof() -> None:
    text = (
        f'{VOCABULARY}\nfact d: C "d"\n\nrule r "r"\n  cite "c"\n  if c = d and c != d\n  then require ob\n'
    )
    result = check_text(text, "prop.policy")
    assert result.program is not None
    reasoner = Reasoner(result.program)
    # Treated as two unrelated unknowns: no proof, so no finding (sound, not complete).
    assert reasoner.satisfiable(reasoner.fires(result.program.rules[0])) is True


def test_missing_citation_help_is_generic(tmp_path: Path) -> None:
    """The help is about the language, not the bundled domain: no export-control text in any policy."""
    vocab = 'vocabulary "v"\n  title "v"\n\nfact a: boolean "a"\n\nobligation o "o"\n'
    (tmp_path / "v.vocab").write_text(vocab, encoding="utf-8")
    policy = (
        'policy "p"\n  title "p"\n  version "2021-01-01"\n  effective 2021-01-01\n  status draft\n'
        '  source "s"\n\nuse "v.vocab"\n\nrule r "r"\n  if a\n  then require o\n'
    )
    (tmp_path / "p.policy").write_text(policy, encoding="utf-8")
    finding = next(
        d for d in lint([tmp_path / "p.policy"], LintConfig()).findings if d.code == "missing-citation"
    )
    assert finding.help is not None
    assert "CFR" not in finding.help and "742" not in finding.help
    assert "under the rule's description" in finding.help
