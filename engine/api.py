"""The entry object and its shortcuts: `Environment`, `load` (check + compile, cached by content), `check`.

`load` accepts a `.policy` file or a policy folder (then `version=` or `at=` picks the
version). Compiled policies are cached by path and the content hash of every file read
(`engine.loader.SourceUnit.digest`), so loading the same unchanged file twice compiles once.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from engine.checker import CheckResult, check_unit
from engine.errors import Diagnostic, PolicyError, UsageError, has_errors
from engine.loader import Loader
from engine.models import Decision
from engine.registry import VersionEntry, read_versions, select_version
from engine.runtime import CompiledPolicy, RawTrace, Resolution

#: A date as the API takes it: a `datetime.date`, or its ISO form `YYYY-MM-DD`.
DateLike = date | str


def as_date(value: DateLike | None) -> date | None:
    """A date from a `date` or an ISO `YYYY-MM-DD` string; a bad string is a `UsageError`, not a traceback."""
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise UsageError(f"`{value}` is not a date", "write the date as YYYY-MM-DD") from None


@dataclass(frozen=True)
class Policy:
    """A loaded policy version: evaluate cases with it. Immutable; share it between threads."""

    compiled: CompiledPolicy
    path: Path
    warnings: tuple[Diagnostic, ...] = ()
    at: date | None = None  # the date it was loaded for: the default evaluation date of `evaluate`

    @property
    def id(self) -> str:
        return self.compiled.info.id

    @property
    def version(self) -> str:
        return self.compiled.info.version

    @property
    def content_hash(self) -> str:
        return self.compiled.content_hash

    @property
    def info(self) -> Any:
        return self.compiled.info

    def evaluate(
        self, case: Mapping[str, Any], *, trace: bool = False, at: DateLike | None = None
    ) -> Decision:
        """Decide one case (a dict of facts). Raises `CaseError` for invalid input.

        Reference tables are read as of `at`, else the date given to `load`, else the version's
        effective date.
        """
        return self.compiled.evaluate(case, trace=trace, at=as_date(at) or self.at)

    def decide_trusted(self, case: Mapping[str, Any], *, at: DateLike | None = None) -> Resolution:
        """The raw path for cases your own code produced and vouches for: no validation, no models.

        Returns the cached `Resolution` (decision values, obligations, fired rules). Sets may be
        lists, dates must be `datetime.date`. Undefined for invalid input: use `evaluate` then.
        """
        return self.compiled.decide_trusted(case, at=as_date(at) or self.at)

    def explain_trusted(self, case: Mapping[str, Any], *, at: DateLike | None = None) -> RawTrace:
        """Every condition's value for a trusted case, before building the pydantic trace."""
        return self.compiled.explain_trusted(case, at=as_date(at) or self.at)

    def validate(self, case: Mapping[str, Any]) -> dict[str, Any]:
        """Validate a case without deciding it; returns the normalised facts."""
        return self.compiled.validate(case)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the source texts and their content hash; unpickling recompiles (process pools,
        Dask, Spark). The compiled evaluator holds generated code, which cannot be pickled, and
        sending the sources means a worker needs no access to the policy files."""
        sources = {str(Path(name).resolve()): text for name, text in self.compiled.program.sources.items()}
        return (_unpickle, (str(self.path.resolve()), sources, self.content_hash, self.at))

    def schema(self) -> dict[str, Any]:
        """JSON Schema (2020-12) of the case input: it accepts exactly the cases `evaluate` accepts.

        Top-level keys starting with `$` are notes the engine ignores, so the schema allows
        them; dates must also pass the `date` format, so validate with format checking on
        (tests/test_schema.py holds the schema and the engine to the same verdict).
        """
        body = self.compiled.case_model.model_json_schema()
        schema: dict[str, Any] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$comment": "Validate with format checking on (dates: format date). Keys starting with $ are notes.",
            **body,
        }
        schema["title"] = f"Case for {self.id} {self.version}"
        schema["patternProperties"] = {"^[$]": {}}
        return schema


def resolve_path(
    path: str | Path, *, version: str | None = None, at: date | None = None, loader: Loader | None = None
) -> Path:
    """A `.policy` file as given, or the chosen version file of a policy folder."""
    target = Path(path)
    if target.is_dir():
        return select_version(target, version=version, at=at, loader=loader).path
    if not target.exists():
        raise UsageError(f"`{target}` does not exist", "give a `.policy` file or a policy folder")
    return target


@contextmanager
def _no_gc_pauses() -> Iterator[None]:
    """Parsing builds hundreds of thousands of small objects that all stay alive; the cyclic
    collector would scan them again and again (half the load time of a 10,000-rule policy).
    Nothing built here is cyclic garbage, so collection waits until loading is done."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Environment:
    """The configured entry point that the CLI, the tools and an embedding application hold.

    In the spirit of Jinja's `Environment`: it owns the loading stage (`loader`, which reads
    files, follows `use`, reads tables and parses each source once) and the one cache of
    compiled policies, keyed by the policy file and the content hash of everything it read,
    so loading an unchanged version twice checks and compiles once, and an edit to any file
    it reads (a vocabulary, a table) is seen on the next load. Thread-safe.
    `engine.load(...)` and `engine.check(...)` are this class's methods on a shared default.
    """

    def __init__(self, *, overlay: Mapping[str, str] | None = None):
        self.loader = Loader(overlay)
        self._policies: dict[tuple[str, str], Policy] = {}
        self._checked: dict[tuple[str, str], CheckResult] = {}
        self._lock = threading.Lock()

    def load(self, path: str | Path, *, version: str | None = None, at: DateLike | None = None) -> Policy:
        """Check and compile a policy version; raises `PolicyError` with every diagnostic if it has errors.

        `at` (a date or `YYYY-MM-DD`) picks the version in force on that day and dates the tables.
        """
        when = as_date(at)
        file = resolve_path(path, version=version, at=when, loader=self.loader)
        with _no_gc_pauses():
            policy = self._load_file(file)
        return policy if when is None else replace(policy, at=when)

    def _load_file(self, file: Path) -> Policy:
        key, result = self._check(file)
        cached = self._policies.get(key)
        if cached is not None:
            return cached
        if result.program is None or has_errors(result.diagnostics):
            raise PolicyError(result.diagnostics, result.sources)
        policy = Policy(CompiledPolicy(result.program), file, tuple(result.diagnostics))
        with self._lock:
            return self._policies.setdefault(key, policy)

    def check_file(self, path: str | Path) -> CheckResult:
        """Parse and check one file with what it uses (no conflict search: see `check`).

        Results are cached like compiled policies, by file and content; each call gets its own copy.
        """
        with _no_gc_pauses():
            _, cached = self._check(Path(path))
        return CheckResult(cached.program, list(cached.diagnostics), dict(cached.sources))

    def _check(self, path: Path) -> tuple[tuple[str, str], CheckResult]:
        """The cache key of a file as it is now on disk, and its (shared, cached) check result."""
        unit = self.loader.gather(path)
        key = (str(path.resolve()), unit.digest)
        cached = self._checked.get(key)
        if cached is None:
            cached = check_unit(unit)
            with self._lock:
                cached = self._checked.setdefault(key, cached)
        return key, cached

    def versions(self, folder: str | Path) -> list[VersionEntry]:
        """The versions of a policy folder, read by this environment's loader."""
        return read_versions(Path(folder), self.loader)

    def check(self, paths: Iterable[str | Path]) -> list[CheckResult]:
        """Check files and folders; one result per file, each with all its diagnostics, conflicts included."""
        from engine.analysis import find_conflicts

        results = []
        for file in policy_files(paths):
            result = self.check_file(file)
            if result.program is not None and not has_errors(result.diagnostics):
                result.diagnostics.extend(find_conflicts(CompiledPolicy(result.program)))
            results.append(result)
        return results


