"""Typed columnar ingestion: decide Arrow record batches without turning every value into a Python object.

Getting data into Python, not the rules, is what an impact run over millions of records pays
for. So for a batch of Arrow columns this module generates, per policy version and column
layout, a loop over *encoded* columns, from the checked IR (`engine.program`), beside the
compiler's own functions:

* an enumeration value is its index in the enumeration (an `int`),
* a set of enumeration values is an integer bitmask (bit i = value i), so `includes any` is `&`,
* a number is a scaled integer (every number of the run multiplied by 10**S, S the largest
  number of decimal places among the policy's constants and the columns' decimal types), read
  from the decimal's own integer representation: a decimal never passes through float,
* a date is its day number (days since 1970-01-01, Arrow's `date32`),
* booleans and strings stay as they are, sets of strings or numbers become frozensets.

Encoding is vectorised (pyarrow.compute: dictionary encoding, `index_in`, list joins), and
the generated loop returns each row's fired-rule key, the same key `CompiledRules.decide`
returns, so precedence, outcomes and caching are the runtime's (one meaning). A value outside
its enumeration, a null for a required fact, a malformed date makes the row a reject with its
row number and reason; the other rows are decided. Rows are decoded back to a case only when
a trace is needed (`case_of_row`), and that trace comes from the ordinary `evaluate`.

`decide_batches(policy_ref, batches)` is the public entry point, with Spark's `mapInArrow`
contract (an iterator of record batches in, one out per batch in). The policy travels as
`PolicyRef`: the source text of every file the version was built from plus its content hash;
each worker process compiles it once (cached by hash) and checks the hash.

pyarrow is imported lazily, by the functions that need it, so `import engine` stays light.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import kleene
from engine import program as p
from engine.errors import UsageError
from engine.models import to_json_value
from engine.render import format_value

if TYPE_CHECKING:
    import pyarrow as pa

    from engine.api import Policy
    from engine.runtime import CompiledPolicy

__all__ = [
    "ColumnarError",
    "PolicyRef",
    "decide_batches",
    "output_schema",
]

EPOCH = datetime.date(1970, 1, 1).toordinal()
SEPARATOR = "\x1f"  # joins the values of a list column into one dictionary key per distinct set


class ColumnarError(UsageError):
    """The columns do not fit the policy's facts (a missing required fact, a float for a number...)."""


def day_number(value: datetime.date) -> int:
    return value.toordinal() - EPOCH


def from_day_number(days: int) -> datetime.date:
    return datetime.date.fromordinal(days + EPOCH)


def _decimal_places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def scaled(value: Decimal, scale: int) -> int:
    """A decimal as an integer count of 10**-scale units (exact: the scale covers its places)."""
    shifted = value.scaleb(scale)
    result = int(shifted)
    if shifted != result:
        raise ValueError(f"{value} has more than {scale} decimal places")
    return result


# ---------------------------------------------------------------------------
# Encoding values of one type (constants, table entries, and the slow per-row path)


@dataclass(frozen=True)
class Codec:
    """How values of the program's types are encoded for one run (the number scale is fixed per run)."""

    program: p.Program
    scale: int

    def codes(self, enum: str) -> dict[str, int]:
        return {value: i for i, value in enumerate(self.program.enums[enum])}

    def is_mask(self, type_: p.Type) -> bool:
        return type_.is_set and type_.base == "enum"

    def scalar(self, type_: p.Type, value: Any) -> Any:
        """One scalar (not a set) in its encoded form."""
        base = type_.base
        if base == "enum":
            return self.codes(type_.enum or "")[value]
        if base == "number":
            return scaled(Decimal(value), self.scale)
        if base == "date":
            return day_number(value)
        return value

    def value(self, type_: p.Type, value: Any) -> Any:
        """A constant or table value in its encoded form (sets of enumeration values as masks)."""
        if value is None:
            return None
        if not type_.is_set:
            return self.scalar(type_, value)
        element = type_.element
        if self.is_mask(type_):
            mask = 0
            for item in value:
                mask |= 1 << self.scalar(element, item)
            return mask
        return frozenset(self.scalar(element, item) for item in value)


def program_scale(program: p.Program) -> int:
    """The most decimal places of any number constant or table number in the program."""
    places = 0

    def visit(node: p.Node) -> None:
        nonlocal places
        if isinstance(node, p.Const) and node.type.base == "number":
            values = node.value if isinstance(node.value, frozenset) else [node.value]
            for v in values:
                if isinstance(v, Decimal):
                    places = max(places, _decimal_places(v))
        for child in p.sub_nodes(node):
            visit(child)

    for rule in program.rules:
        for node in (rule.condition, *rule.unless):
            visit(node)
    for info in program.derived.values():
        visit(info.node)
    for table in program.tables.values():
        for entry in table.entries:
            for type_, value in ((table.key_type, entry.key), (table.value_type, entry.value)):
                if type_.base == "number":
                    items = value if isinstance(value, frozenset) else [value]
                    places = max([places, *(_decimal_places(Decimal(str(v))) for v in items)])
    return places


# ---------------------------------------------------------------------------
# Generated code over encoded values


