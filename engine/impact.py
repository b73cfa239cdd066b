"""Impact runs: decide years of history under two policy versions and report what would change.

`policy impact OLD NEW CASES` answers "what would the new version have decided on every
application we ever had?". CASES is Parquet (a file or a folder of files), JSON lines, or a
folder of JSON case files; it is cut into *units* (a Parquet row group, a block of lines, a
slice of files), each decided under both versions by a worker (this process, a process pool,
or a Dask cluster: `engine.dask`), and the units' results are reduced in input order, so
every way of running gives the same report, byte for byte.

A case's place in the report depends only on the pair of fired-rule keys it gets under the
two versions (the untraced decision and every rule's status are functions of the key), so
each distinct pair is classified once (changed / same outcome for different reasons /
unchanged, with the outcome changes and the rules behind them, from `engine.diff`), and a
case costs two generated-loop passes and a dictionary look-up. The changed cases are
spooled to a temporary file in input order, not kept in memory, and the JSON report lists
all of them; the human formats list the first few of each outcome pattern ("group") and
say how many more there are, and the Markdown report stays under a pull-request comment's
65,536 characters.

Nothing is written at a final name until the run has finished: the report, the rejects and
the `--explain changed` traces go to hidden temporary files beside their targets and are
renamed into place at the end, so an interrupted run (Ctrl-C, SIGTERM, a kill) leaves no
half-written file, and a rerun writes the same bytes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine import diff as d
from engine.cases import read_case_file
from engine.changes import aligned
from engine.columnar import Columnar, PolicyRef, cases_of_rows, flatten_columns, row_input
from engine.errors import CaseError, UsageError
from engine.models import Decision, RuleStatus, to_json_value
from engine.runtime import CompiledPolicy, Resolution

IMPACT_VERSION = 1
FORMATS = d.FORMATS
MARKDOWN_LIMIT = 65_536  # GitHub's limit for a pull-request comment
BATCH_ROWS = 32_768  # rows decoded at a time inside a Parquet row group
LINES_BYTES = 1 << 20  # bytes of JSON lines per unit
FILES_PER_UNIT = 500
EXAMPLES_KEPT = 1_000  # case ids kept per group for the human formats (the JSON lists all)
INFLIGHT_PER_WORKER = 3
TEMPLATES_KEPT = 2_000  # memoised traced decisions per version and worker (about 6 KB each)

GroupStatus = Literal["changed", "reasons_changed"]
Key = tuple[int, ...]
Pair = tuple[Key, Key]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


# ---------------------------------------------------------------------------
# The report model (the JSON report is its dump, followed by the streamed case list)


class RuleMove(_Model):
    """A rule whose status differs between the versions, for every case of a group."""

    rule: str
    citations: list[str] = Field(default_factory=list)
    before: str
    after: str


class Group(_Model):
    """One outcome pattern: the cases that get the same two decisions for the same reasons."""

    group: int
    status: GroupStatus
    count: int
    before: d.OutcomeSummary
    after: d.OutcomeSummary
    changes: list[d.OutcomeChange] = Field(default_factory=list)
    transitions: list[str] = Field(default_factory=list)
    rules: list[RuleMove] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)


class TransitionCount(_Model):
    key: str
    label: str
    kind: d.OutcomeKind
    name: str
    before: str | None
    after: str | None
    count: int


class ImpactSummary(_Model):
    """Counts over every case read; `cases = compared + rejected`, `compared = changed + reasons_changed + unchanged`."""

    cases: int
    compared: int
    changed: int
    reasons_changed: int
    unchanged: int
    rejected: int
    transitions: list[TransitionCount] = Field(default_factory=list)


class ImpactReport(_Model):
    impact_version: int = IMPACT_VERSION
    before: d.VersionInfo
    after: d.VersionInfo
    cases_from: str
    summary: ImpactSummary
    groups: list[Group]
    rule_changes: list[d.RuleChange]
    definition_changes: list[d.DefinitionChange] = Field(default_factory=list)
    rejects_file: str | None = None
    explain_file: str | None = None

    @property
    def decisions_changed(self) -> bool:
        return self.summary.changed > 0


# ---------------------------------------------------------------------------
# Classifying a pair of keys


@dataclass(frozen=True)
class PairInfo:
    status: d.CaseStatus
    before: d.OutcomeSummary
    after: d.OutcomeSummary
    changes: list[d.OutcomeChange]
    rules: list[RuleMove]


@dataclass(frozen=True)
class Version:
    """One side as a worker sees it: the policy (as data) and the date its cases are decided on."""

    ref: PolicyRef
    when: date
    label: str


def _untraced(compiled: CompiledPolicy, resolution: Resolution, when: date) -> Decision:
    """The decision a key stands for, without a trace: the runtime's own answer builder."""
    return compiled._decision(resolution, when, None)


def _statuses(compiled: CompiledPolicy, key: Key) -> dict[str, tuple[RuleStatus, list[str]]]:
    """Each rule's trace status and who overrode it, read off the key (as the trace would say)."""
    resolution = compiled.resolve(key)
    unknown = {~i for i in key if i < 0}
    rules = compiled.program.rules
    out: dict[str, tuple[RuleStatus, list[str]]] = {}
    for i, rule in enumerate(rules):
        status: RuleStatus
        if i in resolution.effective:
            status = "fired"
        elif i in resolution.overridden_by:
            status = "overridden"
        elif i in unknown:
            status = "unknown"
        else:
            status = "not_fired"
        out[rule.id] = (status, [rules[o].id for o in resolution.overridden_by.get(i, ())])
    return out


