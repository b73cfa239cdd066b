"""Inputs that crashed the engine with a traceback (issue 11): now each is a located error
or a clean reject. Every test runs the CLI as a user would and fails on any traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from engine import limits
from engine.cli import main
from tests.conftest import HEADER

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "policies" / "ear-742.7"
BASE = (
    HEADER
    + """
enum R "r" = <yes, no>
decision d: R default no "d"
fact a: boolean "a"
fact b: boolean "b"
fact s: optional string "s"
"""
)


def run(*args: str | Path, stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], input=stdin)


def assert_clean(result: Result, code: int = 1) -> None:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


@pytest.mark.parametrize("which", ["policy", "vocab", "table"])
def test_files_that_are_not_utf8_are_located_errors(tmp_path: Path, which: str) -> None:
    (tmp_path / "v.vocab").write_bytes(
        b'vocabulary "v"\n  title "t"\n\nfact c: boolean "c\xff"\n'
        if which == "vocab"
        else b'vocabulary "v"\n  title "t"\n'
    )
    (tmp_path / "t.json").write_bytes(
        b'{"entries": [{"key": "\xff", "value": true}]}' if which == "table" else b'{"entries": []}'
    )
    body = (
        BASE
        + 'use "v.vocab"\ntable tb: string -> boolean "t" from "t.json"\nrule r "r" cite "c" if a then decide d = yes\n'
    )
    text = body.encode() + (b"# caf\xe9\n" if which == "policy" else b"")
    (tmp_path / "p.policy").write_bytes(text)
    (tmp_path / "case.json").write_text('{"a": true, "b": true}', "utf-8")
    for args in (
        ("check", tmp_path / "p.policy"),
        ("eval", tmp_path / "p.policy", tmp_path / "case.json"),
        ("versions", tmp_path),
    ):
        result = run(*args)
        assert result.exit_code in (1, 2), result.output
        assert ("Traceback" not in result.output and "UTF-8" in result.output) or args[0] == "versions"
    check = run("check", tmp_path / "p.policy")
    located = {"policy": "p.policy:", "vocab": "v.vocab:", "table": "in `t.json`, line 1 column 23"}[which]
    assert located in check.output  # the file that holds the bad byte, and where (a table file
    # that is not JSON is never quoted, so its place is in the message)


def nested(kind: str, n: int) -> str:
    if kind == "not":
        return BASE + 'rule r "r" cite "c" if ' + "not " * n + "a then decide d = yes\n"
    if kind == "parens":
        return (
            BASE + 'rule r "r" cite "c" if ' + "(a and " * n + "b" + " or b)" * n + " then decide d = yes\n"
        )
    if kind == "derived":
        chain = "".join(f'define x{i}: boolean "x" = {"x" + str(i - 1) if i else "a"}\n' for i in range(n))
        return BASE + chain + f'rule r "r" cite "c" if x{n - 1} then decide d = yes\n'
    rules = "".join(
        f'rule r{i} "r" cite "c"\n'
        + (f"  overrides r{i - 1}\n" if i else "")
        + "  if a then decide d = yes\n"
        for i in range(n)
    )
    return BASE + rules


@pytest.mark.parametrize(
    ("kind", "n"), [("not", 300), ("parens", 200), ("derived", 1000), ("overrides", 1000)]
)
def test_deep_structures_are_located_errors(tmp_path: Path, kind: str, n: int) -> None:
    path = tmp_path / "deep.policy"
    path.write_text(nested(kind, n), "utf-8")
    result = run("check", path)
    assert_clean(result)
    assert "error[too-deep]" in result.output and f"{path}:" in result.output
    (tmp_path / "case.json").write_text('{"a": true, "b": true}', "utf-8")
    assert_clean(run("eval", path, tmp_path / "case.json"))


@pytest.mark.parametrize(
    ("kind", "n"),
    [("not", limits.MAX_NESTING - 1), ("derived", limits.MAX_CHAIN), ("overrides", limits.MAX_CHAIN)],
)
def test_structures_at_the_limit_still_work(tmp_path: Path, kind: str, n: int) -> None:
    path = tmp_path / "deep.policy"
    path.write_text(nested(kind, n), "utf-8")
    (tmp_path / "case.json").write_text('{"a": true, "b": true}', "utf-8")
    assert_clean(run("eval", path, tmp_path / "case.json", "--explain"), 0)


def test_a_long_use_chain_is_a_located_error(tmp_path: Path) -> None:
    for i in range(100):
        nxt = f'use "v{i + 1}.vocab"\n' if i < 99 else ""
        (tmp_path / f"v{i}.vocab").write_text(
            f'vocabulary "v{i}"\n  title "t"\n\n{nxt}fact f{i}: boolean "f"\n', "utf-8"
        )
    path = tmp_path / "p.policy"
    path.write_text(BASE + 'use "v0.vocab"\nrule r "r" cite "c" if a then decide d = yes\n', "utf-8")
    result = run("check", path)
    assert_clean(result)
    assert "error[too-deep]" in result.output


CASE = json.loads((ROOT / "fixtures/cases/aircraft-parts-burma-air-force.json").read_text("utf-8"))


@pytest.mark.parametrize(
    "data",
    [
        b'{"quantity": ' + b"9" * 5000 + b"}",
        b'{"a": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        b'{"eccn": "\xed\xa0\x80"}',
        b'{"eccn": "\xff"}',
        b'{"eccn": "\\udc80"}',
        b"\xef\xbb\xbf" + json.dumps({**CASE, "eccn": "x" * 50_000_000}).encode()[:100] + b"}",
    ],
)
@pytest.mark.parametrize("fmt", ["text", "md", "json"])
def test_hostile_case_files_are_clean_errors(tmp_path: Path, data: bytes, fmt: str) -> None:
    case = tmp_path / "case.json"
    case.write_bytes(data)
    for source in (case, "-"):
        result = run(
            "eval", POLICY, source, "--explain", "--format", fmt, stdin=data if source == "-" else None
        )
        assert_clean(result)
        assert len(result.output) < 5_000


def test_a_lone_surrogate_from_python_renders_escaped(tmp_path: Path) -> None:
    import engine
    from engine.render import render_decision

    policy = engine.load(POLICY)
    decision = policy.evaluate({**CASE, "eccn": "0A978\udc80"}, trace=True)
    for fmt in ("text", "md", "json"):
        text = render_decision(decision, fmt, explain=True)
        text.encode("utf-8")  # printable: no lone surrogate left
        assert "\\udc80" in text


def test_batch_trace_with_odd_strings(tmp_path: Path) -> None:
    source = tmp_path / "cases.jsonl"
    lines = [json.dumps({**CASE, "eccn": "0A978\u202e\x1b[2J"}), '{"eccn": "\\udc80"}', json.dumps(CASE)]
    source.write_text("\n".join(lines) + "\n", "utf-8")
    out = tmp_path / "out.jsonl"
    result = run("batch", POLICY, source, "-o", out, "--trace", "--workers", "1")
    assert_clean(result, 0)
    assert len(out.read_text("utf-8").splitlines()) == 2


def test_a_bom_starts_a_policy_like_it_starts_a_case(tmp_path: Path) -> None:
    path = tmp_path / "bom.policy"
    path.write_text("\ufeff" + BASE + 'rule r "r" cite "c" if a then decide d = yes\n', "utf-8")
    assert_clean(run("check", path), 0)
    case = tmp_path / "case.json"
    case.write_bytes(b'\xef\xbb\xbf{"a": true, "b": false}')
    result = run("eval", path, case)
    assert_clean(result, 0)
    assert "d = yes" in result.output


def test_a_10_mb_string_literal_is_read_in_linear_memory() -> None:
    """The string regex (grammar/policy.lark, parser._COMMENT_OR_STRING) was `("([^"\\]|\\.)*")`,
    which kept state per character: 2.7 GB for 10 MB. Unrolled, the same match is flat."""
    import resource

    from engine.parser import parse

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    parse('policy "t"\n  title "' + "a" * 10_000_000 + '"\n', "big.policy")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 600
