"""`policy batch`: the lines add up, order holds across workers, rejects say why, Ctrl-C leaves whole lines.

Also: validation (the runtime's generated reader for exact JSON, pydantic for the rest) accepts
and rejects exactly what the pydantic case model does, with the same facts and problems.
"""

from __future__ import annotations

import copy
import io
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from engine import api, batch
from engine.cases import pydantic_problem
from engine.cli import main
from engine.commands.batch import default_rejects_path
from engine.errors import CaseError
from engine.runtime import CompiledPolicy

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "policies" / "ear-742.7"
CASE_FILES = sorted((ROOT / "fixtures" / "cases").glob("*.json"))
BUNDLED = [
    ROOT / "policies" / "ear-742.7" / "2020-03-09.policy",
    ROOT / "policies" / "ear-742.7" / "2020-10-06.policy",
    ROOT / "policies" / "ear-742.7" / "2024-07-29.policy",
    ROOT / "policies" / "ear-742.11" / "1996-03-25.policy",
    ROOT / "policies" / "state-surveillance-dd" / "2020-09-30.policy",
]
SUMMARY = re.compile(
    r"^(\d+) lines: (\d+) decisions, (\d+) rejects(?:, (\d+) blank lines skipped)? in [\d.]+ s", re.M
)
INTERRUPTED = re.compile(
    r"^interrupted after (\d+) of the input lines: (\d+) decisions, (\d+) rejects(?:, (\d+) blank lines skipped)? written$",
    re.M,
)

# A policy with every fact type the generated reader handles: numbers, dates, sets of each,
# nested records (one required, one optional), an optional fact declared out of record order.
TYPED_POLICY = """policy "typed"
  title "Typed facts"
  version "1"
  effective 2020-01-01
  status in-force
  source "tests"

enum Color "colours" = <red, green>
enum Review "review" = <yes, no>

fact amount: number "an amount"
fact party.kind: Color "kind"
fact limit: optional number "a limit"
fact when: date "a date"
fact days: set of date "dates"
fact amounts: set of number "amounts"
fact colors: set of Color "colours"
fact flags: set of boolean "flags"
fact names: set of string "names"
fact party.since: optional date "since"
fact top: string "text"
fact extra.more: optional Color "an optional record"
fact party.flag: optional boolean "flag"

decision review: Review default no "review"

rule big "Big amounts"
  cite "tests"
  if amount > 10
  then decide review = yes
"""

TYPED_CASE: dict[str, Any] = {
    "amount": 12,
    "party": {"kind": "red", "since": "2020-01-02", "flag": True},
    "limit": None,
    "when": "2021-03-04",
    "days": ["2020-01-01", "2020-01-01"],
    "amounts": [1, 2, -3],
    "colors": ["green"],
    "flags": [True, False],
    "names": ["a", ""],
    "top": "x",
    "extra": {"more": "green"},
}

POOL: list[Any] = [
    True, False, 0, 1, -1, 2, 10**30, 1.0, 1.5, float("nan"), "true", "false", "yes", "1", "1.5", "",
    "x", "CC", "0A977", "government", "HK", "red", "green", "2020-01-01", "2020-02-30", "0001-01-01",
    "20200101", "2020-1-1", "2020-01-01T00:00:00", "١٢٣٤-٠١-٠١", None, [], ["CC"], ["CC", "CC"],
    ["bogus"], [1], [True], [None], ["2020-01-01"], [1, 2], [[]], {}, {"type": "government"},
]  # fmt: skip


# ---------------------------------------------------------------------------
# Helpers


@pytest.fixture(scope="module")
def policy() -> api.Policy:
    return api.load(POLICY)


@pytest.fixture(scope="module")
def typed(tmp_path_factory: pytest.TempPathFactory) -> CompiledPolicy:
    path = tmp_path_factory.mktemp("typed") / "typed.policy"
    path.write_text(TYPED_POLICY, encoding="utf-8")
    return api.load(path).compiled


