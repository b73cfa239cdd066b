"""The policies a service serves, loaded as one snapshot and swapped atomically on reload.

A reload loads and checks every version again; if any fails `check`, the old snapshot keeps
serving and the failure is reported (`/readyz`, `/v1/admin/reload`, stderr). Requests read
`PolicySet.current` once, so a request never sees half of a reload.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from engine import api
from engine.errors import PolicyError, UsageError, render_all
from engine.registry import VersionEntry, read_versions

__all__ = ["LoadedVersion", "PolicySet", "ServedPolicy", "Snapshot"]


@dataclass(frozen=True)
class LoadedVersion:
    entry: VersionEntry
    policy: api.Policy
    data_hash: str

    def describe(self) -> dict[str, Any]:
        return {
            "version": self.entry.version,
            "status": self.entry.status,
            "effective": self.entry.effective.isoformat() if self.entry.effective else None,
            "ends": self.entry.ends.isoformat() if self.entry.ends else None,
            "content_hash": self.policy.content_hash,
            "data_hash": self.data_hash,
            "title": getattr(self.policy.info, "title", ""),
        }


@dataclass(frozen=True)
class ServedPolicy:
    """All versions of one policy id, by effective date."""

    id: str
    versions: tuple[LoadedVersion, ...]

    def choose(self, *, version: str | None, at: date | None) -> LoadedVersion:
        """By name (any status), else the in-force version on `at` (today by default)."""
        if version is not None:
            for loaded in self.versions:
                if version in (loaded.entry.version, loaded.entry.path.stem):
                    return loaded
            names = ", ".join(v.entry.version for v in self.versions)
            raise UsageError(f"`{self.id}` has no version `{version}`", f"its versions are {names}")
        when = at or date.today()
        in_force = [v for v in self.versions if v.entry.in_force_on(when)]
        if len(in_force) == 1:
            return in_force[0]
        if len(in_force) > 1:
            raise UsageError(
                f"several versions of `{self.id}` are in force on {when}",
                "name one with ?version=",
            )
        raise UsageError(
            f"no version of `{self.id}` is in force on {when}",
            "give ?at=DATE inside a version's window, or ?version=NAME",
        )


@dataclass(frozen=True)
class Snapshot:
    policies: dict[str, ServedPolicy]
    loaded_at: str
    fingerprint: tuple[tuple[str, int, int], ...] = ()


@dataclass
class ReloadOutcome:
    ok: bool
    errors: list[str] = field(default_factory=list)
    changed: bool = False
    attempted: bool = True  # false when nothing changed since the last attempt


def _version_files(root: Path) -> list[Path]:
    """The `.policy` files a root names: a file, a policy folder, or a folder of policy folders."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise UsageError(
            f"`{root}` does not exist", "give policy folders, `.policy` files, or a folder of them"
        )
    direct = sorted(root.glob("*.policy"))
    if direct:
        return direct
    return sorted(p for sub in sorted(root.iterdir()) if sub.is_dir() for p in sub.glob("*.policy"))


def _fingerprint(roots: Sequence[Path]) -> tuple[tuple[str, int, int], ...]:
    """Size and mtime of every file under the roots: a cheap test for "something changed"."""
    found = []
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            try:
                info = path.stat()
            except OSError:
                continue
            found.append((str(path), info.st_mtime_ns, info.st_size))
    return tuple(found)


def load_snapshot(roots: Sequence[Path]) -> Snapshot:
    """Load and check every version under the roots; raise `PolicyError`/`UsageError` on the first failure."""
    from engine.decisionlog.log import reference_data_hash
    from engine.decisionlog.records import now_text

    fingerprint = _fingerprint(roots)
    by_id: dict[str, list[LoadedVersion]] = {}
    for root in roots:
        files = _version_files(root)
        if not files:
            raise UsageError(f"`{root}` holds no `.policy` files")
        folders = {f.parent for f in files} if root.is_dir() else set()
        entries: list[VersionEntry] = []
        for folder in sorted(folders):
            entries += read_versions(folder)
        if root.is_file():
            loaded = api.load(root)
            info = loaded.info
            entries = [VersionEntry(root, loaded.id, loaded.version, info.effective, info.ends, info.status)]
        for entry in entries:
            policy = api.load(entry.path)
            version = LoadedVersion(entry, policy, reference_data_hash(policy.compiled.program.sources))
            by_id.setdefault(policy.id, []).append(version)
    policies = {
        pid: ServedPolicy(
            pid, tuple(sorted(vs, key=lambda v: (v.entry.effective or date.min, v.entry.version)))
        )
        for pid, vs in sorted(by_id.items())
    }
    return Snapshot(policies, now_text(), fingerprint)


class PolicySet:
    """The current snapshot, and reloads that replace it only when every version checks."""

    def __init__(self, roots: Sequence[Path]):
        self.roots = [Path(r) for r in roots]
        self.current = load_snapshot(self.roots)
        self.last_error: list[str] = []
        self._attempted = self.current.fingerprint
        self._lock = threading.Lock()

    def reload(self, *, only_if_changed: bool = False) -> ReloadOutcome:
        """Load everything again; on any failure keep serving the old snapshot and report why."""
        with self._lock:
            fingerprint = _fingerprint(self.roots)
            if only_if_changed and fingerprint == self._attempted:
                return ReloadOutcome(ok=not self.last_error, errors=self.last_error, attempted=False)
            self._attempted = fingerprint
            try:
                snapshot = load_snapshot(self.roots)
            except PolicyError as exc:
                self.last_error = [render_all(exc.diagnostics, exc.sources, color=False)]
                return ReloadOutcome(ok=False, errors=self.last_error)
            except UsageError as exc:
                self.last_error = [f"{exc}" + (f" ({exc.help})" if exc.help else "")]
                return ReloadOutcome(ok=False, errors=self.last_error)
            except (OSError, ValueError) as exc:
                self.last_error = [f"cannot reload: {exc}"]
                return ReloadOutcome(ok=False, errors=self.last_error)
            self.current = snapshot
            self.last_error = []
            return ReloadOutcome(ok=True, changed=True)