class Judge:
    """Classifies pairs of keys exactly as `engine.diff.compare_case` classifies traced cases."""

    def __init__(self, before: CompiledPolicy, before_when: date, after: CompiledPolicy, after_when: date):
        self.sides = ((before, before_when), (after, after_when))
        self._cache: dict[Pair, PairInfo] = {}
        self._citations = {r.id: list(r.citations) for c, _ in self.sides for r in c.program.rules}

    def classify(self, pair: Pair) -> PairInfo:
        cached = self._cache.get(pair)
        if cached is None:
            cached = self._cache[pair] = self._classify(pair)
        return cached

    def _classify(self, pair: Pair) -> PairInfo:
        (old, old_when), (new, new_when) = self.sides
        before = _untraced(old, old.resolve(pair[0]), old_when)
        after = _untraced(new, new.resolve(pair[1]), new_when)
        changes = d.outcome_changes(before, after)
        old_status, new_status = _statuses(old, pair[0]), _statuses(new, pair[1])
        moves = []
        for rule in aligned(list(old_status), list(new_status)):
            a, b = old_status.get(rule), new_status.get(rule)
            changed = (a[0] if a else "not_fired") != (b[0] if b else "not_fired") or (
                a is not None and b is not None and a[1] != b[1]
            )
            if changed:
                moves.append(
                    RuleMove(
                        rule=rule,
                        citations=self._citations.get(rule, []),
                        before=_status_words(a),
                        after=_status_words(b),
                    )
                )
        status: d.CaseStatus = "changed" if changes else "reasons_changed" if moves else "unchanged"
        return PairInfo(status, d.outcome_summary(before), d.outcome_summary(after), changes, moves)


def _status_words(side: tuple[RuleStatus, list[str]] | None) -> str:
    if side is None:
        return "(no such rule)"
    text = d.STATUS_WORDS[side[0]]
    return text + (" by " + ", ".join(side[1]) if side[1] else "")


# ---------------------------------------------------------------------------
# Units of work and what a worker returns for one


@dataclass(frozen=True)
class Unit:
    """A slice of the input: a Parquet row group, a block of JSON lines, or some case files."""

    kind: Literal["parquet", "jsonl", "files"]
    first_row: int  # 1-based number of the unit's first row (line, file) in the whole input
    path: str = ""
    row_group: int = 0
    rows: int = 0
    data: bytes = b""
    files: tuple[str, ...] = ()


@dataclass
class UnitResult:
    """What a worker found in one unit: counts per pair of keys, and the listed cases already as JSON.

    The case entries of the JSON report (`{"row": N, "case": "..."}`) are written here, in the
    worker, so the main process only concatenates text: it does no work per case.
    """

    rows: int = 0
    pairs: Counter[Pair] = field(default_factory=Counter)
    listed: dict[Pair, list[str]] = field(default_factory=dict)  # pair -> chunks of case entries
    examples: dict[Pair, list[str]] = field(default_factory=dict)  # pair -> first case ids
    rejects: list[str] = field(default_factory=list)  # JSON lines
    explain: list[str] = field(default_factory=list)  # JSON lines
    explain_file: str | None = None  # or: the same lines in a spool file the worker wrote (local workers)

    def list_cases(self, pair: Pair, rows: list[int], names: list[str]) -> None:
        entries = ",\n".join(
            f'      {{"row": {row}, "case": {_quote(name)}}}' for row, name in zip(rows, names, strict=True)
        )
        self.listed.setdefault(pair, []).append(entries)
        kept = self.examples.setdefault(pair, [])
        if len(kept) < EXAMPLES_KEPT:
            kept += names[: EXAMPLES_KEPT - len(kept)]


def _quote(text: str) -> str:
    """A JSON string; the common plain-ASCII id without escaping work."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return json.dumps(text, ensure_ascii=False)


@dataclass(frozen=True)
class Job:
    """Everything a worker needs, picklable: both versions as data and the run's options."""

    before: Version
    after: Version
    explain: bool = False
    id_column: str | None = None
    #: Where workers that can see it write a unit's traces (megabytes), instead of sending them back.
    spool_dir: str | None = None

    @property
    def digest(self) -> str:
        return f"{self.before.ref.digest}|{self.before.when}|{self.after.ref.digest}|{self.after.when}|{self.explain}|{self.id_column}|{self.spool_dir}"