def fixture_cases() -> list[dict[str, Any]]:
    return [json.loads(f.read_text(encoding="utf-8")) for f in CASE_FILES]


def canonical(facts: dict[str, Any]) -> dict[str, Any]:
    """Facts with value types made visible (Decimal('1') vs 1, sets order-free) for exact comparison."""

    def one(value: Any) -> Any:
        if isinstance(value, frozenset):
            return ("set", sorted((type(v).__name__, repr(v)) for v in value))
        return (type(value).__name__, repr(value))

    return {k: one(v) for k, v in facts.items()}


def outcome(validate: Callable[[Any], dict[str, Any]], case: Any) -> tuple[str, Any]:
    try:
        return "accepted", canonical(validate(case))
    except CaseError as exc:
        return "rejected", exc.problems


def pydantic_validate(compiled: CompiledPolicy, case: Any) -> dict[str, Any]:
    """The reference: the case model alone (what `CompiledPolicy.validate` does with pydantic),
    built here so the comparison holds whatever shortcuts the runtime takes before pydantic."""
    if not isinstance(case, Mapping):
        raise CaseError([("(case)", f"a case is a JSON object, not {type(case).__name__}")])
    data = {k: v for k, v in case.items() if not str(k).startswith("$")}
    try:
        dumped = compiled.case_model.model_validate(data).model_dump(by_alias=True)
    except ValidationError as exc:
        raise CaseError([pydantic_problem(e, compiled.program) for e in exc.errors()]) from None
    flat: dict[str, Any] = {}
    for path, fact in compiled.program.facts.items():
        value: Any = dumped
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        flat[path] = frozenset(value) if fact.type.is_set and value is not None else value
    return flat


def assert_agree(compiled: CompiledPolicy, case: Any) -> None:
    """`validate` accepts and rejects exactly what pydantic does, with equal facts (types included,
    in declaration order) and the same problems."""
    expected = outcome(lambda c: pydantic_validate(compiled, c), case)
    assert outcome(compiled.validate, case) == expected, case
    if expected[0] == "accepted":
        assert list(compiled.validate(case)) == list(compiled.program.facts)


def mutations(case: dict[str, Any], values: list[Any]) -> Iterator[Any]:
    """The case with each key (top level and inside records) replaced by each value, removed,
    or joined by an unknown key; plus non-object cases."""
    yield case
    for key in list(case):
        inner = case[key]
        for value in values:
            yield {**case, key: value}
        yield {k: v for k, v in case.items() if k != key}
        if isinstance(inner, dict):
            for sub in list(inner):
                for value in values:
                    yield {**case, key: {**inner, sub: value}}
                yield {**case, key: {k: v for k, v in inner.items() if k != sub}}
            yield {**case, key: {**inner, "unknown": 1}}
            yield {**case, key: {**inner, "$meta": 1}}
    yield {**case, "unknown": 1}
    yield {**case, "$meta": {"anything": [1]}}
    yield from ([case], "case", 1, None)


