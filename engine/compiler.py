"""Compile a checked program into Python functions, once per policy version.

Two functions are generated from the same typed conditions: `decide` (which rules fired,
nothing else: the fast path) and `explain` (every condition's truth value, for the trace).
Only identifiers the compiler made appear in the generated source; every value from a
policy or a case reaches it either as a namespace constant or through `repr` of a fact
path string, so policy text can never become code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine import kleene, numbers
from engine import program as p
from engine.cases import records

EMPTY: frozenset[Any] = frozenset()

FactMap = dict[str, Any]
Tables = tuple[dict[Any, Any], ...]
DecideFn = Callable[[FactMap, Tables], list[int]]
ExplainFn = Callable[[FactMap, Tables], tuple[list[Any], list[Any], list[int]]]
ValuesFn = Callable[[Any, Tables, frozenset[int]], dict[tuple[int, int], Any]]


_RUNTIME: dict[str, Any] = {
    "_add": numbers.add,
    "_sub": numbers.subtract,
    "_mul": numbers.multiply,
    "_div": numbers.divide,
    "_min": numbers.smallest,
    "_max": numbers.largest,
    "_round": numbers.round_to,
    **kleene.NAMESPACE,
    "_EMPTY": EMPTY,
    "_NOREC": {},
    "_frozenset": frozenset,
}

_ARITH = {"+": "_add", "-": "_sub", "*": "_mul", "/": "_div"}
_PY_OP = {"=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_OP_FUNC = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


@dataclass(frozen=True)
class ConditionSlot:
    """One traced condition: its node and its index in the explain function's value list."""

    index: int
    node: p.Node
    children: tuple[int, ...]
    computed: tuple[int, ...] = ()  # indexes (in the explain list) of the arithmetic it computed


@dataclass(frozen=True)
class CompiledRules:
    """What the compiler produces for one program."""

    decide: DecideFn
    decide_case: Callable[[Any, Tables], list[int]]  # the same, reading a trusted nested case
    explain: ExplainFn
    table_names: tuple[str, ...]
    slots: tuple[ConditionSlot, ...]
    rule_slots: tuple[tuple[int, tuple[int, ...]], ...]  # per rule: condition slot, unless slots
    computed: tuple[p.Node, ...]  # arithmetic in tests; its values follow the slots' in explain's list
    values: ValuesFn | None  # computed decision values of the effective rules (None: no such outcome)
    values_case: ValuesFn | None  # the same, reading a trusted nested case
    derived_names: tuple[str, ...]
    source: str  # the generated Python, for debugging (`policy compile --show`)


