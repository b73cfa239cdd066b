"""A `Policy` pickles (process pools, Dask, Spark): it travels as its source texts and content hash,
and unpickling recompiles the very same version, even where the policy files do not exist."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from multiprocessing import get_context
from pathlib import Path

import pytest

import engine
from tests.conftest import ROOT

CASE = json.loads((ROOT / "fixtures/cases/water-cannon-hong-kong-police.json").read_text(encoding="utf-8"))


def _decide(policy: engine.Policy) -> str:
    return policy.evaluate(CASE, trace=True).model_dump_json()


def test_round_trip_in_process() -> None:
    policy = engine.load(ROOT / "policies" / "ear-742.7", version="2020-10-06", at=date(2021, 1, 1))
    copy = pickle.loads(pickle.dumps(policy))
    assert copy.content_hash == policy.content_hash
    assert copy.at == date(2021, 1, 1)
    assert _decide(copy) == _decide(policy)


def test_a_worker_without_the_files_rebuilds_from_the_texts(tmp_path: Path) -> None:
    """The pickle is self-contained: the policy tree is deleted before another process unpickles it."""
    tree = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", tree)
    policy = engine.load(tree / "ear-742.7", version="2020-10-06")
    blob = tmp_path / "policy.pickle"
    blob.write_bytes(pickle.dumps(policy))
    expected = _decide(policy)
    shutil.rmtree(tree)
    code = (
        "import json, pickle, sys\n"
        f"policy = pickle.loads(open({str(blob)!r}, 'rb').read())\n"
        f"case = json.loads(open({str(ROOT / 'fixtures/cases/water-cannon-hong-kong-police.json')!r}).read())\n"
        "print(policy.content_hash)\n"
        "print(policy.evaluate(case, trace=True).model_dump_json())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "POLICY_ENGINE_NO_CACHE": "1"},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    content_hash, decided = proc.stdout.splitlines()
    assert content_hash == policy.content_hash
    assert json.loads(decided) == json.loads(expected)


def _in_worker(policy: engine.Policy) -> str:
    return policy.evaluate(CASE).value("license_review") or ""


def test_a_process_pool_takes_the_policy_itself() -> None:
    policy = engine.load(ROOT / "policies" / "ear-742.7", version="2020-10-06")
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        assert list(pool.map(_in_worker, [policy, policy])) == ["not_favorable", "not_favorable"]


def test_a_pickle_that_does_not_rebuild_to_its_hash_is_refused(tmp_path: Path) -> None:
    from engine.api import _unpickle

    policy = engine.load(ROOT / "policies" / "ear-742.7", version="2020-10-06")
    function, (path, sources, _content_hash, at) = policy.__reduce__()
    assert function is _unpickle
    assert path in sources
    with pytest.raises(engine.UsageError, match="does not rebuild to its content hash 000000000000"):
        _unpickle(path, sources, "0" * 64, at)
