"""The loading stage: files, `use`, tables and parsing, before anything is checked.

A `Loader` reads a policy file and, depth first, the vocabularies it `use`s and the table
files its tables name, and parses each source once (parse results are cached by content
hash, so a vocabulary shared by ten versions is parsed once per process). What it gathers
is a `SourceUnit`: the declarations in the order an author meets them, the raw table data,
every source text, and the problems of reading (`file-not-found`, `syntax`, `cyclic-use`,
`use-not-vocabulary`). The checker (`engine.checker`) only checks a unit; it never touches
the disk.

`SourceUnit.digest` is the sha256 over every text the unit read (policy, vocabularies,
tables): the key of the one cache of compiled policies (`engine.api.Environment`).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import limits, strictjson
from engine import syntax as s
from engine.errors import Diagnostic, Span
from engine.parser import ParseResult, parse

#: Parsed sources kept per loader (oldest dropped first).
PARSE_CACHE_SIZE = 512


@dataclass(frozen=True)
class TableData:
    """A table file as read: its JSON, or where and why it could not be read."""

    raw: Any = None
    text: str = ""  # the checker adds it to the program's sources when it uses the table
    problem: tuple[str, str] | None = None  # (where, why), worded by the checker's `table-data`
    line: int = 0  # where in the table file the problem is, when it is inside it
    column: int = 0
    help: str | None = None


@dataclass
class SourceUnit:
    """A policy or vocabulary file with everything it reads, resolved and parsed: the checker's input."""

    path: Path
    root: s.SourceFile | None
    items: list[tuple[s.Item, Path]] = field(default_factory=list)  # `use` followed depth first
    tables: dict[str, TableData] = field(default_factory=dict)  # by data file path
    sources: dict[str, str] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: Names of declarations that failed to parse, in any file read: already reported.
    broken: set[str] = field(default_factory=set)
    #: A `use` whose vocabulary could not be loaded: which names it declares is unknown.
    incomplete: bool = False

    @property
    def digest(self) -> str:
        """sha256 over every text read, in reading order: the same file with equal digests is the same program."""
        digest = hashlib.sha256()
        for text in [*self.sources.values(), *(table.text for table in self.tables.values())]:
            digest.update(text.encode("utf-8") + b"\0")
        return digest.hexdigest()