def _any3(items: Any, collection: Any) -> bool | None:
    return None if items is None or collection is None else not items.isdisjoint(collection)


def _all3(items: Any, collection: Any) -> bool | None:
    return None if items is None or collection is None else items.issubset(collection)


def _bit3(item: int | None, mask: int | None) -> bool | None:
    return None if item is None or mask is None else (mask >> item) & 1 == 1


def _meet3(a: int | None, b: int | None) -> bool | None:
    return None if a is None or b is None else (a & b) != 0


def _sub3(a: int | None, b: int | None) -> bool | None:
    return None if a is None or b is None else (a & ~b) == 0


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_PY_OP = {"=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

_RUNTIME: dict[str, Any] = {
    **kleene.NAMESPACE,
    # encoded sets are already Python sets: the same meaning as kleene.any3/all3, without the copy
    "_any3": _any3,
    "_all3": _all3,
    "_bit3": _bit3,
    "_meet3": _meet3,
    "_sub3": _sub3,
    "_EMPTY": frozenset(),
    "_zip": zip,
    "_len": len,
    "_list": list,
}


class _Emitter:
    """Python expressions over encoded values, one per IR node (mirrors the compiler's semantics)."""

    def __init__(self, codec: Codec):
        self.codec = codec
        self.program = codec.program
        self.namespace: dict[str, Any] = dict(_RUNTIME)
        self.facts: dict[str, str] = {}
        self.derived_vars = {name: f"_d{i}" for i, name in enumerate(self.program.derived)}
        self.table_vars = {name: f"_t{i}" for i, name in enumerate(self.program.tables)}
        self._nullable: dict[str, bool] = {}
        self._consts = 0

    def const(self, value: Any) -> str:
        name = f"_c{self._consts}"
        self._consts += 1
        self.namespace[name] = value
        return name

    def fact_var(self, path: str) -> str:
        if path not in self.facts:
            self.facts[path] = f"_f{len(self.facts)}"
        return self.facts[path]

    def nullable(self, node: p.Node) -> bool:
        """Whether a node can be unknown: the compiler's answer (`program.can_be_unknown`)."""
        return p.can_be_unknown(self.program, node, self._nullable)

    def expr(self, node: p.Node) -> str:
        tri = self.nullable(node)
        e = self.expr
        if isinstance(node, p.FactRead):
            return self.fact_var(node.path)
        if isinstance(node, p.DerivedRead):
            return self.derived_vars[node.name]
        if isinstance(node, p.Const):
            return self.const(self.codec.value(node.type, node.value))
        if isinstance(node, p.TableLookup):
            table = self.table_vars[node.table]
            default = ("0" if self.codec.is_mask(node.type) else "_EMPTY") if node.type.is_set else "None"
            if self.nullable(node.key):
                return f"_get3({table}, {e(node.key)}, {default})"
            return f"{table}.get({e(node.key)}, {default})"
        if isinstance(node, p.TableHas):
            table = self.table_vars[node.table]
            return f"_in3({e(node.key)}, {table})" if tri else f"({e(node.key)} in {table})"
        if isinstance(node, p.PresenceNode):
            return f"({self.fact_var(node.path)} is {'not ' if node.present else ''}None)"
        if isinstance(node, p.NotNode):
            return f"_not3({e(node.operand)})" if tri else f"(not {e(node.operand)})"
        if isinstance(node, p.AndNode | p.OrNode):
            parts = [e(o) for o in node.operands]
            if tri:
                return f"{'_and3' if isinstance(node, p.AndNode) else '_or3'}({', '.join(parts)})"
            return "(" + (" and " if isinstance(node, p.AndNode) else " or ").join(parts) + ")"
        if isinstance(node, p.CompareNode):
            left, right = e(node.left), e(node.right)
            if tri:
                return f"_cmp3({self.const(_OPS[node.op])}, {left}, {right})"
            return f"({left} {_PY_OP[node.op]} {right})"
        if isinstance(node, p.MemberNode):
            return self.contains(node.collection, node.item, "any" if node.any_of else "one", tri)
        if isinstance(node, p.IncludesNode):
            return self.contains(node.collection, node.item, node.mode, tri)
        raise TypeError(f"cannot compile {node!r}")

    def contains(self, collection: p.Node, item: p.Node, mode: str, tri: bool) -> str:
        """`item in collection` (one), any of `item` in it, or all of `item` in it."""
        coll, it = self.expr(collection), self.expr(item)
        if self.codec.is_mask(collection.type):
            if mode == "one":
                return f"_bit3({it}, {coll})" if tri else f"(({coll} >> {it}) & 1 == 1)"
            if mode == "any":
                return f"_meet3({it}, {coll})" if tri else f"(({it} & {coll}) != 0)"
            return f"_sub3({it}, {coll})" if tri else f"(({it} & ~{coll}) == 0)"
        if mode == "one":
            return f"_in3({it}, {coll})" if tri else f"({it} in {coll})"
        if mode == "any":
            return f"_any3({it}, {coll})" if tri else f"(not {it}.isdisjoint({coll}))"
        return f"_all3({it}, {coll})" if tri else f"{it}.issubset({coll})"


def _rule_lines(emitter: _Emitter, index: int, rule: p.RuleInfo) -> list[str]:
    """Bit 2i: rule i fires; bit 2i+1: its outcome is unknown (an optional fact is missing)."""
    condition = emitter.expr(rule.condition)
    unless = [emitter.expr(u) for u in rule.unless]
    indent = " " * 8
    if not any(emitter.nullable(n) for n in (rule.condition, *rule.unless)):
        test = " and ".join([condition, *[f"not {u}" for u in unless]])
        return [f"{indent}if {test}:", f"{indent}    _k |= {1 << (2 * index)}"]
    return [
        f"{indent}_s = _status3({', '.join([condition, *unless])})",
        f"{indent}if _s is True:",
        f"{indent}    _k |= {1 << (2 * index)}",
        f"{indent}elif _s is None:",
        f"{indent}    _k |= {1 << (2 * index + 1)}",
    ]


def _closure(program: p.Program, names: set[str]) -> set[str]:
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += [r for r in p.reads(program.derived[name].node) if r in program.derived]
    return seen


@dataclass(frozen=True)
class EncodedRules:
    """The generated loop for one program and number scale: encoded columns in, key ids out."""

    run: Callable[[list[list[Any]], tuple[Any, ...], int], tuple[list[int], list[int]]]
    facts: tuple[str, ...]  # the fact paths the loop reads, in column order
    codec: Codec
    source: str
    rules: int

    def key(self, mask: int) -> tuple[int, ...]:
        """The fired-rule key `CompiledRules.decide` gives (index fired, ~index unknown), from a mask."""
        out: list[int] = []
        for i in range(self.rules):
            if mask >> (2 * i) & 1:
                out.append(i)
            elif mask >> (2 * i + 1) & 1:
                out.append(~i)
        return tuple(out)


def compile_encoded(program: p.Program, scale: int) -> EncodedRules:
    """Generate the loop: for each row, derived facts (only those the rules need), then each rule's bit."""
    codec = Codec(program, scale)
    emitter = _Emitter(codec)
    rule_body = [line for i, rule in enumerate(program.rules) for line in _rule_lines(emitter, i, rule)]
    used = {
        name
        for rule in program.rules
        for node in (rule.condition, *rule.unless)
        for name in p.reads(node)
        if name in program.derived
    }
    needed = _closure(program, used)
    derived = [
        f"        {emitter.derived_vars[name]} = {emitter.expr(info.node)}"
        for name, info in program.derived.items()
        if name in needed
    ]
    facts = tuple(emitter.facts)
    variables = [emitter.facts[f] for f in facts]
    head = ["def run(cols, t, n):"]
    if emitter.table_vars:
        head.append(f"    {', '.join(emitter.table_vars.values())}, = t")
    head += ["    ids = {}", "    out = []", "    push = out.append"]
    loop = f"    for {', '.join(variables)}, in _zip(*cols):" if variables else "    for _ in cols[0]:"
    body = [
        loop,
        "        _k = 0",
        *derived,
        *rule_body,
        "        i = ids.get(_k)",
        "        if i is None:",
        "            i = ids[_k] = _len(ids)",
        "        push(i)",
        "    return out, _list(ids)",
    ]
    lines = head + body
    source = "\n".join(lines) + "\n"
    code = compile(source, "<policy columnar>", "exec")
    scope = dict(emitter.namespace)
    scope["__builtins__"] = {}
    exec(code, scope)  # only compiler-made names; values are namespace constants
    return EncodedRules(scope["run"], facts, codec, source, len(program.rules))


def encode_tables(codec: Codec, compiled: CompiledPolicy, when: datetime.date) -> tuple[Any, ...]:
    """The tables in force on a date, keys and values encoded like the columns."""
    program = codec.program
    snapshots = compiled.tables_at(when)
    by_name = dict(zip(compiled.rules.table_names, snapshots, strict=True))
    out = []
    for name, info in program.tables.items():
        entries = by_name[name]
        out.append(
            {codec.value(info.key_type, k): codec.value(info.value_type, v) for k, v in entries.items()}
        )
    return tuple(out)


# ---------------------------------------------------------------------------
# Reading columns


def _pa() -> Any:
    import pyarrow

    return pyarrow


def _pc() -> Any:
    import pyarrow.compute

    return pyarrow.compute


def flatten_columns(batch: pa.RecordBatch) -> dict[str, pa.Array]:
    """Every leaf column by dotted name: struct columns (`end_user` {type, name}) become `end_user.type`.

    A null struct makes its fields null (`StructArray.flatten` applies the parent's validity).
    """
    pa = _pa()
    out: dict[str, Any] = {}

    def visit(name: str, array: Any) -> None:
        if pa.types.is_struct(array.type):
            for index, child in enumerate(array.flatten()):
                visit(f"{name}.{array.type.field(index).name}", child)
        else:
            out[name] = array

    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        visit(name, column)
    return out


def _type_problem(fact: p.FactInfo, arrow_type: Any) -> str | None:
    """Why an Arrow column cannot hold a fact's values, or None when it can."""
    pa = _pa()
    t = arrow_type
    if fact.type.is_set:
        if not (pa.types.is_list(t) or pa.types.is_large_list(t)):
            return f"is a set, so the column must be a list, not {t}"
        t = t.value_type
    if pa.types.is_dictionary(t):
        t = t.value_type
    base = fact.type.base
    stringy = pa.types.is_string(t) or pa.types.is_large_string(t)
    if base == "boolean" and not pa.types.is_boolean(t):
        return f"is a boolean, so the column must be bool, not {t}"
    if base in ("string", "enum") and not stringy:
        return (
            f"is {'an enumeration' if base == 'enum' else 'a string'}, so the column must be string, not {t}"
        )
    if base == "number":
        if pa.types.is_floating(t):
            return (
                f"is a number, and the column is {t}: floating point cannot hold decimals exactly; "
                "store it as decimal128 (or an integer type)"
            )
        if not (pa.types.is_integer(t) or pa.types.is_decimal(t)):
            return f"is a number, so the column must be decimal or integer, not {t}"
    if base == "date" and not (pa.types.is_date(t) or stringy):
        return f"is a date, so the column must be date32 (or YYYY-MM-DD strings), not {t}"
    return None


@dataclass
class Layout:
    """The columns of one Arrow schema matched to a program's facts (checked once per schema)."""

    columns: dict[str, Any]  # fact path -> Arrow type (missing optional facts are absent)
    id_column: str | None
    scale: int


def plan_layout(
    program: p.Program, schema: pa.Schema, id_column: str | None = None, also: frozenset[str] = frozenset()
) -> Layout:
    """Check a schema against the facts: missing required facts, unknown columns, unusable types.

    `also`: columns that are not this program's facts but are expected (the other version's
    facts in an impact run).
    """
    pa = _pa()
    empty = pa.RecordBatch.from_pylist([], schema=schema)
    columns = {name: array.type for name, array in flatten_columns(empty).items()}
    problems: list[str] = []
    if id_column is not None and id_column not in columns:
        problems.append(f"the id column `{id_column}` is not in the file")
    unknown = [
        n
        for n in columns
        if n not in program.facts and n not in also and n != id_column and not n.startswith("$")
    ]
    if unknown:
        problems.append(
            "columns that are not facts of the policy: "
            + ", ".join(f"`{n}`" for n in unknown)
            + " (a case id column is found by its name, `$id`, `id` or `case_id`, or named with --id-column; `policy schema POLICY` lists the facts)"
        )
    found: dict[str, Any] = {}
    scale = program_scale(program)
    for path, fact in program.facts.items():
        if path not in columns:
            if not fact.optional:
                problems.append(f"required fact `{path}` has no column")
            continue
        problem = _type_problem(fact, columns[path])
        if problem:
            problems.append(f"`{path}` {problem}")
            continue
        found[path] = columns[path]
        inner = columns[path].value_type if fact.type.is_set else columns[path]
        if pa.types.is_decimal(inner):
            scale = max(scale, inner.scale)
    if problems:
        raise ColumnarError(
            "the columns do not match the policy's facts: " + "; ".join(problems),
            "fix the file's schema (a struct column or dotted names for records, lists for sets, "
            "decimal128 for numbers, date32 for dates)",
        )
    return Layout(found, id_column, scale)


@dataclass
class Encoded:
    """One batch's facts in encoded form, and the rows that could not be read, with every reason."""

    values: dict[str, list[Any]]
    rejects: dict[int, list[tuple[str, str]]] = field(default_factory=dict)

    def reject(self, row: int, path: str, reason: str) -> None:
        self.rejects.setdefault(row, []).append((path, reason))


def _dictionary(array: Any) -> tuple[list[int | None], list[Any]]:
    """Per-row indices into a list of distinct values (dictionary encoding done by Arrow, in C++)."""
    pa = _pa()
    if not pa.types.is_dictionary(array.type):
        array = array.dictionary_encode()
    return array.indices.to_pylist(), array.dictionary.to_pylist()


def _null_rows(array: Any) -> list[int]:
    if array.null_count == 0:
        return []
    rows: list[int] = _pc().indices_nonzero(array.is_null()).to_pylist()
    return rows


def _allowed(enum: str, program: p.Program) -> str:
    values = program.enums[enum]
    shown = ", ".join(values[:8]) + (", …" if len(values) > 8 else "")
    return f"{enum}: {shown}"


class Reader:
    """Reads one batch's columns into encoded values for the loop (and rejects rows it cannot)."""

    def __init__(self, program: p.Program, layout: Layout, facts: tuple[str, ...]):
        self.program = program
        self.layout = layout
        self.codec = Codec(program, layout.scale)
        self.facts = facts  # what the loop reads; every fact is still checked
        enums = {f.type.enum: program.enums[f.type.enum] for f in program.facts.values() if f.type.enum}
        #: Equal signatures encode a batch identically, so an impact run encodes it once for both versions.
        self.signature = (
            tuple((f.path, str(f.type), f.optional) for f in program.facts.values()),
            tuple(sorted(enums.items())),
            tuple(sorted((k, str(v)) for k, v in layout.columns.items())),
            layout.scale,
        )

    def encode(self, batch: pa.RecordBatch) -> Encoded:
        columns = flatten_columns(batch)
        n = batch.num_rows
        out = Encoded({})
        for path, fact in self.program.facts.items():
            array = columns.get(path)
            values = [None] * n if array is None else self._column(fact, array, out)
            if fact.default is not None:  # a fact left out takes its declared default, as in the compiler
                default = self.codec.value(fact.type, fact.default)
                values = [default if v is None else v for v in values]
            out.values[path] = values
        for row in out.rejects:  # a rejected row still runs through the loop: give it harmless values
            for path, fact in self.program.facts.items():
                out.values[path][row] = None if fact.optional else self._filler(fact)
        return out

    def _filler(self, fact: p.FactInfo) -> Any:
        t = fact.type
        if t.is_set:
            return 0 if self.codec.is_mask(t) else frozenset()
        return {"boolean": False, "string": "", "number": 0, "date": 0, "enum": 0}[t.base]

    def _column(self, fact: p.FactInfo, array: Any, out: Encoded) -> list[Any]:
        if fact.type.is_set:
            values = self._set_column(fact, array, out)
        elif fact.type.base == "enum":
            values = self._enum_column(fact, array, out)
        elif fact.type.base == "number":
            values = self._number_column(fact, array, out)
        elif fact.type.base == "date":
            values = self._date_column(fact, array, out)
        elif fact.type.base == "string":
            indices, distinct = _dictionary(array)
            values = [None if i is None else distinct[i] for i in indices]
        else:
            values = array.to_pylist()
        if not fact.optional:
            for row in _null_rows(array):
                out.reject(row, fact.path, "is required but missing")
        return values

    def _enum_column(self, fact: p.FactInfo, array: Any, out: Encoded) -> list[Any]:
        codes = self.codec.codes(fact.type.enum or "")
        indices, distinct = _dictionary(array)
        encoded = [codes.get(v) for v in distinct]
        values = [None if i is None else encoded[i] for i in indices]
        bad = {i for i, code in enumerate(encoded) if code is None}
        if bad:
            for row, i in enumerate(indices):
                if i in bad:
                    out.reject(
                        row,
                        fact.path,
                        f"{distinct[i]!r} is not one of the allowed values ({_allowed(fact.type.enum or '', self.program)})",
                    )
        return values

    def _number_column(self, fact: p.FactInfo, array: Any, out: Encoded) -> list[Any]:
        """Scaled integers read from the integer (or decimal's unscaled integer) representation."""
        pa, pc = _pa(), _pc()
        scale = self.layout.scale
        if pa.types.is_decimal(array.type):
            places = array.type.scale
            try:  # same buffers, scale 0: the decimal's unscaled integer, then exactly to int64
                width = pa.decimal128(38, 0) if array.type.bit_width == 128 else pa.decimal256(76, 0)
                unscaled = pa.Array.from_buffers(
                    width, len(array), array.buffers(), array.null_count, array.offset
                )
                ints = pc.cast(unscaled, pa.int64()).to_pylist()
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # beyond 64 bits: exact, slower
                ints = [None if v is None else scaled(v, places) for v in array.to_pylist()]
        else:
            places = 0
            ints = array.to_pylist()
        factor = 10 ** (scale - places)
        if factor == 1:
            return list(ints)
        return [None if v is None else v * factor for v in ints]

    def _date_column(self, fact: p.FactInfo, array: Any, out: Encoded) -> list[Any]:
        pa = _pa()
        if pa.types.is_date64(array.type):
            array = array.cast(pa.date32())
        if pa.types.is_date32(array.type):
            days: list[Any] = array.view(pa.int32()).to_pylist()
            return days
        values: list[Any] = []
        for row, text in enumerate(array.to_pylist()):
            values.append(self._parse_date(text, row, fact, out))
        return values

    @staticmethod
    def _parse_date(text: Any, row: int, fact: p.FactInfo, out: Encoded) -> int | None:
        """A `YYYY-MM-DD` string (what the JSON reader takes) as a day number; anything else is a reject."""
        if text is None:
            return None
        try:
            if len(text) != 10 or text[4] != "-" or text[7] != "-":
                raise ValueError
            return day_number(datetime.date.fromisoformat(text))
        except ValueError:
            out.reject(row, fact.path, f"{text!r} is not a date (write YYYY-MM-DD)")
            return None

    def _set_column(self, fact: p.FactInfo, array: Any, out: Encoded) -> list[Any]:
        """One dictionary key per distinct list (its length and its values joined), encoded once each."""
        pa, pc = _pa(), _pc()
        element = fact.type.element
        if pa.types.is_dictionary(array.type.value_type):  # list<dictionary<string>>: decode the values
            kind = pa.large_list if pa.types.is_large_list(array.type) else pa.list_
            array = array.cast(kind(array.type.value_type.value_type))
        inner = array.type.value_type
        stringy = pa.types.is_string(inner) or pa.types.is_large_string(inner)
        if not stringy:  # sets of numbers or dates: rare, read row by row (still exact)
            return [self._set_slow(fact, v, row, out) for row, v in enumerate(array.to_pylist())]
        joined = pc.binary_join(array, SEPARATOR)
        lengths = pc.cast(pc.list_value_length(array), pa.string())
        keys = pc.binary_join_element_wise(lengths, joined, ":")
        indices, distinct = _dictionary(keys)
        encoded: list[Any] = []
        reasons: list[str | None] = []
        for key in distinct:
            count, _, body = key.partition(":")
            items = body.split(SEPARATOR) if int(count) else []
            if len(items) != int(count):  # a value contained the separator: decode those rows exactly
                encoded.append(None)
                reasons.append("slow")
                continue
            value, reason = self._encode_set(fact, items)
            encoded.append(value)
            reasons.append(reason)
        values: list[Any] = [None if i is None else encoded[i] for i in indices]
        if any(r is not None for r in reasons):
            for row, i in enumerate(indices):
                if i is not None and reasons[i] is not None:
                    if reasons[i] == "slow":
                        values[row] = self._set_slow(fact, array[row].as_py(), row, out)
                    else:
                        out.reject(row, fact.path, reasons[i] or "")
        nulls = set(_null_rows(joined)) - set(_null_rows(array))
        for row in sorted(nulls):  # the list is there but holds a null value
            out.reject(row, fact.path, "holds a null value; a set holds values only")
        del element
        return values

    def _encode_set(self, fact: p.FactInfo, items: list[Any]) -> tuple[Any, str | None]:
        element = fact.type.element
        if element.base == "enum":
            codes = self.codec.codes(element.enum or "")
            mask = 0
            for item in items:
                code = codes.get(item)
                if code is None:
                    return (
                        None,
                        f"{item!r} is not one of the allowed values ({_allowed(element.enum or '', self.program)})",
                    )
                mask |= 1 << code
            return mask, None
        return frozenset(items), None

    def _set_slow(self, fact: p.FactInfo, value: list[Any] | None, row: int, out: Encoded) -> Any:
        if value is None:
            return None
        if any(v is None for v in value):
            out.reject(row, fact.path, "holds a null value; a set holds values only")
            return None
        element = fact.type.element
        if element.base in ("string", "enum"):
            encoded, reason = self._encode_set(fact, value)
            if reason:
                out.reject(row, fact.path, reason)
            return encoded
        items = []
        for v in value:
            if element.base == "date":
                items.append(
                    day_number(v) if isinstance(v, datetime.date) else self._parse_date(v, row, fact, out)
                )
            else:
                items.append(scaled(Decimal(v), self.layout.scale))
        return frozenset(items)


# ---------------------------------------------------------------------------
# A compiled policy over one column layout


class Columnar:
    """A policy version ready to decide record batches of one schema: layout, reader, generated loop."""

    def __init__(
        self,
        compiled: CompiledPolicy,
        schema: pa.Schema,
        id_column: str | None = None,
        also: frozenset[str] = frozenset(),
    ):
        self.compiled = compiled
        self.layout = plan_layout(compiled.program, schema, id_column, also)
        self.reader: Reader | RowReader
        if computes(compiled.program):  # arithmetic: no encoded form yet, decide row by row (same rules)
            self.rules = None
            self.reader = RowReader(compiled)
        else:
            self.rules = compile_encoded(compiled.program, self.layout.scale)
            self.reader = Reader(compiled.program, self.layout, self.rules.facts)
        self._tables: dict[datetime.date, tuple[Any, ...]] = {}
        self._keys: dict[int, tuple[int, ...]] = {}

    def tables(self, when: datetime.date) -> tuple[Any, ...]:
        assert self.rules is not None
        cached = self._tables.get(when)
        if cached is None:
            cached = self._tables[when] = encode_tables(self.rules.codec, self.compiled, when)
        return cached

    def decide(
        self, batch: pa.RecordBatch, when: datetime.date
    ) -> tuple[list[int], list[tuple[int, ...]], Encoded]:
        """Per row, an index into the returned list of distinct fired-rule keys; and the rejects."""
        encoded = self.reader.encode(batch)
        ids, keys = self.run(encoded, when, batch.num_rows)
        return ids, keys, encoded

    def run(
        self, encoded: Encoded, when: datetime.date, rows: int
    ) -> tuple[list[int], list[tuple[int, ...]]]:
        """The generated loop over already encoded columns (an impact run encodes once for both versions)."""
        if self.rules is None:
            return self._run_rows(encoded, when)
        columns = [encoded.values[path] for path in self.rules.facts] or [[None] * rows]
        ids, masks = self.rules.run(columns, self.tables(when), rows)
        return ids, [self.key(m) for m in masks]

    def _run_rows(self, encoded: Encoded, when: datetime.date) -> tuple[list[int], list[tuple[int, ...]]]:
        """The compiled rules on each row's validated facts (policies with arithmetic)."""
        index: dict[tuple[int, ...], int] = {}
        ids: list[int] = []
        for facts in encoded.values[ROWS]:
            key: tuple[int, ...] = ()
            if facts is not None:
                fired = self.compiled.fired(facts, when)
                key = tuple(sorted(fired, key=lambda i: i if i >= 0 else ~i))
            ids.append(index.setdefault(key, len(index)))
        return ids, list(index)

    def key(self, mask: int) -> tuple[int, ...]:
        assert self.rules is not None
        cached = self._keys.get(mask)
        if cached is None:
            cached = self._keys[mask] = self.rules.key(mask)
        return cached


ROWS = "(rows)"


def computes(program: p.Program) -> bool:
    """Whether any rule or derived fact computes a number (arithmetic, functions, rounding)."""
    computed = getattr(p, "COMPUTED_NODES", ())

    def visit(node: p.Node) -> bool:
        return isinstance(node, computed) or any(visit(c) for c in p.sub_nodes(node))

    nodes = [n for r in program.rules for n in (r.condition, *r.unless)] + [
        d.node for d in program.derived.values()
    ]
    return any(visit(n) for n in nodes)


class RowReader:
    """The slow, exact path: each row decoded to a case and validated as `evaluate` validates it."""

    def __init__(self, compiled: CompiledPolicy):
        self.compiled = compiled
        program = compiled.program
        self.signature = ("rows", tuple((f.path, str(f.type), f.optional) for f in program.facts.values()))

    def encode(self, batch: pa.RecordBatch) -> Encoded:
        from engine.errors import CaseError

        out = Encoded({ROWS: []})
        for row, case in enumerate(cases_of_rows(batch, list(range(batch.num_rows)), self.compiled.program)):
            try:
                out.values[ROWS].append(self.compiled.validate(case))
            except CaseError as exc:
                out.values[ROWS].append(None)
                for path, reason in exc.problems:
                    out.reject(row, path, reason)
        return out


def case_of_row(batch: pa.RecordBatch, row: int, program: p.Program) -> dict[str, Any]:
    """One row as the nested case `evaluate` takes (decoded only when a trace is wanted)."""
    return cases_of_rows(batch, [row], program)[0]


def cases_of_rows(batch: pa.RecordBatch, rows: list[int], program: p.Program) -> list[dict[str, Any]]:
    """Some rows as nested cases, decoded together (one `take` and one conversion per column)."""
    pa = _pa()
    taken = batch.take(pa.array(rows, pa.int64()))
    columns = {
        name: array.to_pylist() for name, array in flatten_columns(taken).items() if name in program.facts
    }
    cases: list[dict[str, Any]] = []
    for index in range(len(rows)):
        case: dict[str, Any] = {}
        for path, values in columns.items():
            value = _jsonish(values[index])
            if value is None and program.facts[path].optional:
                continue
            target = case
            parts = path.split(".")
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = value
        cases.append(case)
    return cases


def _jsonish(value: Any) -> Any:
    """Arrow's Python values in the JSON shapes a case uses (dates as text, decimals kept exact)."""
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, list):
        return [_jsonish(v) for v in value]
    return value