#: The environment behind the one-line shortcuts `engine.load` and `engine.check`.
default_environment = Environment()


def load(path: str | Path, *, version: str | None = None, at: DateLike | None = None) -> Policy:
    """Check and compile a policy version with the default environment (see `Environment.load`)."""
    return default_environment.load(path, version=version, at=at)


def check(paths: Iterable[str | Path]) -> list[CheckResult]:
    """Check files and folders with the default environment (see `Environment.check`)."""
    return default_environment.check(paths)


_unpickled: dict[str, Policy] = {}
_unpickle_lock = threading.Lock()


def _unpickle(path: str, sources: dict[str, str], expected_hash: str, at: date | None) -> Policy:
    """Rebuild a pickled policy: from its own files when they are unchanged, else from the texts it carried.

    The texts are written into a temporary folder with their relative layout (so `use` and
    table paths resolve as they did), compiled, and the content hash checked: the result is
    the very version that was pickled, or an error. Each version is rebuilt once per process.
    """
    cached = _unpickled.get(expected_hash)
    if cached is None:
        cached = _from_own_files(Path(path), expected_hash) or _from_texts(Path(path), sources, expected_hash)
        with _unpickle_lock:
            cached = _unpickled.setdefault(expected_hash, cached)
    return cached if at is None else replace(cached, at=at)


def _from_own_files(path: Path, expected_hash: str) -> Policy | None:
    try:
        policy = load(path)
    except (OSError, PolicyError, UsageError):
        return None
    return policy if policy.content_hash == expected_hash else None


def _from_texts(path: Path, sources: dict[str, str], expected_hash: str) -> Policy:
    import os
    import tempfile

    root = Path(os.path.commonpath([str(Path(name).parent) for name in sources] + [str(path.parent)]))
    with tempfile.TemporaryDirectory(prefix="policy-unpickle-") as scratch:
        for name, text in sources.items():
            target = Path(scratch) / Path(name).relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        policy = load(Path(scratch) / path.relative_to(root))
    if policy.content_hash != expected_hash:
        raise UsageError(
            f"the pickled policy `{path}` does not rebuild to its content hash {expected_hash[:12]}",
            "pickle it again with this version of the engine",
        )
    return replace(policy, path=path)


def policy_files(paths: Iterable[str | Path]) -> list[Path]:
    """Every `.policy` and `.vocab` file under the given files and folders, in a stable order."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in (".policy", ".vocab") and p.is_file())
        else:
            found.append(path)
    return list(dict.fromkeys(found))