class _Emitter:
    """Turns typed conditions into Python expressions over locals the compiler names."""

    def __init__(self, program: p.Program, prefix: str = "", nested: bool = False):
        self.program = program
        self.prefix = prefix
        self.nested = nested
        self.case_records = records(program) if nested else None  # how a trusted nested case nests
        self.namespace: dict[str, Any] = dict(_RUNTIME)
        self.facts: dict[str, str] = {}
        self.derived_vars = {name: f"_d{i}" for i, name in enumerate(program.derived)}
        self.table_vars = {name: f"_t{i}" for i, name in enumerate(program.tables)}
        self._nullable: dict[str, bool] = {}
        self._consts = 0

    def const(self, value: Any) -> str:
        name = f"_{self.prefix}c{self._consts}"
        self._consts += 1
        self.namespace[name] = value
        return name

    def fact_var(self, path: str) -> str:
        if path not in self.facts:
            self.facts[path] = f"_f{len(self.facts)}"
        return self.facts[path]

    def nullable(self, node: p.Node) -> bool:
        """Whether a node can be unknown (`program.can_be_unknown`, memoised per derived fact)."""
        return p.can_be_unknown(self.program, node, self._nullable)

    def expr(self, node: p.Node, sub: Callable[[p.Node], str] | None = None) -> str:
        """Python source for a node; `sub` renders children (the explain path passes slot locals)."""
        render = sub or self.expr
        tri = self.nullable(node)
        if isinstance(node, p.FactRead):
            return self.fact_var(node.path)
        if isinstance(node, p.DerivedRead):
            return self.derived_vars[node.name]
        if isinstance(node, p.Const):
            return self.const(node.value)
        if isinstance(node, p.TableLookup):
            default = "_EMPTY" if node.type.is_set else "None"
            if self.nullable(node.key):
                return f"_get3({self.table_vars[node.table]}, {render(node.key)}, {default})"
            return f"{self.table_vars[node.table]}.get({render(node.key)}, {default})"
        if isinstance(node, p.TableHas):
            if tri:
                return f"_in3({render(node.key)}, {self.table_vars[node.table]})"
            return f"({render(node.key)} in {self.table_vars[node.table]})"
        if isinstance(node, p.PresenceNode):
            return f"({self.fact_var(node.path)} is {'not ' if node.present else ''}None)"
        if isinstance(node, p.NotNode):
            return f"_not3({render(node.operand)})" if tri else f"(not {render(node.operand)})"
        if isinstance(node, p.AndNode | p.OrNode):
            parts = [render(o) for o in node.operands]
            if tri:
                return f"{'_and3' if isinstance(node, p.AndNode) else '_or3'}({', '.join(parts)})"
            return "(" + (" and " if isinstance(node, p.AndNode) else " or ").join(parts) + ")"
        if isinstance(node, p.CompareNode):
            left, right = render(node.left), render(node.right)
            if tri:
                return f"_cmp3({self.const(_OP_FUNC[node.op])}, {left}, {right})"
            return f"({left} {_PY_OP[node.op]} {right})"
        if isinstance(node, p.MemberNode):
            item, coll = render(node.item), render(node.collection)
            if node.any_of:
                return (
                    f"_any3({item}, {coll})"
                    if tri
                    else f"(not {self.disjoint(node.collection, node.item, render)})"
                )
            return f"_in3({item}, {coll})" if tri else f"({item} in {coll})"
        if isinstance(node, p.IncludesNode):
            coll, item = render(node.collection), render(node.item)
            if node.mode == "one":
                return f"_in3({item}, {coll})" if tri else f"({item} in {coll})"
            if node.mode == "any":
                return (
                    f"_any3({item}, {coll})"
                    if tri
                    else f"(not {self.disjoint(node.item, node.collection, render)})"
                )
            subset = item if self.frozen(node.item) else f"_frozenset({item})"
            return f"_all3({item}, {coll})" if tri else f"{subset}.issubset({coll})"
        if isinstance(node, p.ArithNode):
            return f"{_ARITH[node.op]}({render(node.left)}, {render(node.right)})"
        if isinstance(node, p.CallNode):
            return f"_{node.function}({', '.join(render(a) for a in node.args)})"
        if isinstance(node, p.RoundNode):
            return f"_round({render(node.operand)}, {int(node.scale)}, {self.const(node.rounding)})"
        raise TypeError(f"cannot compile {node!r}")

    def prologue(self) -> list[str]:
        """Read each fact once (derived facts follow, in dependency order)."""
        lines = []
        for path, var in self.facts.items():
            lines.append(f"    {var} = {self.read(path)}")
            default = self.program.facts[path].default
            if default is not None:  # a fact left out of the case takes its declared default
                lines.append(f"    if {var} is None: {var} = {self.const(default)}")
        return lines

    def read(self, path: str) -> str:
        """Source that reads one fact: from flat facts, or from a trusted nested case."""
        if not self.nested:
            return f"f[{path!r}]"
        parts = path.split(".")
        source = "f"
        record = self.case_records
        assert record is not None
        for part in parts[:-1]:
            record = record.at(part)
            source = f"{source}[{part!r}]" if record.required() else f"({source}.get({part!r}) or _NOREC)"
        optional = self.program.facts[path].optional
        return f"{source}.get({parts[-1]!r})" if optional else f"{source}[{parts[-1]!r}]"

    def frozen(self, node: p.Node) -> bool:
        """Whether a set-valued node is a frozenset at run time (constants, table values), not a
        case's list: set operations are called on that side so trusted cases need no conversion."""
        if isinstance(node, p.Const | p.TableLookup):
            return True
        if isinstance(node, p.DerivedRead):
            return self.frozen(self.program.derived[node.name].node)
        return False

    def disjoint(self, left: p.Node, right: p.Node, render: Callable[[p.Node], str]) -> str:
        """`left.isdisjoint(right)` with a frozenset on the calling side."""
        a, b = (left, right) if self.frozen(left) or not self.frozen(right) else (right, left)
        call = render(a) if self.frozen(a) else f"_frozenset({render(a)})"
        return f"{call}.isdisjoint({render(b)})"

    def derived_lines(self, used: set[str] | None = None) -> list[str]:
        """Compute derived facts in dependency order: all of them, or those `used` needs (transitively)."""
        needed = set(self.program.derived) if used is None else _closure(self.program, used)
        return [
            f"    {self.derived_vars[name]} = {self.expr(info.node)}"
            for name, info in self.program.derived.items()
            if name in needed
        ]

    def tables_line(self) -> str:
        if not self.table_vars:
            return ""
        names = ", ".join(self.table_vars.values())
        return f"    {names}, = t"