def relative(path: Path) -> str:
    """Show paths relative to the working directory when they are under it, as authors typed them."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def table_path(table: s.TableDecl, declared_in: Path) -> Path:
    """The data file of a table: its `from "..."` path, relative to the file that declares it."""
    return Path(relative((declared_in.parent / table.source).resolve()))


class Loader:
    """Reads and parses sources: unsaved editor text (`overlay`) first, then the disk.

    Thread-safe; its parse cache holds only deterministic values keyed by content.
    """

    def __init__(self, overlay: Mapping[str, str] | None = None):
        self.overlay = {str(Path(k).resolve()): v for k, v in (overlay or {}).items()}
        self._parsed: dict[tuple[str, str], ParseResult] = {}
        self._lock = threading.Lock()

    def read(self, path: Path, preloaded: Mapping[str, str] | None = None) -> str:
        """The text of a file; raises OSError when there is none."""
        text = (preloaded or {}).get(str(path))
        if text is None and self.overlay:
            text = self.overlay.get(str(path.resolve()))
        return text if text is not None else path.read_text(encoding="utf-8")

    def parse(self, text: str, key: str) -> ParseResult:
        """Parse once per (file name, content): diagnostics carry the name, so both are the key."""
        cache_key = (key, hashlib.sha256(text.encode("utf-8")).hexdigest())
        cached = self._parsed.get(cache_key)
        if cached is None:
            cached = parse(text, key)
            with self._lock:
                if len(self._parsed) >= PARSE_CACHE_SIZE:  # an editor parses every keystroke: stay bounded
                    self._parsed.pop(next(iter(self._parsed)))
                cached = self._parsed.setdefault(cache_key, cached)
        return cached

    def gather(self, path: Path, preloaded: Mapping[str, str] | None = None) -> SourceUnit:
        """A file and everything it reads, as one unit (see the module docstring)."""
        return _Gathering(self, preloaded).run(Path(path))


def _nearby_file(path: Path, kind: str) -> str | None:
    """A did-you-mean for a mistyped file path: the nearest file in that folder with the path's own
    suffix or the suffix the file must have (`kind`: `.vocab` for `use`, `.json` for a table), so a
    mistyped suffix (`trade.vocb`) is caught as well as a mistyped stem."""
    from engine.errors import did_you_mean

    folder, suffixes = path.parent, {path.suffix, kind}
    try:
        candidates = [f.name for f in folder.iterdir() if f.suffix in suffixes] if folder.is_dir() else []
    except OSError:
        candidates = []
    return did_you_mean(path.name, candidates)


def _missing_use_help(path: Path) -> str:
    """The help of a `use` whose file cannot be read: the nearby vocabulary it may mean, and the rule."""
    hint = _nearby_file(path, ".vocab")
    base = "check the path; `use` paths are relative to the file that uses them"
    return f"{hint} ({base})" if hint else base


class _Gathering:
    """One walk over a file, its vocabularies and its tables."""

    def __init__(self, loader: Loader, preloaded: Mapping[str, str] | None):
        self.loader = loader
        self.preloaded = preloaded
        self.unit: SourceUnit

    def run(self, path: Path) -> SourceUnit:
        self.unit = SourceUnit(path, None)
        self.unit.root = self._load(path, None)
        if self.unit.root is not None:
            self._gather(self.unit.root, path, [str(path)], set())
        return self.unit

    def _error(self, code: str, message: str, span: Span, help: str) -> None:
        self.unit.diagnostics.append(Diagnostic.at(code, message, span, help))

    def _load(self, path: Path, used_at: Span | None) -> s.SourceFile | None:
        key = str(path)
        try:
            text = self.loader.read(path, self.preloaded)
        except OSError as exc:
            self._error(
                "file-not-found",
                f"cannot read `{path}`: {exc.strerror}",
                used_at or Span(key, 0, 0, 0, 0),
                _missing_use_help(path) if used_at else "check the path",
            )
            return None
        except UnicodeDecodeError as exc:  # reported like any other character the lexer cannot read
            data = path.read_bytes()
            self.unit.sources[key] = data.decode("utf-8", "replace")
            line, column = strictjson.position(
                data[: exc.start].decode("utf-8"), len(data[: exc.start].decode("utf-8"))
            )
            self._error(
                "syntax",
                f"the file is not UTF-8 text: byte 0x{data[exc.start]:02x} cannot start or continue a character",
                Span(key, line, column, line, column + 1),
                "save the file as UTF-8 (policies, vocabularies and tables are always UTF-8)",
            )
            return None
        self.unit.sources[key] = text
        result = self.loader.parse(text, key)
        self.unit.diagnostics.extend(result.diagnostics)
        self.unit.broken.update(result.broken)
        self.unit.incomplete = self.unit.incomplete or result.broken_use
        return result.tree

    def _gather(self, tree: s.SourceFile, path: Path, chain: list[str], seen: set[str]) -> None:
        """Collect declarations from a file and, depth first, the vocabularies it uses."""
        seen.add(str(path))
        for item in tree.items:
            if isinstance(item, s.Use):
                self._follow_use(item, path, chain, seen)
                continue
            self.unit.items.append((item, path))
            if isinstance(item, s.TableDecl):
                self._read_table(table_path(item, path))

    def _follow_use(self, use: s.Use, path: Path, chain: list[str], seen: set[str]) -> None:
        target = (path.parent / use.path).resolve() if not Path(use.path).is_absolute() else Path(use.path)
        target = Path(relative(target))
        if str(target) in chain:
            self._error(
                "cyclic-use",
                f"`{use.path}` is already being used further up: " + " -> ".join([*chain, str(target)]),
                use.span,
                "remove one of the `use` lines",
            )
            return
        if str(target) in seen:
            return  # a vocabulary reached twice (a diamond) is read once
        if len(chain) > limits.MAX_USE_DEPTH:  # each level is a few frames of recursion here
            self.unit.incomplete = True
            self.unit.diagnostics.append(
                limits.too_deep(
                    f"vocabularies use each other more than {limits.MAX_USE_DEPTH} levels deep",
                    use.span,
                    "have the policy use the vocabularies it needs directly",
                )
            )
            return
        tree = self._load(target, use.span)
        if tree is None:  # not found, not UTF-8 or no header: reported once, its names unknown
            self.unit.incomplete = True
            return
        if tree.header.kind != "vocabulary":
            self.unit.incomplete = True
            self._error(
                "use-not-vocabulary",
                f"`{use.path}` is a policy, not a vocabulary",
                use.span,
                'move the shared declarations into a file that starts with `vocabulary "ID"`',
            )
            return
        self._gather(tree, target, [*chain, str(target)], seen)

    def _read_table(self, data_path: Path) -> None:
        key = str(data_path)
        if key in self.unit.tables:
            return
        try:
            data = (self.preloaded or {}).get(key) or self.loader.overlay.get(str(data_path.resolve()))
            raw_bytes = data.encode("utf-8") if data is not None else data_path.read_bytes()
        except OSError as exc:
            hint = _nearby_file(data_path, ".json")
            self.unit.tables[key] = TableData(
                problem=("the file", f"cannot be read ({exc.strerror})"),
                help=f"{hint} (table paths are relative to the file that declares the table)"
                if hint
                else None,
            )
            return
        try:  # the strict reader: repeated keys, bad UTF-8, limits, located in the table file
            raw = strictjson.parse(raw_bytes, key, strictjson.TABLES)
        except strictjson.JsonError as exc:
            # Reported at the `table` declaration, never quoting the file: a file that is not
            # JSON may be anything (`from "/etc/passwd"`), and its lines are not shown.
            where = f"line {exc.line} column {exc.column}" if exc.line else "the file"
            why = f"not valid JSON ({exc.message})" if exc.code == "invalid-json" else exc.message
            self.unit.tables[key] = TableData(
                problem=(where, why), line=exc.line, column=exc.column, help=exc.help
            )
            return
        self.unit.tables[key] = TableData(raw=raw, text=raw_bytes.decode("utf-8"))
