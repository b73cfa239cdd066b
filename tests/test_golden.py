"""Golden traces: every bundled case under every version of every bundled policy, pinned.

One JSON snapshot per (policy version, case), at
`tests/__snapshots__/test_golden/<policy>@<version>/<case>.json`, so a change in what the
engine decides or how it explains it shows up as a reviewable diff of exactly the cases
it moves. Choices (also in docs/policies/README.md, "Golden traces"):

- Each version is evaluated on its own effective date (no `at`), never today, so the
  snapshots do not drift as time passes or as dated table entries come into force.
- `content_hash` is left out: it changes with any edit to a source file, comments
  included, and would touch every snapshot. The generated policy pages record it.
- A case a version rejects is not skipped: the snapshot records the validation problems,
  so a version starting or stopping to accept a case is a visible diff too.

Update deliberately: `pytest tests/test_golden.py --snapshot-update`, and say in the commit
which behaviour changed and why.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.data import Snapshot, SnapshotCollection
from syrupy.extensions.json import JSONSnapshotExtension
from syrupy.location import PyTestLocation
from syrupy.types import PropertyFilter, PropertyMatcher, SerializableData, SerializedData, SnapshotIndex

import engine
from engine.errors import CaseError
from engine.registry import read_versions

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
CASES = ROOT / "fixtures" / "cases"


def policy_cases(policy_id: str) -> list[Path]:
    """The cases a policy is pinned on: its own folder `fixtures/cases/<policy>/` when it has one
    (a policy with its own case contract, like ear-734.4), else the shared cases."""
    own = CASES / policy_id
    return sorted((own if own.is_dir() else CASES).glob("*.json"))


def golden_ids() -> list[str]:
    """`<policy>@<version>/<case>` for every bundled policy version and case, in a stable order."""
    ids = []
    for folder in sorted(d for d in POLICIES.iterdir() if d.is_dir() and any(d.glob("*.policy"))):
        for entry in read_versions(folder):
            ids += [f"{folder.name}@{entry.version}/{case.stem}" for case in policy_cases(folder.name)]
    return ids


@functools.cache
def load_version(policy_id: str, version: str) -> engine.Policy:
    """Each version checked once per session (`engine.load` re-checks before its cache lookup)."""
    return engine.load(POLICIES / policy_id, version=version)


def golden_result(golden_id: str) -> dict[str, Any]:
    """The decision with its full trace (minus the content hash), or the case's validation problems."""
    version_id, case_name = golden_id.split("/")
    policy_id, version = version_id.split("@")
    (path,) = [case for case in policy_cases(policy_id) if case.stem == case_name]
    return snapshot_data(load_version(policy_id, version), json.loads(path.read_text(encoding="utf-8")))


def snapshot_data(policy: engine.Policy, case: dict[str, Any]) -> dict[str, Any]:
    """What a golden snapshot holds for one case under one version."""
    try:
        decision = policy.evaluate(case, trace=True)
    except CaseError as exc:
        return {
            "policy": policy.id,
            "version": policy.version,
            "invalid_case": [{"path": path, "reason": reason} for path, reason in exc.problems],
        }
    data: dict[str, Any] = decision.model_dump(mode="json")
    del data["content_hash"]
    return data


class GoldenTraceExtension(JSONSnapshotExtension):
    """One JSON file per parametrized id `<policy>@<version>/<case>`, nested by version.

    The file is the dump as `policy eval --format json` prints it (model field order, not
    sorted keys), so a snapshot reads like the command's output and diffs line by line.
    Snapshot names are the pytest test names (`test_golden[<id>]`) both when asserting and
    when reading files back, so syrupy can tell used snapshots from orphans.
    """

    def serialize(
        self,
        data: SerializableData,
        *,
        exclude: PropertyFilter | None = None,
        include: PropertyFilter | None = None,
        matcher: PropertyMatcher | None = None,
    ) -> SerializedData:
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def get_snapshot_name(cls, *, test_location: PyTestLocation, index: SnapshotIndex = 0) -> str:
        return test_location.snapshot_name_parametrized

    @classmethod
    def get_location(cls, *, test_location: PyTestLocation, index: SnapshotIndex) -> str:
        name = test_location.snapshot_name_parametrized
        golden_id = name[name.index("[") + 1 : -1]
        return str(Path(cls.dirname(test_location=test_location), f"{golden_id}.{cls.file_extension}"))

    @classmethod
    def discovery_dirname(cls, *, test_location: PyTestLocation) -> str:
        # Scan only this test's folder, whole: the snapshots are nested one level deeper
        # than syrupy's single-file layout, so its shared-folder discovery would miss them.
        return cls.dirname(test_location=test_location)

    def read_snapshot_collection(self, *, snapshot_location: str) -> SnapshotCollection:
        path = Path(snapshot_location)
        collection = SnapshotCollection(location=snapshot_location)
        collection.add(Snapshot(name=f"{path.parent.parent.name}[{path.parent.name}/{path.stem}]"))
        return collection

    @classmethod
    def matches_test_location(cls, *, test_location: PyTestLocation, snapshot_location: str) -> bool:
        if "[" not in test_location.snapshot_name_parametrized:  # another test file's snapshot
            return False
        return Path(snapshot_location) == Path(cls.get_location(test_location=test_location, index=0))


@pytest.fixture
def golden(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(GoldenTraceExtension)


@pytest.mark.parametrize("golden_id", golden_ids())
def test_golden(golden_id: str, golden: SnapshotAssertion) -> None:
    assert golden_result(golden_id) == golden


def test_golden_covers_every_version_and_case() -> None:
    """Guard the parametrization itself: an empty list would pass vacuously."""
    versions = {i.split("/")[0] for i in golden_ids()}
    expected = sum(len(policy_cases(v.split("@")[0])) for v in versions)
    assert len(golden_ids()) == expected > 0


def test_every_snapshot_belongs_to_a_version_and_case() -> None:
    """Orphans (a case or version removed or renamed) fail here even when pytest is given this file.

    syrupy finds unused snapshots only on a bare `pytest` run: nested one level deeper
    than its single-file layout, they escape its per-path bookkeeping.
    """
    folder = Path(__file__).parent / "__snapshots__" / "test_golden"
    expected = {f"{golden_id}.json" for golden_id in golden_ids()}
    orphans = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.json") if p.is_file())
    orphans = [name for name in orphans if name not in expected]
    assert not orphans, (
        f"snapshots with no current version and case: {orphans}; "
        "delete them (`pytest -k golden --snapshot-update` does) and commit saying why"
    )


def test_a_rejected_case_is_snapshotted_as_its_problems() -> None:
    """A case a version cannot accept pins the validation problems, not a skip."""
    folder = sorted(d for d in POLICIES.iterdir() if d.is_dir() and any(d.glob("*.policy")))[0]
    policy = load_version(folder.name, read_versions(folder)[0].version)
    data = snapshot_data(policy, {"$comment": "no facts at all"})
    assert set(data) == {"policy", "version", "invalid_case"}
    assert data["invalid_case"] and all(set(p) == {"path", "reason"} for p in data["invalid_case"])
