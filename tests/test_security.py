"""Hostile policy text and hostile cases cannot run code.

Policies are compiled to Python (engine/compiler.py, engine/inputs.py), so everything a
policy author or a case supplier writes must reach the generated code as data. Each test
plants a payload that would create a canary file if it were ever executed or evaluated,
in every place text can go: identifiers (dunder names, names the compiler itself uses),
string literals, descriptions, citations, enumeration values, table data, case values and
case keys. The policy must either be rejected with located diagnostics or work, treating
the payload as plain text, and the canary must never appear.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import engine
from engine import cases
from engine.checker import check_text
from engine.errors import CaseError, PolicyError
from engine.render import render_decision
from tests.conftest import HEADER


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    return tmp_path / "pwned"


def payloads(canary: Path) -> list[str]:
    target = str(canary).replace("\\", "/")
    return [
        f"__import__('os').system('touch {target}')",
        f'__import__(\\"os\\").system(\\"touch {target}\\")',
        f"""\\"); __import__('pathlib').Path('{target}').touch(); (\\\"""",
        f"{{{{ cycler.__init__.__globals__.os.system('touch {target}') }}}}",
        f"\\\\n\\\\r'''\\\"\\\"\\\" + open('{target}', 'w').write('x') + '",
        "${jndi:ldap://x}",
    ]


def unquoted(text: str) -> str:
    """A policy string literal's text as the parser gives it back (`\\x` escapes become `x`)."""
    out, escape = [], False
    for char in text:
        if escape:
            out.append(char)
            escape = False
        elif char == "\\":
            escape = True
        else:
            out.append(char)
    return "".join(out)


def write(tmp_path: Path, body: str, header: str = HEADER, data: dict[str, Any] | None = None) -> Path:
    if data is not None:
        (tmp_path / "table.json").write_text(json.dumps(data), encoding="utf-8")
    path = tmp_path / "hostile.policy"
    path.write_text(header + body, encoding="utf-8")
    return path


def assert_untouched(canary: Path) -> None:
    assert not canary.exists(), "a payload was executed"


# ---------------------------------------------------------------------------
# Text in strings: descriptions, citations, literals, header fields


def test_payloads_in_every_string_of_a_policy(tmp_path: Path, canary: Path) -> None:
    for index, payload in enumerate(payloads(canary)):
        header = (
            f'policy "{payload}"\n  title "{payload}"\n  version "{payload}"\n  effective 2021-01-01\n'
            f'  status in-force\n  source "{payload}"\n  description "{payload}"\n'
        )
        body = (
            f'enum R "{payload}" = <yes, no>\n'
            f'fact name: string "{payload}"\n'
            f'fact tags: set of string "{payload}"\n'
            f'decision d: R default no "{payload}"\n'
            f'obligation ob "{payload}"\n'
            f'recommendation rec "{payload}" cite "{payload}"\n'
            f'group g "{payload}" = <"{payload}", "x">\n'
            f'define named "{payload}" = name = "{payload}"\n'
            f'rule r "{payload}" cite "{payload}", "{payload}"\n'
            f'  if named or tags includes "{payload}" or name in g\n'
            f"  then decide d = yes and require ob and recommend rec\n"
        )
        folder = tmp_path / str(index)
        folder.mkdir()
        policy = engine.load(write(folder, body, header))
        text = unquoted(payload)
        assert policy.id == text
        assert text not in policy.compiled.rules.source
        for case in (
            {"name": text, "tags": []},
            {"name": "other", "tags": [text]},
            {"name": "x", "tags": []},
        ):
            decision = policy.evaluate(case, trace=True)
            assert decision.value("d") == ("yes" if case != {"name": "y", "tags": []} else "no")
            for fmt in ("text", "md", "json"):
                render_decision(decision, fmt, explain=True)
        assert_untouched(canary)


def test_text_that_breaks_out_of_a_string_is_a_located_syntax_error(tmp_path: Path, canary: Path) -> None:
    breakout = f"\\\\\"); __import__('pathlib').Path('{canary}').touch(); (\\\\\""
    path = write(tmp_path, f'fact name: string "{breakout}"\nrule r "{breakout}" if name then require o\n')
    with pytest.raises(PolicyError) as caught:
        engine.load(path)
    assert caught.value.diagnostics
    assert all(d.code == "syntax" and d.line >= 7 for d in caught.value.diagnostics)
    assert_untouched(canary)


# ---------------------------------------------------------------------------
# Identifiers: dunder names and the compiler's own names

IDENTIFIERS = [
    "__import__",
    "__class__",
    "__builtins__",
    "__globals__",
    "_",
    "_f0",
    "_c0",
    "_d0",
    "_t0",
    "_k1",
    "_v1",
    "_s",
    "f",
    "t",
    "v",
    "c",
    "fired",
    "explain",
    "accept",
    "exec",
    "eval",
    "model_config",
    "model_fields",
    "schema",
    "json",
    "copy",
    "dict",
    "validate",
]