def row_input(batch: pa.RecordBatch, row: int) -> str:
    """The row as JSON text, for the rejects file (decimals and dates as strings)."""
    record = batch.slice(row, 1).to_pylist()[0]
    return json.dumps(record, ensure_ascii=False, default=str, separators=(",", ":"))


# ---------------------------------------------------------------------------
# The policy as it travels to workers


@dataclass(frozen=True)
class PolicyRef:
    """A policy version as data: the text of every file it was built from and its content hash.

    Picklable and small (a few hundred KB with the reference tables), so a Dask or Spark task
    carries it; `load()` writes the files to a private folder once per worker process,
    compiles there, checks the hash, and keeps the compiled policy for the next batch.
    """

    entry: str  # the version file, relative to the sources' common folder
    sources: tuple[tuple[str, str], ...]
    content_hash: str
    at: datetime.date | None = None
    id_column: str | None = None

    @classmethod
    def of(
        cls, policy: Policy, *, at: datetime.date | None = None, id_column: str | None = None
    ) -> PolicyRef:
        sources = policy.compiled.program.sources
        paths = [os.path.abspath(name) for name in sources]
        entry = os.path.abspath(policy.path)
        root = os.path.commonpath([*paths, os.path.dirname(entry)])
        files = tuple(
            (os.path.relpath(path, root), text) for path, text in zip(paths, sources.values(), strict=True)
        )
        return cls(os.path.relpath(entry, root), files, policy.content_hash, at or policy.at, id_column)

    def load(self) -> Policy:
        """The compiled policy, once per process (cached by content hash)."""
        with _ref_lock:
            cached = _ref_cache.get(self.content_hash)
        if cached is not None:
            return cached
        from engine import api

        with tempfile.TemporaryDirectory(prefix="policy-ref-") as scratch:  # everything is read while loading
            folder = Path(scratch)
            for name, text in self.sources:
                target = folder / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
            policy = api.load(folder / self.entry)
        if policy.content_hash != self.content_hash:
            raise ValueError(
                f"policy {self.entry} compiled to content hash {policy.content_hash[:12]}, "
                f"expected {self.content_hash[:12]}: the sources were changed in transit"
            )
        with _ref_lock:
            _ref_cache.setdefault(self.content_hash, policy)
        return policy

    @property
    def digest(self) -> str:
        """The hash of the reference itself (policy hash, date and id column): names a worker's compiled state."""
        text = f"{self.content_hash}|{self.at}|{self.id_column}"
        return hashlib.sha256(text.encode()).hexdigest()


