"""The Python API (engine/__init__.py): loading, versions, errors, caching, and docs/embedding.md.

Every ```python block of docs/embedding.md runs here, in order, in one namespace, from the
repository root, so the page cannot show an example that does not work.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest

import engine
from engine import api
from tests.conftest import HEADER, LANGUAGE, ROOT

DOC = ROOT / "docs" / "embedding.md"


def doc_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_embedding_page_has_examples() -> None:
    assert len(doc_blocks()) >= 6


def test_every_example_of_the_embedding_page_runs(in_root: Path) -> None:
    namespace: dict[str, object] = {"__name__": "embedding_doc"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for index, block in enumerate(doc_blocks()):
            code = compile(block, f"docs/embedding.md block {index + 1}", "exec")
            exec(code, namespace)
    assert "because rule hr-risk" in printed.getvalue()


def test_the_public_api_is_what_the_page_documents() -> None:
    page = DOC.read_text(encoding="utf-8")
    for name in ("load", "check", "render_decision", "read_versions", "select_version"):
        assert name in engine.__all__ and f"engine.{name}" in page
    for name in ("PolicyError", "CaseError", "UsageError", "Decision", "Trace"):
        assert name in engine.__all__ and f"engine.{name}" in page


# ---------------------------------------------------------------------------
# Loading


def test_load_a_file_or_a_folder() -> None:
    by_file = engine.load(LANGUAGE / "demo" / "2020-10-06.policy")
    by_folder = engine.load(LANGUAGE / "demo", version="2020-10-06")
    by_date = engine.load(LANGUAGE / "demo", at=datetime.date(2020, 12, 1))
    assert by_file.compiled is by_folder.compiled is by_date.compiled  # one compiled object, cached
    assert by_date.at == datetime.date(2020, 12, 1)  # loaded for a date: evaluates as of that date
    assert by_file.path.resolve() == LANGUAGE / "demo" / "2020-10-06.policy"


def test_load_by_date_never_picks_a_proposal() -> None:
    assert engine.load(LANGUAGE / "demo", at=datetime.date(2025, 1, 1)).version == "2022-01-01"
    assert engine.load(LANGUAGE / "demo").version == "2022-01-01"  # today, whenever the suite runs after 2022


@pytest.mark.parametrize(
    ("kwargs", "message", "help"),
    [
        (
            {"at": datetime.date(2020, 1, 1)},
            "no version of `demo` is in force on 2020-01-01: the first takes effect on 2020-03-09",
            "name a date inside a window, or use --version",
        ),
        (
            {"at": datetime.date(2021, 7, 1)},
            "no version of `demo` is in force on 2021-07-01 (in-force versions:",
            "name a date inside a window, or use --version",
        ),
        (
            {"version": "1999"},
            "`demo` has no version `1999`",
            "its versions are 2020-03-09, 2020-10-06, 2022-01-01, 2024-07-29",
        ),
    ],
)
def test_load_usage_errors(kwargs: dict[str, object], message: str, help: str) -> None:
    with pytest.raises(engine.UsageError) as caught:
        engine.load(LANGUAGE / "demo", **kwargs)  # type: ignore[arg-type]
    assert str(caught.value).startswith(message)
    assert caught.value.help == help


def test_load_a_missing_path() -> None:
    with pytest.raises(engine.UsageError) as caught:
        engine.load(LANGUAGE / "nowhere.policy")
    assert str(caught.value).endswith("nowhere.policy` does not exist")


def test_an_empty_policy_folder(tmp_path: Path) -> None:
    with pytest.raises(engine.UsageError) as caught:
        engine.load(tmp_path)
    assert "holds no `.policy` files" in str(caught.value)


def test_overlapping_versions_are_reported_when_picked_by_date(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.policy").write_text(
            f'policy "p"\n  title "t"\n  version "{name}"\n  effective 2021-01-01\n  status in-force\n  source "s"\n',
            encoding="utf-8",
        )
    with pytest.raises(engine.UsageError) as caught:
        engine.load(tmp_path, at=datetime.date(2021, 6, 1))
    assert str(caught.value) == f"several versions of `{tmp_path.name}` are in force on 2021-06-01: a, b"


def test_policy_error_carries_every_diagnostic_in_source_order(write_policy: Callable[..., Path]) -> None:
    path = write_policy('obligation o "o"\nrule b if zz then require o\nrule a if yy then require p\n')
    with pytest.raises(engine.PolicyError) as caught:
        engine.load(path)
    assert [(d.code, d.line) for d in caught.value.diagnostics] == [
        ("unknown-fact", 8),
        ("unknown-fact", 9),
        ("unknown-obligation", 9),
    ]
    text = str(caught.value)
    assert text.count("error[") == 3
    assert "8 | rule b if zz then require o" in text


def test_warnings_do_not_stop_loading_and_are_kept(write_policy: Callable[..., Path]) -> None:
    path = write_policy('fact name: string "n"\nobligation o "o"\nrule r if name is present then require o\n')
    policy = engine.load(path)
    assert [w.code for w in policy.warnings] == ["presence-of-required"]
    assert policy.warnings[0].severity is engine.Severity.WARNING


# ---------------------------------------------------------------------------
# Caching


def test_an_unchanged_file_is_compiled_once(write_policy: Callable[..., Path]) -> None:
    path = write_policy('fact a: boolean "a"\nobligation o "o"\nrule r if a then require o\n')
    first = engine.load(path)
    assert engine.load(path) is first
    assert engine.load(str(path)) is first


def test_a_changed_file_is_compiled_again(write_policy: Callable[..., Path]) -> None:
    path = write_policy('fact a: boolean "a"\nobligation o "o"\nrule r if a then require o\n')
    before = engine.load(path)
    path.write_text(
        HEADER + 'fact a: boolean "a"\nobligation o "o"\nrule r if not a then require o\n', encoding="utf-8"
    )
    after = engine.load(path)
    assert after is not before
    assert after.content_hash != before.content_hash
    assert before.evaluate({"a": True}).obligation_names == ["o"]
    assert after.evaluate({"a": True}).obligation_names == []


def test_a_changed_vocabulary_or_table_changes_the_hash(
    write_policy: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_policy(
        'use "vocab/trade.vocab"\nrule r if eccn in eccn_paragraph then require human-rights review\n'
    )
    before = engine.load(path)
    table = tmp_path / "data" / "eccn-paragraphs.json"
    table.write_text(table.read_text(encoding="utf-8").replace('"3A981"', '"3A999"'), encoding="utf-8")
    after = engine.load(path)
    assert after.content_hash != before.content_hash
    facts = {
        "eccn": "3A999",
        "control_reason": [],
        "capability": [],
        "destination": "US",
        "end_user": {"type": "private"},
        "hr_abuse_risk": False,
        "civil_disorder": False,
        "quantity": 1,
        "tags": [],
    }
    assert before.evaluate(facts).fired == [] and after.evaluate(facts).fired == ["r"]


def test_the_same_decision_on_the_same_input() -> None:
    policy = engine.load(LANGUAGE / "precedence.policy")
    facts = {
        "eccn": "0A978",
        "control_reason": ["CC"],
        "capability": [],
        "destination": "KE",
        "end_user": {"type": "private"},
        "hr_abuse_risk": True,
        "civil_disorder": False,
        "quantity": 1,
        "tags": [],
    }
    assert policy.evaluate(facts) == policy.evaluate(dict(facts))
    assert policy.evaluate(facts, trace=True) == policy.evaluate(facts, trace=True)


# ---------------------------------------------------------------------------
# check()


def test_check_returns_one_result_per_file_and_never_raises(in_root: Path) -> None:
    results = api.check(["fixtures/errors"])
    files = {Path(r.diagnostics[0].file).name for r in results if r.diagnostics}
    assert {"unknown-fact.policy", "rule-in-vocabulary.vocab", "conflict.policy"} <= files
    by_file = {Path(next(iter(r.sources))).name: r for r in results if r.sources}
    assert by_file["presence-of-required.policy"].ok


def test_policy_files_lists_policies_and_vocabularies_once(in_root: Path) -> None:
    files = api.policy_files(["fixtures/language", "fixtures/language/conflict.policy"])
    assert files.count(Path("fixtures/language/conflict.policy")) == 1
    assert Path("fixtures/language/vocab/trade.vocab") in files
    assert all(f.suffix in (".policy", ".vocab") for f in files)