def _rule_lines(emitter: _Emitter, index: int, rule: p.RuleInfo) -> list[str]:
    """Code that records a rule: `index` when it fires, `~index` when its outcome is unknown.

    A rule fires when its condition is true and every unless clause false; it is unknown when
    neither that nor the opposite can be told because an optional fact is missing. Rules that
    cannot be unknown get plain Python booleans, the fast path.
    """
    condition = emitter.expr(rule.condition)
    unless = [emitter.expr(u) for u in rule.unless]
    if not any(emitter.nullable(n) for n in (rule.condition, *rule.unless)):
        test = " and ".join([condition, *[f"not {u}" for u in unless]])
        return [f"    if {test}:", f"        fired.append({index})"]
    status = f"_status3({', '.join([condition, *unless])})"
    return [
        f"    _s = {status}",
        "    if _s is True:",
        f"        fired.append({index})",
        "    elif _s is None:",
        f"        fired.append({~index})",
    ]


def _closure(program: p.Program, names: set[str]) -> set[str]:
    """The derived facts that computing `names` needs, themselves included."""
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += [r for r in p.reads(program.derived[name].node) if r in program.derived]
    return seen


def _used_derived(rules: list[p.RuleInfo]) -> set[str]:
    return {name for r in rules for n in (r.condition, *r.unless) for name in _derived_reads(n)}


def _derived_reads(node: p.Node) -> list[str]:
    found = [node.name] if isinstance(node, p.DerivedRead) else []
    for child in p.sub_nodes(node):
        found += _derived_reads(child)
    return found


def _group_source(
    emitter: _Emitter, name: str, indexes: list[int], tail: list[str], entry: bool = False
) -> list[str]:
    """A function that records which of the given rules fire; reads only what those rules read."""
    rules = [emitter.program.rules[i] for i in indexes]
    body = [line for i, rule in zip(indexes, rules, strict=True) for line in _rule_lines(emitter, i, rule)]
    derived = emitter.derived_lines(_used_derived(rules))
    signature = f"def {name}(f, t):" if entry else f"def {name}(f, t, fired):"
    head = [signature, emitter.tables_line(), *emitter.prologue(), *derived]
    if entry:
        head.append("    fired = []")
    return [line for line in head if line] + body + tail


# ---------------------------------------------------------------------------
# Rule index: with many rules, most cases touch a handful. Rules whose condition starts with
# a test of one scalar fact against constants (`item = "K1"`, `eccn in <"0A977", "0A978">`)
# are grouped by those constants, and a case runs only the group of its own value.

INDEX_MIN_RULES = 16


def _guard(rule: p.RuleInfo, program: p.Program) -> tuple[str, frozenset[Any]] | None:
    """The fact and values a rule's condition requires, read off its first suitable conjunct."""
    parts = rule.condition.operands if isinstance(rule.condition, p.AndNode) else (rule.condition,)
    for part in parts:
        if isinstance(part, p.CompareNode) and part.op == "=":
            fact, const = part.left, part.right
            if isinstance(fact, p.Const):
                fact, const = const, fact
            if isinstance(fact, p.FactRead) and _indexable(fact, program) and isinstance(const, p.Const):
                return fact.path, frozenset([const.value])
        if (
            isinstance(part, p.MemberNode)
            and not part.any_of
            and isinstance(part.item, p.FactRead)
            and _indexable(part.item, program)
            and isinstance(part.collection, p.Const)
            and isinstance(part.collection.value, frozenset)
        ):
            return part.item.path, part.collection.value
    return None


def _indexable(node: p.Node, program: p.Program) -> bool:
    """A required scalar fact: the index reads it straight from the case, with no default to apply."""
    return isinstance(node, p.FactRead) and not program.facts[node.path].optional and not node.type.is_set


