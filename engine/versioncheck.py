"""Problems of a policy folder as a whole: its version files must agree with each other.

A folder such as `policies/ear-742.7/` holds one file per version, and the version that
decides is chosen by date from their headers (engine/registry.py). Three things made that
choice silently wrong, so each is an error here, reported by `policy check` for every folder
it checks and raised by `select_version` before it chooses:

* `broken-version`: a version file whose header cannot be read (empty, a syntax error in the
  header, not UTF-8). Skipping it would let the superseded version decide with exit 0.
* `wrong-policy`: a version file whose header names another policy than the folder's.
* `overlapping-versions`: two in-force versions whose windows share a day (`eval` refused
  those dates; now `check` says so first).

A folder is a *policy folder* when at least one of its `.policy` files names the folder
(`policy "ear-742.7"` in `ear-742.7/`); other folders (a folder of unrelated example
policies) are not checked as a whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import Diagnostic, Span

if TYPE_CHECKING:  # registry calls this module: no import back at run time
    from engine.registry import VersionEntry

__all__ = ["folder_diagnostics", "is_policy_folder", "policy_folders_of"]


def is_policy_folder(folder: Path, entries: list[VersionEntry]) -> bool:
    """Whether the folder holds versions of one policy (one of its files names the folder)."""
    return any(e.policy == folder.name for e in entries)


def _file_span(path: Path, line: int = 1) -> Span:
    return Span(str(path), line, 1, line, 1)


def folder_diagnostics(folder: Path, entries: list[VersionEntry]) -> list[Diagnostic]:
    """Every folder-level problem of a policy folder (none for a folder that is not one), from its
    entries (`registry.read_versions(folder)`)."""
    found: list[Diagnostic] = []
    named = is_policy_folder(folder, entries)
    for entry in entries:
        if entry.status == "unreadable":
            found.append(
                Diagnostic.at(
                    "broken-version",
                    f"`{entry.path.name}` cannot be read as a version: {entry.problem or 'its header does not parse'}",
                    _file_span(entry.path, entry.problem_line or 1),
                    "fix the file (`policy check` shows every problem in it); until then no version of "
                    f"`{folder.name}` is chosen by date, so a superseded one cannot decide in its place",
                )
            )
        elif named and entry.policy != folder.name:
            found.append(
                Diagnostic.at(
                    "wrong-policy",
                    f"`{entry.path.name}` is in the folder of `{folder.name}` but its header names `{entry.policy}`",
                    _file_span(entry.path, entry.header_line or 1),
                    f'write `policy "{folder.name}"`, or move the file to the folder of `{entry.policy}`',
                )
            )
    if named:
        found += _overlaps([e for e in entries if e.policy == folder.name])
    return found


def _overlaps(entries: list[VersionEntry]) -> list[Diagnostic]:
    in_force = sorted(
        (e for e in entries if e.status == "in-force" and e.effective is not None),
        key=lambda e: (e.effective or date.min, e.version),
    )
    found = []
    for i, first in enumerate(in_force):
        for second in in_force[i + 1 :]:
            assert first.effective is not None and second.effective is not None
            if second.effective > (first.ends or date.max):
                break  # sorted by start: no later version can overlap `first` either
            found.append(
                Diagnostic.at(
                    "overlapping-versions",
                    f"versions `{first.version}` ({first.window}) and `{second.version}` ({second.window}) "
                    f"are both in force from {second.effective}",
                    _file_span(second.path, second.effective_line or 1),
                    f"give `{first.version}` an `ends` date before {second.effective}, or make one of them a draft",
                )
            )
    return found


def policy_folders_of(files: Iterable[Path]) -> list[Path]:
    """The distinct folders of the given `.policy` files, in a stable order."""
    return list(dict.fromkeys(f.parent for f in files if f.suffix == ".policy"))