@pytest.mark.parametrize("name", IDENTIFIERS)
def test_any_name_is_just_a_name(tmp_path: Path, canary: Path, name: str) -> None:
    body = (
        f'enum {name}_E "values named like code" = <{name}, other>\n'
        f'fact {name}: boolean "a fact named {name}"\n'
        f'fact rec.{name}: optional {name}_E "a record field named {name}"\n'
        f'fact {name}_set: set of {name}_E "a set"\n'
        f"group {name}_group = <{name}>\n"
        f'define {name}_derived "derived" = {name} and rec.{name} = {name}\n'
        f'decision {name}_decision: {name}_E default other "decision named {name}"\n'
        f'obligation {name} "an obligation named {name}"\n'
        f'rule {name} "a rule named {name}"\n'
        f"  if {name}_derived or {name}_set includes any {name}_group\n"
        f"  then decide {name}_decision = {name} and require {name}\n"
    )
    policy = engine.load(write(tmp_path, body))
    assert policy.compiled.rules.decide.__globals__["__builtins__"] == {}
    yes = policy.evaluate({name: True, "rec": {name: name}, f"{name}_set": []}, trace=True)
    assert yes.value(f"{name}_decision") == name
    assert yes.fired == [name]
    assert yes.obligation_names == [name]
    assert policy.validate({name: False, f"{name}_set": [name]})[f"{name}_set"] == frozenset({name})
    no = policy.evaluate({name: False, f"{name}_set": ["other"]})
    assert no.value(f"{name}_decision") == "other"
    schema = policy.schema()
    assert name in schema["properties"] and "rec" in schema["properties"]
    with pytest.raises(CaseError) as caught:
        policy.evaluate({name: "maybe", f"{name}_set": [], "__init__": 1})
    assert dict(caught.value.problems).keys() == {name, "__init__"}
    assert_untouched(canary)


# ---------------------------------------------------------------------------
# Table data


def test_payloads_in_table_keys_and_values(tmp_path: Path, canary: Path) -> None:
    texts = [unquoted(p) for p in payloads(canary)]
    data = {
        "description": texts[0],
        "source": texts[1],
        "entries": [{"key": text, "value": [text, "plain"]} for text in texts],
    }
    body = (
        'fact key: string "a key"\n'
        'enum R "r" = <yes, no>\ndecision d: R default no "d"\n'
        'table t: string -> set of string "hostile data" from "table.json"\n'
        'rule r if key in t and t[key] includes "plain" then decide d = yes\n'
    )
    policy = engine.load(write(tmp_path, body, data=data))
    for text in texts:
        decision = policy.evaluate({"key": text}, trace=True)
        assert decision.value("d") == "yes"
        render_decision(decision, "text", explain=True)
    assert policy.evaluate({"key": "absent"}).value("d") == "no"
    assert not any(text in policy.compiled.rules.source for text in texts)
    assert_untouched(canary)


def test_a_table_file_that_is_not_json_is_not_shown(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password=hunter2\n", encoding="utf-8")
    path = write(tmp_path, f'table t: string -> string "t" from "{secret}"\n')
    with pytest.raises(PolicyError) as caught:
        engine.load(path)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "table-data"
    assert "hunter2" not in str(caught.value)


# ---------------------------------------------------------------------------
# Cases


def test_payloads_in_case_values_and_keys(tmp_path: Path, canary: Path) -> None:
    body = (
        'enum R "r" = <yes, no>\ndecision d: R default no "d"\n'
        'fact name: string "n"\nfact when: optional date "w"\nfact count: optional number "c"\n'
        'fact tags: set of string "t"\nfact kind: optional R "k"\n'
        'rule r if name = "x" then decide d = yes\n'
    )
    policy = engine.load(write(tmp_path, body))
    for payload in payloads(canary):
        text = unquoted(payload)
        decision = policy.evaluate({"name": text, "tags": [text, text]}, trace=True)
        assert decision.value("d") == "no"
        assert decision.trace is not None and decision.trace.facts["name"] == text
        for field in ("when", "count", "kind"):
            with pytest.raises(CaseError) as caught:
                policy.evaluate({"name": "x", "tags": [], field: text})
            assert [path for path, _ in caught.value.problems] == [field]
        if text.startswith("$"):  # `$`-keys are annotations (`$comment`): ignored, never read
            assert policy.validate({"name": "x", "tags": [], text: 1}) == policy.validate(
                {"name": "x", "tags": []}
            )
            continue
        with pytest.raises(CaseError) as caught:
            policy.evaluate({"name": "x", "tags": [], text: 1})
        assert caught.value.problems == [(cases.field_path((text,)), "is not a fact of this policy")]
    assert_untouched(canary)


def test_the_generated_code_has_no_builtins(tmp_path: Path) -> None:
    policy = engine.load(
        write(tmp_path, 'fact a: boolean "a"\nobligation o "o"\nrule r if a then require o\n')
    )
    rules = policy.compiled.rules
    for function in (rules.decide, rules.explain):
        assert function.__globals__["__builtins__"] == {}


def test_a_policy_cannot_smuggle_code_through_the_grammar() -> None:
    attempts = [
        "rule r if __import__('os') then require o\n",
        'rule r if a = "x" + __import__("os") then require o\n',
        "rule r if a[0] then require o\n",
        "rule r if a.__class__ then require o\n",
        "rule r if eval(a) then require o\n",
        "rule r if a then require o; import os\n",
    ]
    for text in attempts:
        result = check_text(HEADER + 'fact a: boolean "a"\nobligation o "o"\n' + text, "x.policy")
        assert result.program is None, text
        assert all(d.line > 0 for d in result.diagnostics)