def plan_index(program: p.Program) -> tuple[str, dict[Any, list[int]], list[int]] | None:
    """Choose the fact that guards the most rules; None when indexing would not pay."""
    if len(program.rules) < INDEX_MIN_RULES:
        return None
    guards = [_guard(rule, program) for rule in program.rules]
    counts: dict[str, int] = {}
    for guard in guards:
        if guard is not None:
            counts[guard[0]] = counts.get(guard[0], 0) + 1
    if not counts:
        return None
    fact = max(sorted(counts), key=lambda k: counts[k])
    if counts[fact] < len(program.rules) // 2:
        return None
    buckets: dict[Any, list[int]] = {}
    always: list[int] = []
    for index, guard in enumerate(guards):
        if guard is None or guard[0] != fact:
            always.append(index)
            continue
        for value in sorted(guard[1], key=str):
            buckets.setdefault(value, []).append(index)
    return fact, buckets, always


def _decide_source(emitter: _Emitter, name: str = "decide") -> tuple[list[str], dict[str, Any]]:
    """The fast path: straight-line for small policies, dispatch by the index for large ones."""
    program = emitter.program
    plan = plan_index(program)
    if plan is None:
        lines = _group_source(
            emitter, name, list(range(len(program.rules))), ["    return fired"], entry=True
        )
        return lines, emitter.namespace
    fact, buckets, always = plan
    tail = [
        f"    _g = _BUCKETS.get({emitter.read(fact)})",
        "    if _g is not None:",
        "        _g(f, t, fired)",
        "        fired.sort()",
        "    return fired",
    ]
    lines = _group_source(emitter, name, always, tail, entry=True)
    namespace = dict(emitter.namespace)
    group_names: dict[Any, str] = {}
    for number, (value, indexes) in enumerate(buckets.items()):
        group = _Emitter(program, prefix=f"g{number}", nested=emitter.nested)
        group_name = f"_group{number}"
        lines += ["", *_group_source(group, group_name, indexes, [])]
        namespace.update(group.namespace)
        group_names[value] = group_name
    namespace["_BUCKET_NAMES"] = group_names
    return lines, namespace


def _explain_source(
    emitter: _Emitter,
) -> tuple[list[str], list[ConditionSlot], list[tuple[int, tuple[int, ...]]], list[p.Node]]:
    """Every condition node gets a slot; all are evaluated (no short-circuit) so the trace is complete."""
    slots: list[ConditionSlot] = []
    lines: list[str] = []
    slot_of: dict[int, int] = {}
    computed: list[p.Node] = []  # arithmetic inside tests, kept in `w` for the trace
    computed_of: dict[int, int] = {}

    def via_computed(node: p.Node) -> str:
        if id(node) in computed_of:
            return f"w[{computed_of[id(node)]}]"
        return emitter.expr(node, via_computed)

    def compute(node: p.Node, found: list[int]) -> None:
        """Evaluate a test's arithmetic bottom-up into `w`, once, so the trace can show it."""
        for child in p.sub_nodes(node):
            compute(child, found)
        if isinstance(node, p.COMPUTED_NODES):
            if id(node) not in computed_of:
                lines.append(f"    w[{len(computed)}] = {emitter.expr(node, via_computed)}")
                computed_of[id(node)] = len(computed)
                computed.append(node)
            found.append(computed_of[id(node)])

    def condition(node: p.Node) -> int:
        kids = tuple(condition(c) for c in _condition_children(node))
        found: list[int] = []
        if kids:
            source = emitter.expr(node, lambda child: f"v[{slot_of[id(child)]}]")
        else:
            compute(node, found)
            source = emitter.expr(node, via_computed)
        index = len(slots)
        slots.append(ConditionSlot(index, node, kids, tuple(found)))
        slot_of[id(node)] = index
        lines.append(f"    v[{index}] = {source}")
        return index

    rule_slots = [
        (condition(rule.condition), tuple(condition(u) for u in rule.unless))
        for rule in emitter.program.rules
    ]
    if computed:  # computed values follow the condition slots in the list explain returns
        lines.insert(0, f"    w = [None] * {len(computed)}")
        lines.append("    v.extend(w)")
        slots = [
            ConditionSlot(x.index, x.node, x.children, tuple(len(slots) + k for k in x.computed))
            for x in slots
        ]
    return lines, slots, rule_slots, computed


