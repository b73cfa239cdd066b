"""The server's state: open buffers over the disk, one index per policy folder, cached checks.

Diagnostics are exactly what `policy check` and `policy lint` report (the checker, the
conflict prover behind `policy check`, and the linter with the severities of the nearest
`[tool.policy.lint]`), computed on the text in the editor rather than on disk: the
server holds one `engine.api.Environment` whose loader reads the open buffers (its overlay)
before the disk and parses each text once, and whose cache of checked files (by content)
the linter shares. A vocabulary edit therefore re-checks exactly the policies that read it.

Paths are handed to the engine relative to the working directory when they are under it,
the form the checker itself uses for the vocabularies it follows, so that every file has
one name in the engine's source maps.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from engine.analysis import find_conflicts
from engine.api import Environment
from engine.checker import CheckResult
from engine.errors import Diagnostic, UsageError, has_errors
from engine.linter import LintConfig, lint
from engine.lsp.index import FolderIndex
from engine.runtime import CompiledPolicy

__all__ = ["Workspace", "universe_root"]

POLICY_SUFFIXES = (".policy", ".vocab")
#: Diagnostics passes after which the environment (and its caches) is replaced.
RECYCLE_PASSES = 400


def universe_root(path: Path) -> Path:
    """The folder that holds the policy folders and the shared vocabulary (`policies/`).

    A version lives in `policies/<id>/`, a shared vocabulary in `policies/shared/`; both
    are two levels down, as the linter assumes for a vocabulary's users.
    """
    return path.resolve().parent.parent


@dataclass
class _Checked:
    result: CheckResult
    inputs: dict[Path, int]  # every file the check read -> its generation then


class Workspace:
    """Thread-safe: the server computes diagnostics off the event loop, requests read the index."""

    def __init__(self, cwd: Path | None = None):
        self.cwd = (cwd or Path.cwd()).resolve()
        self.open_texts: dict[Path, str] = {}
        self._generation: dict[Path, int] = {}
        self._checked: dict[Path, _Checked] = {}
        self._indexes: dict[Path, FolderIndex] = {}
        self._configs: dict[Path, LintConfig] = {}
        self._conflicts: dict[tuple[Path, str], list[Diagnostic]] = {}
        self._disk: dict[Path, tuple[tuple[int, int], str]] = {}  # path -> ((mtime, size), text)
        # The engine's entry object: one loader (its overlay is the open buffers, its parse cache
        # spares unchanged files) and the cache of checked files by content, shared with the linter.
        self.environment = Environment()
        self._checking = threading.RLock()
        self._passes = 0
        self.lock = threading.RLock()

    # -- buffers -------------------------------------------------------------------
    def set_text(self, path: Path, text: str | None) -> None:
        """An editor opened or changed a file (text), or closed it (None: the disk is read again)."""
        path = path.resolve()
        with self.lock:
            if text is None:
                self.open_texts.pop(path, None)
            else:
                self.open_texts[path] = text
            self.touch(path)

    def touch(self, path: Path) -> None:
        """A file changed (in a buffer or on disk): results that read it are stale."""
        path = path.resolve()
        with self.lock:
            self._generation[path] = self._generation.get(path, 0) + 1

    def read(self, path: Path) -> str | None:
        path = path.resolve()
        text = self.open_texts.get(path)
        if text is not None:
            return text
        try:
            stat = path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            cached = self._disk.get(path)
            if cached is not None and cached[0] == stamp:
                return cached[1]
            disk = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        self._disk[path] = (stamp, disk)
        return disk

    # -- names -----------------------------------------------------------------------
    def engine_path(self, path: Path) -> Path:
        """The name the engine gives a file: relative to the working directory when under it."""
        try:
            return path.resolve().relative_to(self.cwd)
        except ValueError:
            return path.resolve()

    def absolute(self, file: str) -> Path:
        """A file named in a diagnostic or a source map, as an absolute path."""
        path = Path(file)
        return (path if path.is_absolute() else self.cwd / path).resolve()

    def in_workspace(self, folder: Path) -> bool:
        """Whether a folder is the project (the working directory) or inside it."""
        return folder == self.cwd or self.cwd in folder.parents

    # -- the index ------------------------------------------------------------------------
    def index(self, path: Path) -> FolderIndex:
        """The up-to-date index of the policy folder a file belongs to."""
        root = universe_root(path)
        with self.lock:
            folder = self._indexes.get(root)
            if folder is None:
                folder = self._indexes[root] = FolderIndex(root, self.read)
            folder.refresh()
            return folder

    # -- checking -------------------------------------------------------------------------
    def _overlay(self) -> None:
        """Point the environment's loader at the buffers as they are now (call with `_checking` held)."""
        with self.lock:
            self.environment.loader.overlay = {str(p): text for p, text in self.open_texts.items()}

    def check(self, path: Path) -> CheckResult:
        """`policy check` (without conflicts) on one file with the open buffers; cached by inputs."""
        key = path.resolve()
        with self.lock:
            cached = self._checked.get(key)
            if cached is not None and all(self._generation.get(p, 0) == g for p, g in cached.inputs.items()):
                return cached.result
            generations = dict(self._generation)
        with self._checking:
            self._overlay()
            result = self.environment.check_file(self.engine_path(key))
        inputs = {self.absolute(f): generations.get(self.absolute(f), 0) for f in result.sources}
        inputs.setdefault(key, generations.get(key, 0))
        with self.lock:
            self._checked[key] = _Checked(result, inputs)
        return result

    def _recycle(self) -> None:
        """The environment keeps every checked version of every file (one per keystroke, in an
        editor); a fresh one every so many passes keeps a long session's memory bounded."""
        self._passes += 1
        if self._passes % RECYCLE_PASSES == 0:
            with self._checking:
                self.environment = Environment()

    def conflicts(self, path: Path) -> list[Diagnostic]:
        """The conflicts `policy check` proves (a case on which two rules decide differently).

        The proof searches cases, which costs more than the rest of checking, so it is cached
        by the compiled policy's content hash and run after the other diagnostics are shown.
        """
        result = self.check(path)
        if result.program is None or has_errors(result.diagnostics):
            return []
        compiled = CompiledPolicy(result.program)
        key = (path.resolve(), compiled.content_hash)
        with self.lock:
            cached = self._conflicts.get(key)
        if cached is None:
            cached = find_conflicts(compiled)
            with self.lock:
                self._conflicts[key] = cached
        return cached

    def _lint_config(self, root: Path) -> LintConfig:
        if root not in self._configs:
            try:
                self._configs[root] = LintConfig.load(start=root)
            except UsageError:
                self._configs[root] = LintConfig()
        return self._configs[root]

    def reload_config(self) -> None:
        """pyproject.toml changed: read `[tool.policy.lint]` again."""
        with self.lock:
            self._configs.clear()

    def affected(self, changed: Path) -> list[Path]:
        """Open files whose diagnostics may change when `changed` changes: it, and its users."""
        changed = changed.resolve()
        root = universe_root(changed)
        out = []
        for path in sorted(self.open_texts):
            if universe_root(path) != root:
                continue
            cached = self._checked.get(path)
            if path == changed or cached is None or changed in cached.inputs:
                out.append(path)
        return out

    def diagnostics(self, files: Iterable[Path], *, conflicts: bool = True) -> dict[Path, list[Diagnostic]]:
        """check + lint findings for the given files, grouped by the file they are located in.

        Every given file gets an entry (possibly empty), so the caller can clear old ones.
        `conflicts=False` leaves out the conflict proofs (the server's first, fast pass).
        """
        files = sorted({f.resolve() for f in files if f.suffix in POLICY_SUFFIXES})
        out: dict[Path, list[Diagnostic]] = {f: [] for f in files}
        by_root: dict[Path, list[Path]] = {}
        for f in files:
            by_root.setdefault(universe_root(f), []).append(f)
        for root, group in by_root.items():
            if not self.in_workspace(root):
                # outside the project: `policy check` only; the linter would walk the folder
                # above the file for a vocabulary's users, which here may be any folder at all
                for f in group:
                    for finding in self.check(f).diagnostics:
                        out.setdefault(self.absolute(finding.file), []).append(finding)
                continue
            for f in group:
                self.check(f)  # records what each file reads, for `affected`
            with self._checking:  # one overlay for the whole run
                self._overlay()
                result = lint(
                    [self.engine_path(f) for f in group],
                    self._lint_config(root),
                    environment=self.environment,
                )
            for finding in result.findings:
                out.setdefault(self.absolute(finding.file), []).append(finding)
        self._recycle()
        if conflicts:
            for f in files:
                if f.suffix == ".policy":
                    for finding in self.conflicts(f):
                        out.setdefault(self.absolute(finding.file), []).append(finding)
        return out
