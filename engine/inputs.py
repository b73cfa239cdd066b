"""Generated input readers: case dicts to the flat facts the compiled rules read, without pydantic.

Two functions are generated per policy version from its fact declarations:

* `accept(case)` returns the flat facts when every value already has its exact JSON type
  (booleans, strings, integers for numbers, `YYYY-MM-DD` strings for dates, allowed
  enumeration values, lists of those), no key is unknown and every required fact is there.
  Anything else returns None, and the caller hands the case to the pydantic model, which
  accepts or rejects it and writes the error messages. For the inputs `accept` takes,
  pydantic yields the same facts (a test compares them), so validation keeps one meaning.
* `trusted(case)` only reshapes (nested records to dotted paths, lists to frozensets) a case
  the caller vouches for: the raw path for benchmarks and batch jobs that produced the data.

Like the rule compiler, only compiler-made names appear in the source; fact names reach it
through `repr`, and enumeration values as namespace constants.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from engine import program as p
from engine.cases import Record, records

FactMap = dict[str, Any]


def _as_date(value: str) -> datetime.date:
    return datetime.date.fromisoformat(value)


class _Writer:
    def __init__(self, program: p.Program):
        self.program = program
        self.namespace: dict[str, Any] = {
            "_Decimal": Decimal,
            "_date": _as_date,
            "_frozenset": frozenset,
            "_type": type,
            "_dict": dict,
            "_list": list,
            "_str": str,
            "_bool": bool,
            "_int": int,
            "_EMPTY": {},
        }
        self.lines: list[str] = []
        self.values: dict[str, str] = {}  # fact path -> local holding its converted value
        self._n = 0

    def name(self, stem: str) -> str:
        self._n += 1
        return f"_{stem}{self._n}"

    def const(self, value: Any) -> str:
        name = self.name("k")
        self.namespace[name] = value
        return name

    def emit(self, line: str, depth: int = 1) -> None:
        self.lines.append("    " * depth + line)


def _check_leaf(w: _Writer, var: str, fact: p.FactInfo) -> None:
    """Lines that return None unless `var` holds exactly the JSON form of the fact's type."""
    element = fact.type.element
    if fact.type.is_set:
        w.emit(f"if _type({var}) is not _list:", 2 if fact.optional else 1)
        w.emit("return None", 3 if fact.optional else 2)
    check = _scalar_check(w, element, "v" if fact.type.is_set else var)
    depth = 2 if fact.optional else 1
    if fact.type.is_set:
        w.emit(f"for v in {var}:", depth)
        w.emit(f"if not ({check}):", depth + 1)
        w.emit("return None", depth + 2)
    else:
        w.emit(f"if not ({check}):", depth)
        w.emit("return None", depth + 1)


def _scalar_check(w: _Writer, element: p.Type, var: str) -> str:
    if element.base == "boolean":
        return f"_type({var}) is _bool"
    if element.base == "string":
        return f"_type({var}) is _str"
    if element.base == "number":
        return f"_type({var}) is _int"
    if element.base == "date":
        return f"_type({var}) is _str and len({var}) == 10 and {var}[4] == '-' and {var}[7] == '-'"
    values = w.const(frozenset(w.program.enums[element.enum or ""]))
    return f"_type({var}) is _str and {var} in {values}"


def _converted(fact: p.FactInfo, var: str) -> str:
    element = fact.type.element.base
    if fact.type.is_set:
        inner = {"number": "_Decimal(x)", "date": "_date(x)"}.get(element)
        return f"_frozenset({inner} for x in {var})" if inner else f"_frozenset({var})"
    if element == "number":
        return f"_Decimal({var})"
    if element == "date":
        return f"_date({var})"
    return var


def _walk(w: _Writer, tree: Record, source: str, prefix: str, checked: bool) -> None:
    """Read one record level: its known keys, its facts, then its sub-records."""
    if checked:
        w.emit(f"if not {w.const(tree.keys())}.issuperset({source}):")
        w.emit("return None", 2)
    for key, fact in tree.facts():
        var = w.name("v")
        getter = f"{source}.get({key!r})" if fact.optional else f"{source}[{key!r}]"
        w.emit(f"{var} = {getter}")
        if checked:
            if fact.optional:
                w.emit(f"if {var} is not None:")
            _check_leaf(w, var, fact)
        value = _converted(fact, var)
        w.values[fact.path] = (
            f"(None if {var} is None else {value})" if fact.optional and value != var else value
        )
    for key, sub in tree.records():
        var = w.name("r")
        if sub.required():
            w.emit(f"{var} = {source}[{key!r}]")
        else:
            w.emit(f"{var} = {source}.get({key!r})")
            w.emit(f"if {var} is None:")
            w.emit(f"{var} = _EMPTY", 2)
        if checked:
            w.emit(f"if _type({var}) is not _dict:")
            w.emit("return None", 2)
        _walk(w, sub, var, f"{prefix}{key}.", checked)


def _function(program: p.Program, name: str, checked: bool) -> tuple[list[str], dict[str, Any]]:
    tree = records(program)
    w = _Writer(program)
    head = [f"def {name}(c):"]
    if checked:
        top = w.const(tree.keys())
        head += [
            "    if _type(c) is not _dict:",
            "        return None",
            f"    if not {top}.issuperset(c):",
            "        c = {k: x for k, x in c.items() if not (_type(k) is _str and k[:1] == '$')}",
        ]
        w.lines = []
        _walk_top(w, tree)
    else:
        _walk(w, tree, "c", "", False)
    body = ", ".join(f"{path!r}: {w.values[path]}" for path in program.facts)
    wrapper = [
        "    try:",
        *["    " + line for line in w.lines],
        f"        return {{{body}}}",
        "    except (KeyError, TypeError, ValueError, AttributeError):",
        "        return None",
    ]
    return head + wrapper, w.namespace


def _walk_top(w: _Writer, tree: Record) -> None:
    _walk(w, tree, "c", "", True)


def compile_inputs(
    program: p.Program,
) -> tuple[Callable[[Any], FactMap | None], Callable[[Any], FactMap | None]]:
    """The `accept` and `trusted` readers for a program (see the module docstring)."""
    built = []
    for name, checked in (("accept", True), ("trusted", False)):
        lines, namespace = _function(program, name, checked)
        code = compile("\n".join(lines) + "\n", f"<policy inputs {name}>", "exec")
        scope = dict(namespace)
        scope["__builtins__"] = {
            "len": len,
            "KeyError": KeyError,
            "TypeError": TypeError,
            "ValueError": ValueError,
            "AttributeError": AttributeError,
        }
        exec(code, scope)  # compiler-made names and repr'd fact keys only
        built.append(scope[name])
    return built[0], built[1]