class Worker:
    """Decides units under both versions; one per process (built from a `Job`, policies compiled once)."""

    def __init__(self, job: Job):
        self.job = job
        self.policies = (job.before.ref.load(), job.after.ref.load())
        self.compiled = (self.policies[0].compiled, self.policies[1].compiled)
        self.whens = (job.before.when, job.after.when)
        self.judge = Judge(self.compiled[0], self.whens[0], self.compiled[1], self.whens[1])
        old, new = self.compiled[0].program, self.compiled[1].program
        #: Both versions declare the same facts and enumerations: a case is validated once for both.
        self.same_facts = _fact_signature(old) == _fact_signature(new)
        self.json_schema = json_schema(old, new) if ARROW_JSON else None
        self._trace_inputs = tuple(_trace_inputs(program) for program in (old, new))
        self._templates: tuple[dict[Any, tuple[str, str]], ...] = ({}, {})
        self.memo_hits = 0
        self._spool: IO[str] | None = None
        self._columnar: dict[str, tuple[Columnar, Columnar, bool]] = {}
        self._canon: dict[Key, Key] = {}
        self._files: dict[str, Any] = {}

    # -- per unit ---------------------------------------------------------------
    def run(self, unit: Unit) -> UnitResult:
        result = UnitResult()
        spool = self.job.spool_dir
        if self.job.explain and spool is not None and os.path.isdir(spool):
            descriptor, name = tempfile.mkstemp(dir=spool, suffix=".jsonl")
            self._spool = os.fdopen(descriptor, "w", encoding="utf-8")
            result.explain_file = name
        try:
            if unit.kind == "parquet":
                self._parquet(unit, result)
            elif unit.kind == "jsonl":
                self._lines(unit, result)
            else:
                self._case_files(unit, result)
        finally:
            if self._spool is not None:
                self._spool.close()
                self._spool = None
        return result

    def _interesting(self, pair: Pair) -> PairInfo | None:
        info = self.judge.classify(pair)
        return None if info.status == "unchanged" else info

    def _explain(
        self, result: UnitResult, row: int, case_id: str, cases: tuple[Any, Any], pair: Pair
    ) -> None:
        """Both traces of a changed case, as the public single-case API (`evaluate`) writes them."""
        texts = [self._traced(side, case, row, pair) for side, case in enumerate(cases)]
        line = f'{{"row":{row},"case":{_dumps(case_id)},"before":{texts[0]},"after":{texts[1]}}}'
        if self._spool is not None:  # straight to this unit's spool file: a unit's traces are megabytes
            self._spool.write(line + "\n")
        else:
            result.explain.append(line)

    def _traced(self, side: int, case: Any, row: int, pair: Pair) -> str:
        """`evaluate(case, trace=True).model_dump_json()`, memoised on what the trace depends on.

        Everything in a decision with its trace but the `facts` section is a function of the
        facts the rules and derived facts read (and of which defaults were taken), so the JSON
        is kept per distinct tuple of those as a template around `facts`; each template is made
        from a real `evaluate` and kept only if splicing that case's own facts into it gives
        back exactly the same text. Cases with values whose JSON text could differ between
        serializers (control characters, quotes, backslashes) always take `evaluate`.
        """
        policy, when = self.policies[side], self.whens[side]
        compiled = policy.compiled
        facts = compiled.validate(case)
        reads, defaulted = self._trace_inputs[side]
        key = (tuple(facts[path] for path in reads), tuple(facts[path] is None for path in defaulted))
        section = self._facts_json(side, facts)
        template = self._templates[side].get(key)
        if template is not None and section is not None:
            self.memo_hits += 1
            return template[0] + section + template[1]
        decision = policy.evaluate(case, trace=True, at=when)
        expected = self.judge.classify(pair)
        summary = expected.before if side == 0 else expected.after
        if decision.fired != summary.fired:  # the fast path and the traced path must agree
            raise RuntimeError(
                f"internal error: row {row} decided differently by the columnar and the traced path"
            )
        text = decision.model_dump_json()
        if section is not None:
            marker = '"facts":' + section
            if text.count(marker) == 1 and len(self._templates[side]) < TEMPLATES_KEPT:
                head, tail = text.split(marker)
                self._templates[side][key] = (head + '"facts":', tail)
        return text

    def _facts_json(self, side: int, facts: dict[str, Any]) -> str | None:
        """The trace's `facts` section as compact JSON, or None when a value is not plainly printable."""
        program = self.compiled[side].program
        shown = {}
        for path, value in facts.items():
            if value is None and program.facts[path].default is not None:
                value = program.facts[path].default
            plain = to_json_value(value)
            for item in plain if isinstance(plain, list) else (plain,):
                if isinstance(item, str) and not (
                    item.isprintable() and '"' not in item and "\\" not in item
                ):
                    return None
            shown[path] = plain
        return json.dumps(shown, ensure_ascii=False, separators=(",", ":"))

    # -- Parquet ----------------------------------------------------------------
    def _parquet(self, unit: Unit, result: UnitResult) -> None:
        handle = self._files.get(unit.path)
        if handle is None:
            import pyarrow.parquet as pq

            handle = self._files[unit.path] = pq.ParquetFile(unit.path)
        row = unit.first_row
        for batch in handle.iter_batches(batch_size=BATCH_ROWS, row_groups=[unit.row_group]):
            self.decide_batch(batch, row, result)
            row += batch.num_rows

    def _plans(self, schema: Any, id_column: str | None) -> tuple[Columnar, Columnar, bool]:
        text = f"{id_column}|{schema.to_string()}"
        plans = self._columnar.get(text)
        if plans is None:
            old, new = self.compiled
            both = frozenset(old.program.facts) | frozenset(new.program.facts)
            a = Columnar(old, schema, id_column, also=both)
            b = Columnar(new, schema, id_column, also=both)
            plans = self._columnar[text] = (a, b, a.reader.signature == b.reader.signature)
        return plans

    def decide_batch(
        self,
        batch: Any,
        first_row: int,
        result: UnitResult,
        *,
        id_column: str | None = None,
        unnamed: str = "row",
        strict: bool = False,
    ) -> bool:
        """Decide one record batch under both versions; rows are numbered from `first_row`.

        `strict`: give up (return False, nothing recorded) if any row is rejected, so the
        caller can decide the block on the exact-JSON path instead (rejects word it there).
        """
        ident = self.job.id_column if id_column is None else id_column
        a, b, shared = self._plans(batch.schema, ident)
        encoded_a = a.reader.encode(batch)
        encoded_b = encoded_a if shared else b.reader.encode(batch)
        if strict and (encoded_a.rejects or encoded_b.rejects):
            return False
        ids_a, keys_a = a.run(encoded_a, self.whens[0], batch.num_rows)
        ids_b, keys_b = b.run(encoded_b, self.whens[1], batch.num_rows)
        result.rows += batch.num_rows
        rejected = set(encoded_a.rejects) | set(encoded_b.rejects)
        pairs = zip(ids_a, ids_b, strict=False)
        counts = (
            Counter(pairs)
            if not rejected
            else Counter(p for i, p in enumerate(zip(ids_a, ids_b, strict=False)) if i not in rejected)
        )
        listed_ids = {}
        for (ia, ib), count in counts.items():
            pair = (keys_a[ia], keys_b[ib])
            result.pairs[pair] += count
            if self._interesting(pair) is not None:
                listed_ids[(ia, ib)] = pair
        if rejected:
            for row in sorted(rejected):
                result.rejects.append(self._reject_line(batch, row, first_row + row, encoded_a, encoded_b))
        if not listed_ids:
            return True
        by_pair: dict[Pair, list[int]] = {}
        for i, p in enumerate(zip(ids_a, ids_b, strict=False)):
            if p in listed_ids and i not in rejected:
                by_pair.setdefault(listed_ids[p], []).append(i)
        for pair, rows in by_pair.items():
            names = self._case_ids(batch, rows, first_row, ident, unnamed)
            result.list_cases(pair, [first_row + i for i in rows], names)
        if self.job.explain:
            traced = sorted(
                (i, pair)
                for pair, rows in by_pair.items()
                if self.judge.classify(pair).status == "changed"
                for i in rows
            )
            indexes = [i for i, _ in traced]
            names = self._case_ids(batch, indexes, first_row, ident, unnamed)
            if indexes:
                before = cases_of_rows(batch, indexes, self.compiled[0].program)
                after = cases_of_rows(batch, indexes, self.compiled[1].program)
                for (i, pair), name, old, new in zip(traced, names, before, after, strict=True):
                    self._explain(result, first_row + i, name, (old, new), pair)
        return True

    def _case_ids(
        self, batch: Any, rows: list[int], first_row: int, id_column: str | None, unnamed: str
    ) -> list[str]:
        if id_column is None:
            return [f"{unnamed} {first_row + i}" for i in rows]
        import pyarrow as pa

        column = flatten_columns(batch)[id_column]
        values = column.take(pa.array(rows, pa.int64())).to_pylist()
        return [
            f"{unnamed} {first_row + i}" if v is None else str(v) for i, v in zip(rows, values, strict=True)
        ]

    def _reject_line(self, batch: Any, index: int, row: int, *encoded: Any) -> str:
        problems: list[dict[str, str]] = []
        for side, enc in zip(("before", "after"), encoded, strict=True):
            for path, reason in enc.rejects.get(index, []):
                item = {"path": path, "reason": reason}
                if item not in problems:
                    problems.append(item)
                item["version"] = self.job.before.label if side == "before" else self.job.after.label
        for item in problems:
            item.setdefault("version", "")
        body = {"row": row, "error": "invalid-case", "problems": problems, "input": row_input(batch, index)}
        return _dumps(body)

    # -- JSON lines and case files -------------------------------------------------
    def _canonical(self, fired: list[int]) -> Key:
        """A key in rule order (an indexed policy's `decide` sorts it), so equal keys compare equal."""
        key = tuple(fired)
        canon = self._canon.get(key)
        if canon is None:
            canon = self._canon[key] = tuple(sorted(key, key=lambda i: i if i >= 0 else ~i))
        return canon

    def _decide_case(self, case: Any) -> tuple[Pair | None, list[dict[str, str]]]:
        """Both keys of a case dict, or the problems each version found (validated once when the facts agree)."""
        keys: list[Key] = []
        problems: list[dict[str, str]] = []
        facts: dict[str, Any] | None = None
        for side, (compiled, when, version) in enumerate(
            zip(self.compiled, self.whens, (self.job.before, self.job.after), strict=True)
        ):
            if side == 0 or not self.same_facts or facts is None:
                try:
                    facts = compiled.validate(case)
                except CaseError as exc:
                    facts = None
                    for path, reason in exc.problems:
                        problems.append({"path": path, "reason": reason, "version": version.label})
                    continue
            keys.append(self._canonical(compiled.fired(facts, when)))
        if problems:
            return None, problems
        return (keys[0], keys[1]), []

    def _record(self, result: UnitResult, row: int, name: str, case: Any, raw: bytes | str) -> None:
        pair, problems = self._decide_case(case)
        if pair is None:
            text = raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace").rstrip("\r")
            result.rejects.append(
                _dumps(
                    {"row": row, "case": name, "error": "invalid-case", "problems": problems, "input": text}
                )
            )
            return
        result.pairs[pair] += 1
        info = self._interesting(pair)
        if info is not None:
            result.list_cases(pair, [row], [name])
            if self.job.explain and info.status == "changed":
                self._explain(result, row, name, (case, case), pair)

    def _parse_block(self, lines: list[bytes]) -> list[Any] | None:
        """Every line of a block in one `json.loads` call (the common case: all valid); None if any is not."""
        try:
            parsed = json.loads(b"[" + b",".join(lines) + b"]")
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None
        return parsed if isinstance(parsed, list) and len(parsed) == len(lines) else None

    def _lines(self, unit: Unit, result: UnitResult) -> None:
        if self.json_schema is not None and self._arrow_lines(unit, result):
            return
        lines = unit.data.split(b"\n")
        if unit.data.endswith(b"\n"):
            lines.pop()
        numbered = [(row, raw) for row, raw in enumerate(lines, unit.first_row) if raw.strip()]
        parsed = self._parse_block([raw for _, raw in numbered])
        for index, (row, raw) in enumerate(numbered):
            result.rows += 1
            if parsed is not None:
                case = parsed[index]
            else:
                try:
                    case = json.loads(raw[:-1] if raw.endswith(b"\r") else raw)
                except (UnicodeDecodeError, ValueError, RecursionError) as exc:
                    reason = getattr(exc, "msg", None) or str(exc) or type(exc).__name__
                    text = raw.decode("utf-8", errors="replace").rstrip("\r")
                    result.rejects.append(
                        _dumps({"row": row, "error": "invalid-json", "reason": reason, "input": text})
                    )
                    continue
            ident = case.pop("$id", None) if isinstance(case, dict) else None
            name = (
                str(ident) if isinstance(ident, str | int) and not isinstance(ident, bool) else f"line {row}"
            )
            self._record(result, row, name, case, raw)

    def _arrow_lines(self, unit: Unit, result: UnitResult) -> bool:
        """The block read by Arrow's JSON parser against the facts' exact schema, then the columnar path.

        Taken only when every line parses strictly (no unknown key, every value of its exact
        JSON type, no blank line) and no row is rejected; otherwise the block goes to the
        exact-JSON path, which decides the same and words every reject. Only for policies whose
        facts are booleans, strings, enumerations and sets of those (`json_schema`).
        """
        import pyarrow as pa
        import pyarrow.json as pj

        data = unit.data
        if not data or data.startswith(b"\n") or b"\n\n" in data or b"\r" in data:
            return False
        options = pj.ParseOptions(explicit_schema=self.json_schema, unexpected_field_behavior="error")
        try:
            reading = pj.ReadOptions(
                use_threads=False, block_size=len(data) + 1
            )  # one block: workers are the parallelism
            table = pj.read_json(pa.py_buffer(data), read_options=reading, parse_options=options)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return False
        if table.num_rows != data.count(b"\n") + (0 if data.endswith(b"\n") else 1):
            return False
        trial = UnitResult()
        row = unit.first_row
        spool, self._spool = self._spool, None  # a trial keeps its traces until it has succeeded
        try:
            for batch in table.combine_chunks().to_batches(max_chunksize=BATCH_ROWS):
                if not self.decide_batch(batch, row, trial, id_column="$id", unnamed="line", strict=True):
                    return False
                row += batch.num_rows
        finally:
            self._spool = spool
        if spool is not None and trial.explain:
            spool.write("\n".join(trial.explain) + "\n")
            trial.explain = []
        result.rows += trial.rows
        result.pairs.update(trial.pairs)
        for pair, chunks in trial.listed.items():
            result.listed.setdefault(pair, []).extend(chunks)
            result.examples.setdefault(pair, []).extend(trial.examples[pair])
        result.explain += trial.explain
        return True

    def _case_files(self, unit: Unit, result: UnitResult) -> None:
        for row, path in enumerate(unit.files, unit.first_row):
            result.rows += 1
            case = read_case_file(Path(path))
            if case.facts is None:
                result.rejects.append(
                    _dumps(
                        {
                            "row": row,
                            "case": case.name,
                            "error": "invalid-case",
                            "reason": case.problem_text,
                            "path": path,
                        }
                    )
                )
                continue
            self._record(result, row, case.name, case.facts, path)