def _key_lines(rule_slots: list[tuple[int, tuple[int, ...]]]) -> list[str]:
    """The same key `decide` returns (index fired, ~index unknown), read off the traced slots."""
    lines = ["    key = []"]
    for index, (cond, unless) in enumerate(rule_slots):
        fires = " and ".join([f"v[{cond}] is True", *[f"v[{u}] is False" for u in unless]])
        open_ = " and ".join([f"v[{cond}] is not False", *[f"v[{u}] is not True" for u in unless]])
        lines += [
            f"    if {fires}:",
            f"        key.append({index})",
            f"    elif {open_}:",
            f"        key.append({~index})",
        ]
    return lines


def _condition_children(node: p.Node) -> tuple[p.Node, ...]:
    """Children that are conditions of their own (and, or, not operands)."""
    if isinstance(node, p.NotNode):
        return (node.operand,)
    if isinstance(node, p.AndNode | p.OrNode):
        return node.operands
    return ()


def _values_source(emitter: _Emitter, name: str) -> list[str] | None:
    """Computed decision values (`decide d = a / b * 100`) for the rules that took effect.

    Precedence depends only on which rules fired, so it stays cached; the values that
    depend on the case are computed after it, here, only for effective rules (`e`).
    """
    program = emitter.program
    body: list[str] = []
    nodes: list[p.Node] = []
    for i, rule in enumerate(program.rules):
        for k, outcome in enumerate(rule.outcomes):
            if outcome.computed is not None:
                body += [f"    if {i} in e:", f"        out[({i}, {k})] = {emitter.expr(outcome.computed)}"]
                nodes.append(outcome.computed)
    if not body:
        return None
    derived = emitter.derived_lines({n for node in nodes for n in _derived_reads(node)})
    head = [f"def {name}(f, t, e):", emitter.tables_line(), *emitter.prologue(), *derived, "    out = {}"]
    return [line for line in head if line] + body + ["    return out"]


def compile_program(program: p.Program) -> CompiledRules:
    """Generate, compile and return the decide and explain functions of a program."""
    decide_lines, decide_namespace = _decide_source(_Emitter(program))
    case_lines, case_namespace = _decide_source(_Emitter(program, nested=True), "decide_case")

    explain_emitter = _Emitter(program)
    explain_body, slots, rule_slots, computed = _explain_source(explain_emitter)
    derived = explain_emitter.derived_lines()
    derived_values = ", ".join(explain_emitter.derived_vars.values())
    explain_head = [
        "def explain(f, t):",
        explain_emitter.tables_line(),
        *explain_emitter.prologue(),
        *derived,
        f"    v = [None] * {len(slots)}",
    ]
    explain_lines = [line for line in explain_head if line] + explain_body + _key_lines(rule_slots)
    explain_lines.append(f"    return v, [{derived_values}], key")

    values_emitter, values_case_emitter = _Emitter(program), _Emitter(program, nested=True)
    values_lines = _values_source(values_emitter, "values")
    values_case_lines = _values_source(values_case_emitter, "values_case")
    values = _build(values_lines, values_emitter.namespace, "values") if values_lines else None
    values_case = (
        _build(values_case_lines, values_case_emitter.namespace, "values_case") if values_case_lines else None
    )

    decide = _build(decide_lines, decide_namespace, "decide")
    decide_case = _build(case_lines, case_namespace, "decide_case")
    explain = _build(explain_lines, explain_emitter.namespace, "explain")
    source = "\n".join(decide_lines) + "\n\n" + "\n".join(explain_lines) + "\n"
    if values_lines:
        source += "\n" + "\n".join(values_lines) + "\n"
    return CompiledRules(
        decide=decide,
        decide_case=decide_case,
        explain=explain,
        table_names=tuple(program.tables),
        slots=tuple(slots),
        rule_slots=tuple(rule_slots),
        computed=tuple(computed),
        values=values,
        values_case=values_case,
        derived_names=tuple(program.derived),
        source=source,
    )


def _build(lines: list[str], namespace: dict[str, Any], name: str) -> Any:
    code = compile("\n".join(lines) + "\n", f"<policy {name}>", "exec")
    scope = dict(namespace)
    scope["__builtins__"] = {}
    exec(code, scope)  # the source holds only compiler-made names and repr'd fact paths
    names = scope.pop("_BUCKET_NAMES", None)
    if names is not None:  # the index maps fact values to group functions, outside the source
        scope["_BUCKETS"] = {value: scope[group] for value, group in names.items()}
    return scope[name]
