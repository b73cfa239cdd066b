"""Policy folders and their versions: effective dates, status, content hashes, choosing by date.

A policy folder (`policies/ear-742.7/`) holds one `.policy` file per version. Only
`in-force` versions are chosen by date; drafts and proposals only when named.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from engine.errors import VersionError
from engine.loader import Loader


@dataclass(frozen=True)
class VersionEntry:
    """What the header of one version file says, read without checking the whole file."""

    path: Path
    policy: str
    version: str
    effective: date | None
    ends: date | None
    status: str  # the header's status, or "unreadable" when the header cannot be read
    problem: str | None = None  # why it is unreadable (the first problem found)
    problem_line: int = 0
    header_line: int = 0  # where `policy "id"` is written
    effective_line: int = 0

    def in_force_on(self, when: date) -> bool:
        if self.status != "in-force" or self.effective is None:
            return False
        return self.effective <= when and (self.ends is None or when <= self.ends)

    @property
    def window(self) -> str:
        return f"{self.effective or '?'} to {self.ends or 'open'}"


def read_versions(folder: Path, loader: Loader | None = None) -> list[VersionEntry]:
    """Every version file in a policy folder, ordered by effective date, then name.

    The files are read and parsed by the loading stage (`loader`, a fresh one by default), so
    an environment parses a version once for choosing it and checking it.
    """
    loader = loader or Loader()
    entries = []
    for path in sorted(folder.glob("*.policy")):
        try:
            text = loader.read(path)
        except (OSError, UnicodeDecodeError) as exc:
            reason = (
                f"it is not UTF-8 text ({exc.reason})" if isinstance(exc, UnicodeDecodeError) else str(exc)
            )
            entries.append(VersionEntry(path, folder.name, path.stem, None, None, "unreadable", reason))
            continue
        result = loader.parse(text, str(path))
        tree = result.tree
        if tree is None:
            first = min(result.diagnostics, key=lambda d: (d.line, d.column), default=None)
            reason = (
                f"line {first.line}: {first.message}"
                if first and first.line
                else (first.message if first else "")
            )
            line = first.line if first else 0
            entries.append(VersionEntry(path, folder.name, path.stem, None, None, "unreadable", reason, line))
            continue
        header = tree.header
        fields = {f.name: f.value for f in header.fields}
        effective, ends = fields.get("effective"), fields.get("ends")
        effective_field = header.get("effective")
        entries.append(
            VersionEntry(
                path=path,
                policy=header.id,
                version=str(fields.get("version", path.stem)),
                effective=effective if isinstance(effective, date) else None,
                ends=ends if isinstance(ends, date) else None,
                status=str(fields.get("status", "")),
                header_line=header.span.line,
                effective_line=effective_field.span.line if effective_field else header.span.line,
            )
        )
    return sorted(entries, key=lambda e: (e.effective or date.min, e.version))


def select_version(
    folder: Path,
    *,
    version: str | None = None,
    at: date | None = None,
    today: date | None = None,
    loader: Loader | None = None,
) -> VersionEntry:
    """The version to evaluate: named, in force on a date, or in force today (else the latest in force)."""
    entries = read_versions(folder, loader)
    if not entries:
        raise VersionError(
            f"`{folder}` holds no `.policy` files", "a policy folder holds one file per version"
        )
    if version is not None:
        return _named(entries, version, folder)
    _refuse_broken(folder, entries)
    when = at or today or date.today()
    in_force = [e for e in entries if e.in_force_on(when)]
    if len(in_force) == 1:
        return in_force[0]
    if len(in_force) > 1:
        names = ", ".join(e.version for e in in_force)
        raise VersionError(
            f"several versions of `{folder.name}` are in force on {when}: {names}",
            "their effective dates overlap; fix the `ends` dates or name one with --version",
        )
    if at is None:
        published = [e for e in entries if e.status == "in-force"]
        if published:
            return published[-1]
    raise VersionError(
        _no_version_message(folder, entries, when),
        "name a date inside a window, or use --version",
        code="no-version-in-force",
    )


def _refuse_broken(folder: Path, entries: list[VersionEntry]) -> None:
    """Choosing by date is only sound when every version file's header is readable and names the
    folder's policy: a broken current version must not let the superseded one decide."""
    from engine.versioncheck import folder_diagnostics  # here: versioncheck imports this module

    problems = [
        d for d in folder_diagnostics(folder, entries) if d.code in ("broken-version", "wrong-policy")
    ]
    if problems:
        first = problems[0]
        raise VersionError(
            f"{first.location}: {first.message}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            first.help,
        )


def _named(entries: list[VersionEntry], version: str, folder: Path) -> VersionEntry:
    for entry in entries:
        if version in (entry.version, entry.path.stem):
            return entry
    names = ", ".join(e.version for e in entries)
    raise VersionError(f"`{folder.name}` has no version `{version}`", f"its versions are {names}")


def _no_version_message(folder: Path, entries: list[VersionEntry], when: date) -> str:
    windows = "; ".join(f"{e.version} ({e.window})" for e in entries if e.status == "in-force")
    first = min((e.effective for e in entries if e.status == "in-force" and e.effective), default=None)
    if first is not None and when < first:
        return f"no version of `{folder.name}` is in force on {when}: the first takes effect on {first} ({windows})"
    return f"no version of `{folder.name}` is in force on {when} (in-force versions: {windows or 'none'})"