def _trace_inputs(program: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The facts a trace's rules and derived facts read, and the facts that have a default."""
    from engine import program as p

    nodes = [n for r in program.rules for n in (r.condition, *r.unless)] + [
        d.node for d in program.derived.values()
    ]
    read = {name for node in nodes for name in p.reads(node) if name in program.facts}
    defaulted = tuple(k for k, f in program.facts.items() if f.default is not None)
    return tuple(k for k in program.facts if k in read), defaulted


ARROW_JSON = True  # JSON lines through Arrow's JSON parser where that is exact (tests turn it off to compare)


def json_schema(*programs: Any) -> Any:
    """The Arrow schema JSON cases of these programs have, when Arrow can read them exactly; else None.

    Booleans, strings, enumerations and sets of those only: numbers and dates keep the exact-JSON
    path, whose rules for them (integers, `YYYY-MM-DD`, decimals as text) Arrow's reader does not share.
    """
    if _fact_signature(programs[0]) != _fact_signature(programs[-1]):
        return None
    import pyarrow as pa

    facts = programs[0].facts
    if any(f.type.base in ("number", "date") for f in facts.values()):
        return None

    def arrow(fact: Any) -> Any:
        scalar = pa.bool_() if fact.type.base == "boolean" else pa.string()
        return pa.list_(scalar) if fact.type.is_set else scalar

    tree: dict[str, Any] = {}
    for path, fact in facts.items():
        node = tree
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = arrow(fact)

    def fields(node: dict[str, Any]) -> list[Any]:
        return [pa.field(k, pa.struct(fields(v)) if isinstance(v, dict) else v) for k, v in node.items()]

    return pa.schema([pa.field("$id", pa.string()), *fields(tree)])


def _fact_signature(program: Any) -> tuple[Any, ...]:
    enums = {f.type.enum: program.enums[f.type.enum] for f in program.facts.values() if f.type.enum}
    return (
        tuple((f.path, str(f.type), f.optional) for f in program.facts.values()),
        tuple(sorted(enums.items())),
    )


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


_workers: dict[str, Worker] = {}
_workers_lock = threading.Lock()


def worker_for(job: Job) -> Worker:
    """This process's worker for a job, built once (Dask tasks and pool processes reuse it)."""
    with _workers_lock:
        worker = _workers.get(job.digest)
        if worker is None:
            worker = _workers[job.digest] = Worker(job)
    return worker


def run_units(job: Job, units: Iterable[Unit]) -> list[UnitResult]:
    """Decide some units in this process: the task a pool process or a Dask worker runs."""
    worker = worker_for(job)
    return [worker.run(unit) for unit in units]


# ---------------------------------------------------------------------------
# Cutting the input into units


@dataclass(frozen=True)
class Source:
    """The cases as given: what they are, how many (rows or bytes, for progress), and their units."""

    kind: Literal["parquet", "jsonl", "files"]
    label: str
    paths: tuple[str, ...]
    total: int  # rows for Parquet, bytes for JSON lines, files for a folder
    schema: Any = None

    def units(self) -> Iterator[Unit]:
        if self.kind == "parquet":
            yield from parquet_units(self.paths)
        elif self.kind == "jsonl":
            yield from _line_units(self.paths[0])
        else:
            for start in range(0, len(self.paths), FILES_PER_UNIT):
                yield Unit("files", start + 1, files=self.paths[start : start + FILES_PER_UNIT])


PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")


def open_source(cases: str | Path) -> Source:
    """What CASES names: a Parquet file or folder of them, a folder of JSON cases, or JSON lines."""
    path = Path(cases)
    if not path.exists():
        raise UsageError(f"`{path}` does not exist", "give a Parquet file, a JSON-lines file, or a folder")
    if path.is_dir():
        parquet = sorted(str(p) for p in path.rglob("*") if p.suffix in PARQUET_SUFFIXES and p.is_file())
        if parquet:
            return _parquet_source(str(path), parquet)
        files = [str(f) for f in d.case_files(path)]
        return Source("files", str(path), tuple(files), len(files))
    if path.suffix in PARQUET_SUFFIXES:
        return _parquet_source(str(path), [str(path)])
    return Source("jsonl", str(path), (str(path),), path.stat().st_size)


def _parquet_source(label: str, files: list[str]) -> Source:
    import pyarrow as pa
    import pyarrow.parquet as pq

    total = 0
    schema = None
    for file in files:
        try:
            meta = pq.ParquetFile(file)
        except (OSError, pa.ArrowException) as exc:
            raise UsageError(f"`{file}` is not a readable Parquet file: {exc}", "check the file") from None
        if schema is None:
            schema = meta.schema_arrow
        elif not meta.schema_arrow.equals(schema):
            raise UsageError(
                f"`{file}` has a different schema from `{files[0]}`",
                "an impact run reads one table: give files with the same columns",
            )
        total += meta.metadata.num_rows
    return Source("parquet", label, tuple(files), total, schema)


def parquet_units(files: tuple[str, ...]) -> Iterator[Unit]:
    import pyarrow.parquet as pq

    row = 1
    for file in files:
        meta = pq.ParquetFile(file).metadata
        for group in range(meta.num_row_groups):
            rows = meta.row_group(group).num_rows
            yield Unit("parquet", row, path=file, row_group=group, rows=rows)
            row += rows


def _line_units(path: str) -> Iterator[Unit]:
    from engine.batch import read_chunks

    with open(path, "rb") as handle:
        for first, block in read_chunks(handle, LINES_BYTES):
            yield Unit("jsonl", first, data=block, rows=len(block))


def default_id_column(source: Source, facts: set[str]) -> str | None:
    """`$id`, else `id` when it is not a fact: the column that names a case in the report."""
    if source.schema is None:
        return None
    names = set(source.schema.names)
    for candidate in ("$id", "id", "case_id"):
        if candidate in names and candidate not in facts:
            return candidate
    return None


# ---------------------------------------------------------------------------
# Running the units: in this process, on a pool of processes, or anywhere that maps units


Executor = Callable[[Job, Iterator[Unit]], Iterator[UnitResult]]


def inline(job: Job, units: Iterator[Unit]) -> Iterator[UnitResult]:
    worker = worker_for(job)
    for unit in units:
        yield worker.run(unit)


_pool_job: Job | None = None


def _pool_init(job: Job) -> None:
    global _pool_job
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides what an interrupt means
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _pool_job = job


def _pool_task(unit: Unit) -> UnitResult:
    assert _pool_job is not None
    return worker_for(_pool_job).run(unit)


def pool(workers: int) -> Executor:
    """Worker processes, each compiling both versions once; results come back in input order."""

    def execute(job: Job, units: Iterator[Unit]) -> Iterator[UnitResult]:
        context = multiprocessing.get_context("spawn" if sys.platform == "darwin" else "fork")
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
        try:
            processes = context.Pool(workers, initializer=_pool_init, initargs=(job,))
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        try:
            pending: deque[Any] = deque()
            # With --explain a unit's result holds both traces of its changed cases (MBs): one in flight each.
            limit = workers * (1 if job.explain else INFLIGHT_PER_WORKER)
            for unit in units:
                pending.append(processes.apply_async(_pool_task, (unit,)))
                while pending and (len(pending) >= limit or pending[0].ready()):
                    yield pending.popleft().get()
            while pending:
                yield pending.popleft().get()
            processes.close()
        except BaseException:
            processes.terminate()
            raise
        finally:
            processes.join()

    return execute


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


# ---------------------------------------------------------------------------
# Reducing the results in input order


class AtomicFile:
    """A file written under a hidden temporary name beside its target and renamed into place on `commit`."""

    def __init__(self, target: Path, mode: str = "w"):
        self.target = target
        descriptor, name = tempfile.mkstemp(
            dir=target.parent or Path("."), prefix=f".{target.name}.", suffix=".tmp"
        )
        self.temp = Path(name)
        self.handle: IO[Any] = os.fdopen(descriptor, mode + ("b" if "b" not in mode else ""))

    def write(self, text: str) -> None:
        self.handle.write(text.encode("utf-8"))

    def commit(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.chmod(self.temp, 0o666 & ~_umask())  # as `open` would have made it (mkstemp makes 0600)
        os.replace(self.temp, self.target)

    def discard(self) -> None:
        if not self.handle.closed:
            self.handle.close()
        self.temp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@dataclass
class Progress:
    """A counter on stderr while the run goes, only on a terminal; erased before the summary."""

    total: int
    unit: str
    stream: Any = None
    started: float = field(default_factory=time.perf_counter)
    last: float = 0.0
    drawn: bool = False

    def __call__(self, done: int, cases: int, changed: int) -> None:
        now = time.perf_counter()
        if now - self.last < 0.25:
            return
        self.last = now
        stream = self.stream or sys.stderr
        rate = cases / max(now - self.started, 1e-9)
        percent = f"{100 * done / self.total:5.1f}%  " if self.total else ""
        stream.write(f"\r\x1b[2K{percent}{cases:,} cases, {changed:,} changed, {rate:,.0f} cases/s")
        stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            stream = self.stream or sys.stderr
            stream.write("\r\x1b[2K")
            stream.flush()


class Collector:
    """Adds up unit results in input order; spools the listed cases per group and writes rejects and traces."""

    def __init__(
        self, judge: Judge, spool: IO[bytes], rejects: AtomicFile | None, explain: AtomicFile | None
    ):
        self.judge = judge
        self.spool = spool
        self.rejects = rejects
        self.explain = explain
        self.pairs: Counter[Pair] = Counter()
        self.order: dict[Pair, int] = {}  # pair -> position of first appearance
        self.chunks: dict[Pair, list[tuple[int, int]]] = {}  # pair -> (offset, length) in the spool
        self.examples: dict[Pair, list[str]] = {}
        self.rows = 0
        self.rejected = 0
        self.changed = 0

    def add(self, result: UnitResult) -> None:
        self.rows += result.rows
        self.pairs.update(result.pairs)
        self.rejected += len(result.rejects)
        for pair, count in result.pairs.items():
            if self.judge.classify(pair).status == "changed":
                self.changed += count
        for pair, chunks in result.listed.items():
            if pair not in self.order:
                self.order[pair] = len(self.order)
                self.chunks[pair] = []
                self.examples[pair] = []
            data = ",\n".join(chunks).encode("utf-8")
            self.spool.seek(0, os.SEEK_END)
            self.chunks[pair].append((self.spool.tell(), len(data)))
            self.spool.write(data)
            kept = self.examples[pair]
            if len(kept) < EXAMPLES_KEPT:
                kept += result.examples[pair][: EXAMPLES_KEPT - len(kept)]
        if self.rejects is not None and result.rejects:
            self.rejects.write("\n".join(result.rejects) + "\n")
        if self.explain is not None and result.explain:
            self.explain.write("\n".join(result.explain) + "\n")
        if result.explain_file is not None:
            if self.explain is not None:
                with open(result.explain_file, "rb") as spooled:
                    shutil.copyfileobj(spooled, self.explain.handle)
            os.unlink(result.explain_file)

    def cases_text(self, pair: Pair) -> Iterator[str]:
        """The pair's case entries in input order, read back from the spool chunk by chunk."""
        for index, (offset, length) in enumerate(self.chunks.get(pair, [])):
            self.spool.seek(offset)
            yield (",\n" if index else "") + self.spool.read(length).decode("utf-8")


def collect(
    job: Job,
    source: Source,
    executor: Executor,
    collector: Collector,
    progress: Progress | None = None,
) -> None:
    done = 0
    for unit_result, unit in _zip_units(executor, job, source):
        collector.add(unit_result)
        done += unit.rows if source.kind != "files" else len(unit.files)
        if progress is not None:
            progress(done, collector.rows, collector.changed)


def _zip_units(executor: Executor, job: Job, source: Source) -> Iterator[tuple[UnitResult, Unit]]:
    """Results with their units (the executor keeps the order; sizes are kept here, not sent back)."""
    sizes: deque[Unit] = deque()

    def feed() -> Iterator[Unit]:
        for unit in source.units():
            sizes.append(Unit(unit.kind, unit.first_row, rows=unit.rows, files=unit.files))
            yield unit

    for result in executor(job, feed()):
        yield result, sizes.popleft()


# ---------------------------------------------------------------------------
# The report


def build_report(
    before: d.Side,
    after: d.Side,
    source: Source,
    collector: Collector,
    *,
    rejects_file: str | None,
    explain_file: str | None,
) -> tuple[ImpactReport, list[Pair]]:
    """The report model, and the pair of keys behind each group."""
    judge = collector.judge
    totals: dict[str, tuple[d.OutcomeChange, int]] = {}
    counts = {"changed": 0, "reasons_changed": 0, "unchanged": 0}
    for pair, count in collector.pairs.items():
        info = judge.classify(pair)
        counts[info.status] += count
        for change in info.changes:
            previous = totals.get(change.transition)
            totals[change.transition] = (change, count + (previous[1] if previous else 0))
    transitions = [
        TransitionCount(
            key=key,
            label=d.transition_label(change),
            kind=change.kind,
            name=change.name,
            before=change.before,
            after=change.after,
            count=count,
        )
        for key, (change, count) in totals.items()
    ]
    transitions.sort(key=lambda t: (-t.count, t.kind != "decision", t.label))
    listed = sorted(
        collector.order,
        key=lambda pr: (judge.classify(pr).status != "changed", -collector.pairs[pr], collector.order[pr]),
    )
    groups = []
    for number, pair in enumerate(listed):
        info = judge.classify(pair)
        groups.append(
            Group(
                group=number,
                status="changed" if info.status == "changed" else "reasons_changed",
                count=collector.pairs[pair],
                before=info.before,
                after=info.after,
                changes=info.changes,
                transitions=[c.transition for c in info.changes],
                rules=info.rules,
                examples=collector.examples[pair],
            )
        )
    compared = sum(counts.values())
    old, new = before.policy.compiled.program, after.policy.compiled.program
    report = ImpactReport(
        before=before.info(),
        after=after.info(),
        cases_from=source.label,
        summary=ImpactSummary(
            cases=compared + collector.rejected,
            compared=compared,
            changed=counts["changed"],
            reasons_changed=counts["reasons_changed"],
            unchanged=counts["unchanged"],
            rejected=collector.rejected,
            transitions=transitions,
        ),
        groups=groups,
        rule_changes=d.rule_changes(old, new),
        definition_changes=d.definition_changes(old, new),
        rejects_file=rejects_file,
        explain_file=explain_file,
    )
    return report, listed


def write_json(report: ImpactReport, collector: Collector, pairs: list[Pair], out: Any) -> None:
    """The report model with every group's cases (`row`, `case`, in input order) streamed from the spool."""
    body = report.model_dump(mode="json", exclude={"groups": {"__all__": {"examples"}}})
    groups = body.pop("groups")
    head = json.dumps(body, indent=2, ensure_ascii=False)
    out.write(head[: head.rindex("}")].rstrip() + ',\n  "groups": [')
    for index, (group, pair) in enumerate(zip(groups, pairs, strict=True)):
        text = json.dumps(group, indent=2, ensure_ascii=False).replace("\n", "\n    ")
        out.write(
            ("," if index else "") + "\n    " + text[: text.rindex("}")].rstrip() + ',\n      "cases": [\n'
        )
        for chunk in collector.cases_text(pair):
            out.write(chunk)
        out.write("\n      ]\n    }")
    out.write("\n  ]\n}\n" if groups else "]\n}\n")


def printable(text: str) -> str:
    """Text from the data (case ids, paths) made safe for a terminal: control characters escaped."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def _context(report: ImpactReport, examples: int, groups: int, color: bool = False) -> dict[str, Any]:
    shown = [
        g.model_copy(update={"examples": [printable(e) for e in g.examples[:examples]]})
        for g in report.groups[:groups]
    ]
    report = report.model_copy(update={"cases_from": printable(report.cases_from)})
    return {
        "r": report,
        "a": report.before,
        "b": report.after,
        "sm": report.summary,
        "groups": shown,
        "hidden_groups": report.groups[groups:],
        "examples": examples,
        "paint": d._painter(color),
    }


def render_human(report: ImpactReport, fmt: str, *, examples: int = 20, color: bool = False) -> str:
    """Text, Markdown or HTML; Markdown is cut down (fewer ids, then fewer groups) to fit a PR comment."""
    env = d.environment(html=fmt == "html")
    template = env.get_template(
        {"text": "impact.txt.j2", "md": "impact.md.j2", "html": "impact.html.j2"}[fmt]
    )
    groups = len(report.groups)
    while True:
        text = template.render(**_context(report, examples, groups, color))
        if fmt != "html":
            text = d._tidy(text)
        if fmt != "md" or len(text) < MARKDOWN_LIMIT:
            return text
        if examples > 3:
            examples = max(3, examples // 2)
        elif groups > 1:
            groups = max(1, groups * 3 // 4)
        else:
            return text[: MARKDOWN_LIMIT - 200] + "\n\n_(report cut to fit a comment; see the JSON report)_\n"


# ---------------------------------------------------------------------------
# The whole run


@dataclass
class Outcome:
    report: ImpactReport
    seconds: float


def job_for(
    before: d.Side, after: d.Side, *, explain: bool, id_column: str | None, spool_dir: str | None = None
) -> Job:
    return Job(
        Version(PolicyRef.of(before.policy, at=before.at), before.at, before.label),
        Version(PolicyRef.of(after.policy, at=after.at), after.at, after.label),
        explain=explain,
        id_column=id_column,
        spool_dir=spool_dir,
    )


def run(
    before: d.Side,
    after: d.Side,
    source: Source,
    *,
    fmt: str = "text",
    output: Path | None = None,
    rejects: Path | None = None,
    explain: Path | None = None,
    id_column: str | None = None,
    executor: Executor | None = None,
    examples: int = 20,
    color: bool = False,
    progress: Progress | None = None,
    stdout: IO[str] | None = None,
) -> Outcome:
    """Decide every case under both versions and write the report (atomically when to a file)."""
    started = time.perf_counter()
    with ExitStack() as stack:
        scratch = (
            stack.enter_context(tempfile.TemporaryDirectory(prefix="impact-traces-")) if explain else None
        )
        job = job_for(before, after, explain=explain is not None, id_column=id_column, spool_dir=scratch)
        judge = worker_for(job).judge
        files: list[AtomicFile] = []

        def atomic(target: Path | None) -> AtomicFile | None:
            if target is None:
                return None
            handle = AtomicFile(target)
            files.append(handle)
            return handle

        try:
            rejects_file = atomic(rejects)
            explain_file = atomic(explain)
            spool = stack.enter_context(tempfile.TemporaryFile("w+b"))
            collector = Collector(judge, spool, rejects_file, explain_file)
            collect(job, source, executor or inline, collector, progress)
            if progress is not None:
                progress.close()
            report, pairs = build_report(
                before,
                after,
                source,
                collector,
                rejects_file=str(rejects) if rejects else None,
                explain_file=str(explain) if explain else None,
            )
            out = atomic(output)
            target: Any = out if out is not None else _TextOut(stdout or sys.stdout)
            if fmt == "json":
                write_json(report, collector, pairs, target)
            else:
                target.write(render_human(report, fmt, examples=examples, color=color))
            for handle in files:
                handle.commit()
        except BaseException:
            for handle in files:
                handle.discard()
            raise
    return Outcome(report, time.perf_counter() - started)


class _TextOut:
    """stdout: only written once every case is decided (a human report in one write; JSON streamed from the spool)."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.stream.write(text)