def run_cli(args: list[str], stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(main, ["batch", *args], input=stdin, catch_exceptions=False)


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def mixed_input() -> tuple[bytes, dict[str, int]]:
    """Good cases with malformed, invalid and blank lines in between, and the counts to expect."""
    cases = [json.dumps(c) for c in fixture_cases()]
    good = json.loads(cases[0])
    lines = [
        *cases[:10],
        "",
        '{"eccn": "0A977", ',  # truncated
        "not json",
        "   ",
        json.dumps({**good, "destination": "ZZ"}),  # not an allowed value
        json.dumps({**good, "civil_disorder": "perhaps", "license_required": None}),  # two bad fields
        json.dumps([good]),  # not an object
        *cases[10:],
        "\t",
    ]
    data = "\n".join(lines).encode("utf-8") + b"\n" + b'{"eccn": "\xff"}\n' + cases[0].encode("utf-8")
    counts = {"lines": len(lines) + 2, "decisions": len(cases) + 1, "rejects": 6, "blank": 3}
    return data, counts


def summary_counts(stderr: str) -> dict[str, int]:
    match = SUMMARY.search(stderr)
    assert match, stderr
    lines, decisions, rejects, blank = (int(g or 0) for g in match.groups())
    return {"lines": lines, "decisions": decisions, "rejects": rejects, "blank": blank}


# ---------------------------------------------------------------------------
# Fast validation agrees with pydantic


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_validation_agrees_with_pydantic_on_bundled_policies(path: Path) -> None:
    compiled = api.load(path).compiled
    for case in fixture_cases()[::6]:  # a spread of cases; the value pool is what matters
        for variant in mutations(case, POOL):
            assert_agree(compiled, variant)


def test_fixture_cases_skip_pydantic(policy: api.Policy, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixture cases are the common case: none of them should need pydantic (batch speed depends on it)."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("pydantic was asked")

    monkeypatch.setattr(policy.compiled.case_model, "model_validate", refuse)
    for case in fixture_cases():
        policy.compiled.validate(case)


def test_validation_agrees_on_numbers_dates_and_records(typed: CompiledPolicy) -> None:
    for variant in mutations(TYPED_CASE, POOL):
        assert_agree(typed, variant)
    # An optional record may be left out or null; the facts in it are then missing.
    for case in ({**TYPED_CASE, "extra": None}, {**TYPED_CASE, "extra": {}}):
        assert_agree(typed, case)
        assert typed.validate(case)["extra.more"] is None
    assert_agree(typed, {k: v for k, v in TYPED_CASE.items() if k != "extra"})


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
    | st.sampled_from(["red", "green", "2020-01-01", "true", "1"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_validation_agrees_on_arbitrary_json(typed: CompiledPolicy, data: st.DataObject) -> None:
    case = copy.deepcopy(TYPED_CASE)
    for key in data.draw(st.lists(st.sampled_from([*TYPED_CASE, "party.kind", "party.flag"]), max_size=3)):
        target, _, sub = key.partition(".")
        if sub and isinstance(case.get(target), dict):
            case[target][sub] = data.draw(JSON)
        else:
            case[key] = data.draw(JSON)
    assert_agree(typed, case)


# ---------------------------------------------------------------------------
# Decisions, rejects and the summary


@pytest.mark.parametrize("workers", [1, 2])
def test_lines_add_up_with_malformed_invalid_and_blank_lines(tmp_path: Path, workers: int) -> None:
    data, expected = mixed_input()
    source = tmp_path / "cases.jsonl"
    source.write_bytes(data)
    out = tmp_path / "decisions.jsonl"
    result = run_cli([str(POLICY), str(source), "-o", str(out), "--workers", str(workers)])
    assert result.exit_code == 0, result.output
    counts = summary_counts(result.stderr)
    assert counts == expected
    assert counts["lines"] == counts["decisions"] + counts["rejects"] + counts["blank"]
    assert len(jsonl(out)) == counts["decisions"]
    assert len(jsonl(tmp_path / "decisions.rejects.jsonl")) == counts["rejects"]
    assert f"rejects in {tmp_path / 'decisions.rejects.jsonl'}" in result.stderr


def test_decisions_are_what_evaluate_gives_with_line_numbers(tmp_path: Path, policy: api.Policy) -> None:
    cases = fixture_cases()
    source = tmp_path / "cases.jsonl"
    source.write_text("".join(json.dumps(c) + "\n" for c in cases * 2), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert run_cli([str(POLICY), str(source), "-o", str(out), "--workers", "1"]).exit_code == 0
    lines = jsonl(out)
    assert [d["line"] for d in lines] == list(range(1, 2 * len(cases) + 1))
    for decided, case in zip(lines, cases * 2, strict=True):
        expected = policy.evaluate(case).model_dump(mode="json", exclude={"trace"})
        assert {k: v for k, v in decided.items() if k != "line"} == expected
        assert "trace" not in decided


def test_order_is_kept_with_several_workers(tmp_path: Path, policy: api.Policy) -> None:
    data, _ = mixed_input()
    lines = [line.rstrip(b"\n") + b"\n" for line in data.splitlines(keepends=True)] * 8

    def decide(workers: int) -> tuple[bytes, bytes, batch.Summary]:
        """Blocks of ~300 bytes: a chunk per line or two, so many chunks race through the pool."""
        out, rejects = io.BytesIO(), io.BytesIO()
        source = io.BytesIO(b"".join(lines))
        summary = batch.run(policy, source, out, rejects, workers=workers, chunk_bytes=300)
        return out.getvalue(), rejects.getvalue(), summary

    inline_out, inline_rejects, inline = decide(1)
    pooled_out, pooled_rejects, pooled = decide(3)
    assert (pooled_out, pooled_rejects) == (inline_out, inline_rejects)
    numbers = [json.loads(line)["line"] for line in pooled_out.splitlines()]
    assert numbers == sorted(numbers) and len(numbers) == pooled.decisions
    assert (pooled.lines, pooled.decisions, pooled.rejects, pooled.blank) == (
        inline.lines,
        inline.decisions,
        inline.rejects,
        inline.blank,
    )
    assert pooled.lines == len(lines) == pooled.decisions + pooled.rejects + pooled.blank


def test_rejects_say_which_line_and_why(tmp_path: Path) -> None:
    data, _ = mixed_input()
    source = tmp_path / "cases.jsonl"
    source.write_bytes(data)
    rejects_file = tmp_path / "bad.jsonl"
    args = [str(POLICY), str(source), "-o", str(tmp_path / "out.jsonl"), "--rejects", str(rejects_file)]
    assert run_cli(args).exit_code == 0
    rejects = {r["line"]: r for r in jsonl(rejects_file)}
    assert sorted(rejects) == [12, 13, 15, 16, 17, 61]
    assert rejects[12]["error"] == "invalid-json"
    assert rejects[12]["input"] == '{"eccn": "0A977", '
    assert rejects[12]["column"] == 19 and "property name" in rejects[12]["reason"]
    assert rejects[13] == {
        "line": 13,
        "error": "invalid-json",
        "reason": "Expecting value",
        "column": 1,
        "input": "not json",
    }
    assert rejects[15]["error"] == "invalid-case"
    assert [p["path"] for p in rejects[15]["problems"]] == ["destination"]
    assert "'ZZ' is not one of the allowed values" in rejects[15]["problems"][0]["reason"]
    assert sorted(p["path"] for p in rejects[16]["problems"]) == ["civil_disorder", "license_required"]
    assert rejects[17]["problems"] == [{"path": "(case)", "reason": "a case is a JSON object, not list"}]
    assert rejects[61]["error"] == "invalid-json" and "UTF-8" in rejects[61]["reason"]
    assert rejects[61]["column"] == 11


def test_fail_on_reject_exits_1(tmp_path: Path) -> None:
    source = tmp_path / "cases.jsonl"
    source.write_text('{"x": 1}\n', encoding="utf-8")
    args = [str(POLICY), str(source), "-o", str(tmp_path / "out.jsonl"), "--workers", "1"]
    assert run_cli(args).exit_code == 0
    assert run_cli([*args, "--fail-on-reject"]).exit_code == 1


def test_stdin_input_and_stdout_output(tmp_path: Path) -> None:
    data, expected = mixed_input()
    rejects = tmp_path / "rejects.jsonl"
    result = run_cli([str(POLICY), "-", "-o", "-", "--rejects", str(rejects), "--workers", "2"], stdin=data)
    assert result.exit_code == 0, result.stderr
    decisions = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(decisions) == expected["decisions"]
    assert len(jsonl(rejects)) == expected["rejects"]
    assert summary_counts(result.stderr) == expected


def test_trace_and_date_options(tmp_path: Path) -> None:
    source = tmp_path / "cases.jsonl"
    source.write_text(CASE_FILES[0].read_text(encoding="utf-8").replace("\n", " ") + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    args = [str(POLICY), str(source), "-o", str(out), "--workers", "1"]
    assert run_cli([*args, "--trace", "--at", "2020-06-01"]).exit_code == 0
    [decided] = jsonl(out)
    assert decided["trace"]["rules"] and decided["line"] == 1
    assert decided["version"] == "2020-03-09" and decided["evaluated_at"] == "2020-06-01"
    assert run_cli([*args, "--version", "2024-07-29"]).exit_code == 0
    [decided] = jsonl(out)
    assert decided["version"] == "2024-07-29" and "trace" not in decided


def test_usage_and_policy_errors(tmp_path: Path) -> None:
    source = tmp_path / "cases.jsonl"
    source.write_text("{}\n", encoding="utf-8")
    assert run_cli([str(POLICY), str(source), "-o", str(source)]).exit_code == 2
    assert source.read_text(encoding="utf-8") == "{}\n"  # never truncated
    assert run_cli([str(POLICY), str(source), "-o", "-"]).exit_code == 2
    out = str(tmp_path / "o.jsonl")
    assert run_cli([str(POLICY), str(source), "-o", out, "--rejects", out]).exit_code == 2
    assert run_cli([str(POLICY), str(source), "-o", out, "--workers", "0"]).exit_code == 2
    assert run_cli([str(POLICY), str(source), "-o", out, "--version", "1999-01-01"]).exit_code == 2
    broken = tmp_path / "broken.policy"
    broken.write_text('policy "x"\n  title "t"\nrule', encoding="utf-8")
    assert run_cli([str(broken), str(source), "-o", out]).exit_code == 1


def test_default_rejects_path() -> None:
    assert default_rejects_path("out/decisions.jsonl") == "out/decisions.rejects.jsonl"
    assert default_rejects_path("decisions.json") == "decisions.json.rejects.jsonl"


def test_progress_only_on_a_terminal(tmp_path: Path) -> None:
    """CliRunner's stderr is not a terminal: no counter line. The counter itself draws and erases."""
    source = tmp_path / "cases.jsonl"
    source.write_text("{}\n" * 3, encoding="utf-8")
    result = run_cli([str(POLICY), str(source), "-o", str(tmp_path / "o.jsonl"), "--workers", "1"])
    assert "\r" not in result.stderr
    stream = io.StringIO()
    progress = batch.Progress(total_bytes=100, stream=stream, interval=0)
    progress(batch.Summary(lines=5, decisions=4, rejects=1, bytes_read=50))
    progress.close()
    assert "50.0%" in stream.getvalue() and "5 lines: 4 decisions, 1 rejects" in stream.getvalue()
    assert stream.getvalue().endswith("\r\x1b[2K")


# ---------------------------------------------------------------------------
# Ctrl-C


def start_batch(args: list[str], **popen: Any) -> subprocess.Popen[bytes]:
    """`policy batch` in a child process that takes SIGINT as Ctrl-C (even if our shell ignores it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "batch", *args],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        **popen,
    )


def wait_for_output(path: Path, child: subprocess.Popen[bytes]) -> None:
    """Until the child has written its first chunk (or ended, which the caller's asserts catch)."""
    while (not path.exists() or path.stat().st_size == 0) and child.poll() is None:
        time.sleep(0.01)


def assert_interrupted_cleanly(child: subprocess.Popen[bytes], out: Path, rejects: Path) -> int:
    """Exit 130, whole JSON lines only, and a message whose counts match the files."""
    _, err = child.communicate(timeout=600)
    stderr = err.decode()
    assert child.returncode == 130, stderr
    match = INTERRUPTED.search(stderr)
    assert match, stderr
    lines, decisions, rejected, blank = (int(g or 0) for g in match.groups())
    assert lines == decisions + rejected + blank
    for path, count in ((out, decisions), (rejects, rejected)):
        data = path.read_bytes()
        assert data == b"" or data.endswith(b"\n")
        assert len([json.loads(line) for line in data.splitlines()]) == count
    return lines


def test_ctrl_c_on_a_large_file_leaves_whole_lines(tmp_path: Path) -> None:
    source = tmp_path / "cases.jsonl"
    with source.open("w", encoding="utf-8") as handle:
        handle.writelines(
            line + "\n" for line in batch.sample_lines(ROOT / "fixtures/cases", 100_000, malformed_every=997)
        )
    out, rejects = tmp_path / "out.jsonl", tmp_path / "out.rejects.jsonl"
    child = start_batch([str(POLICY), str(source), "-o", str(out), "--workers", "2"])
    wait_for_output(out, child)
    child.send_signal(signal.SIGINT)
    lines = assert_interrupted_cleanly(child, out, rejects)
    assert 0 < lines < 100_000


def test_ctrl_c_while_waiting_for_stdin(tmp_path: Path) -> None:
    """2,000 whole lines arrive and then half a line: the lines are decided as they come, and the
    interrupt, while the half line waits for its end, reports exactly those 2,000."""
    out, rejects = tmp_path / "out.jsonl", tmp_path / "rejects.jsonl"
    args = [str(POLICY), "-", "-o", str(out), "--rejects", str(rejects), "--workers", "1"]
    child = start_batch(args, stdin=subprocess.PIPE)
    assert child.stdin is not None
    lines = list(batch.sample_lines(ROOT / "fixtures/cases", 2000, malformed_every=100))
    child.stdin.write("".join(line + "\n" for line in lines).encode() + b'{"eccn": ')
    child.stdin.flush()
    while child.poll() is None and (not out.exists() or out.read_bytes().count(b"\n") < 1980):
        time.sleep(0.01)
    child.send_signal(signal.SIGINT)
    assert assert_interrupted_cleanly(child, out, rejects) == 2000
    assert len(jsonl(rejects)) == 20
    child.stdin.close()


def test_blocks_hold_whole_lines() -> None:
    """Lines longer than a block, CRLF endings and a last line without a newline."""
    data = b'{"a": 1}\r\n' + b"x" * 50 + b"\n\n" + b"tail"
    chunks = list(batch.read_chunks(io.BytesIO(data), size=8))
    assert b"".join(block for _, block in chunks) == data
    assert all(block.endswith(b"\n") for _, block in chunks[:-1])
    firsts = [first for first, _ in chunks]
    assert firsts[0] == 1 and firsts[-1] == 4


def test_sample_lines_cycles_fixture_cases() -> None:
    lines = list(batch.sample_lines(ROOT / "fixtures/cases", len(CASE_FILES) + 2, malformed_every=3))
    assert len(lines) == len(CASE_FILES) + 2
    assert lines[len(CASE_FILES)] == lines[0]
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[2])
    assert isinstance(json.loads(lines[0]), dict)


def test_an_engine_error_rejects_the_case_and_the_run_goes_on(policy: api.Policy) -> None:
    """A bug met on one odd case costs that case, not a million-line run."""
    decider = batch.Decider(policy)
    good = json.dumps(fixture_cases()[0]).encode()
    original = decider._decision_json

    def flaky(facts: dict[str, Any]) -> str:
        if facts["eccn"] == "boom":
            raise KeyError("boom")
        return original(facts)

    decider._decision_json = flaky  # type: ignore[method-assign]
    odd = json.dumps({**fixture_cases()[0], "eccn": "boom"}).encode()
    result = decider.decide_chunk(1, good + b"\n" + odd + b"\n" + good + b"\n")
    assert (result.n_decisions, result.n_rejects) == (2, 1)
    [reject] = [json.loads(line) for line in result.rejects.splitlines()]
    assert reject["line"] == 2 and reject["error"] == "evaluation-failed" and "KeyError" in reject["reason"]