_ref_cache: dict[str, Policy] = {}
_columnar_cache: dict[tuple[str, str], Columnar] = {}
_ref_lock = threading.Lock()


def columnar_for(ref: PolicyRef, schema: pa.Schema) -> Columnar:
    """The policy's columnar plan for a schema, built once per worker and schema."""
    key = (ref.digest, schema.to_string())
    with _ref_lock:
        cached = _columnar_cache.get(key)
    if cached is None:
        cached = Columnar(ref.load().compiled, schema, ref.id_column)
        with _ref_lock:
            _columnar_cache.setdefault(key, cached)
    return cached


# ---------------------------------------------------------------------------
# The public batch function


def output_schema(ref: PolicyRef, id_type: Any = None) -> pa.Schema:
    """The schema of `decide_batches`' output for a policy (declare it to Spark's `mapInArrow`)."""
    pa = _pa()
    policy = ref.load()
    fields = []
    if ref.id_column is not None:
        fields.append(pa.field(ref.id_column, id_type or pa.string()))
    text = pa.dictionary(pa.int32(), pa.string())
    for name in policy.compiled.program.decisions:
        fields.append(pa.field(name, text))
    fields += [
        pa.field("obligations", pa.list_(pa.string())),
        pa.field("recommendations", pa.list_(pa.string())),
        pa.field("fired", pa.list_(pa.string())),
        pa.field("unknown", pa.list_(pa.string())),
        pa.field("rule_key", text),
        pa.field("error", pa.string()),
    ]
    return pa.schema(fields)


def key_text(key: tuple[int, ...]) -> str:
    """A fired-rule key as text (`0,2,~3`): the engine-internal identity of a decision's reasons."""
    return ",".join(str(i) if i >= 0 else f"~{~i}" for i in key)


def parse_key(text: str) -> tuple[int, ...]:
    return tuple(~int(part[1:]) if part.startswith("~") else int(part) for part in text.split(",") if part)


def decide_batches(policy_ref: PolicyRef, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Decide every row of every record batch; one output batch per input batch, rows in order.

    The contract of Spark's `DataFrame.mapInArrow` (and of `engine.dask`): an iterator of
    `pyarrow.RecordBatch` in, an iterator out. Each output row holds the decision values
    (one column per decision), obligations, recommendations, the rules that fired and were
    unknown, `rule_key` (the fired-rule key; equal keys mean equal decisions for the same
    reasons) and `error`: null when the row was decided, else a JSON list of
    `{"path", "reason"}` problems (a value outside its enumeration, a missing required fact).
    """
    policy = policy_ref.load()
    compiled = policy.compiled
    when = policy_ref.at or compiled.info.effective or datetime.date.today()
    for batch in batches:
        yield _decide_one(policy_ref, compiled, batch, when)


def _decide_one(
    ref: PolicyRef, compiled: CompiledPolicy, batch: pa.RecordBatch, when: datetime.date
) -> pa.RecordBatch:
    pa = _pa()
    columnar = columnar_for(ref, batch.schema)
    ids, keys, encoded = columnar.decide(batch, when)
    resolutions = [compiled.resolve(k) for k in keys]
    # Rejected rows have a null index: null in every output column but `error`.
    row_ids: list[int | None] = list(ids)
    for row in encoded.rejects:
        row_ids[row] = None
    indices = pa.array(row_ids, pa.int32())
    arrays: list[Any] = []
    names: list[str] = []
    if ref.id_column is not None:
        arrays.append(flatten_columns(batch)[ref.id_column])
        names.append(ref.id_column)

    def dictionary(values: list[str | None]) -> Any:
        return pa.DictionaryArray.from_arrays(indices, pa.array(values, pa.string()))

    def lists(values: list[list[str]]) -> Any:
        return pa.array(values, pa.list_(pa.string())).take(indices)

    for name in compiled.program.decisions:
        values = [
            None if v is None else format_value(to_json_value(v))
            for v in (r.decisions[name].value for r in resolutions)
        ]
        arrays.append(dictionary(values))
        names.append(name)
    arrays.append(lists([[o.name for o in r.obligations] for r in resolutions]))
    arrays.append(lists([[o.name for o in r.recommendations] for r in resolutions]))
    arrays.append(lists([list(r.fired_ids) for r in resolutions]))
    arrays.append(lists([[compiled.program.rules[i].id for i in r.unknown] for r in resolutions]))
    arrays.append(dictionary([key_text(k) for k in keys]))
    errors: list[str | None] = [None] * batch.num_rows
    for row, problems in encoded.rejects.items():
        errors[row] = json.dumps([{"path": a, "reason": b} for a, b in problems], ensure_ascii=False)
    arrays.append(pa.array(errors, pa.string()))
    names += ["obligations", "recommendations", "fired", "unknown", "rule_key", "error"]
    return pa.RecordBatch.from_arrays(arrays, names=names)
