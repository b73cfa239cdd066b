"""PostgreSQL parity against a real server: append-only, every tamper class, kill -9 under load,
replay, and several writers sharing one log."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from log_tampering import CLASSES, EXPECTED, Raw, build_log, tamper
from pg_server import binaries, postgres_server

from benchmarks import service_harness as harness
from engine.decisionlog.backends import open_store
from engine.decisionlog.log import decision_record
from engine.decisionlog.verify import verify_log

TRIALS = 25  # per class in the suite; the SQLite tests and `benchmarks/service_load.py tamper` run 100


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    if binaries() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is required under CI: apt-get install postgresql (see .ci/run)")
        pytest.skip("PostgreSQL binaries not installed (apt-get install postgresql)")
    with postgres_server() as url:
        yield url


def database(server: str, name: str, template: str | None = None) -> str:
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    return server.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="module")
def base(server: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    folder = tmp_path_factory.mktemp("pgbase")
    url = database(server, "base")
    build_log(url, folder, records=48, checkpoint_every=8)
    return url, folder


def test_a_fresh_log_verifies_and_is_durable(base: tuple[str, Path]) -> None:
    url, folder = base
    with open_store(url) as store:
        assert verify_log(store, folder / "checkpoints").intact
        assert store.durability().durable and store.durability().settings["fsync"] == "on"


def test_the_database_refuses_update_delete_and_truncate(server: str, base: tuple[str, Path]) -> None:
    import psycopg

    url = database(server, "appendonly", template="base")
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in (
            "UPDATE decision_log.records SET kind = 'x' WHERE seq = 1",
            "UPDATE decision_log.bodies SET body = 'x' WHERE seq = 1",
            "DELETE FROM decision_log.records WHERE seq = 1",
            "DELETE FROM decision_log.bodies WHERE seq = 1",
            "DELETE FROM decision_log.personal",
            "TRUNCATE decision_log.records",
            "TRUNCATE decision_log.bodies CASCADE",
        ):
            with pytest.raises(psycopg.errors.RaiseException, match=r"append-only|retention"):
                conn.execute(statement)
    with open_store(url) as store:
        assert verify_log(store, base[1] / "checkpoints").intact


@pytest.mark.parametrize("kind", CLASSES)
def test_every_tampering_is_detected(base: tuple[str, Path], kind: str) -> None:
    """100 trials per class, each tampering inside a transaction that is rolled back afterwards."""
    import psycopg

    from engine.decisionlog.postgres import PostgresStore

    url, folder = base
    rng = random.Random(f"pg-{kind}")
    with open_store(url) as store:
        start = store.genesis()
    with psycopg.connect(url) as conn:
        for trial in range(TRIALS):
            first, _ = tamper(Raw(conn, postgres=True), kind, rng, start)
            report = verify_log(PostgresStore(url, connection=conn), folder / "checkpoints")
            conn.rollback()
            named = report.first
            assert named is not None and named.kind in EXPECTED[kind], (kind, trial, first, report.problems)
            if named.kind not in ("rewritten", "truncated"):
                assert named.seq == first


def test_kill_9_under_load_loses_nothing(server: str, tmp_path: Path) -> None:
    url = database(server, "crash")
    checkpoints = tmp_path / "checkpoints"
    extra = ["--checkpoints", str(checkpoints), "--signing-key", str(tmp_path / "key.pem")]
    report = harness.crash_trials(tmp_path, url, kills=2, clients=6, extra=extra, checkpoints=checkpoints)
    assert report.acked > 50 and report.missing == [] and report.verify_failures == []


def test_several_writers_share_one_chain(server: str) -> None:
    """Service workers in several processes each have their own connection; commits interleave."""
    url = database(server, "writers")
    open_store(url, create=True).close()
    import datetime

    def write(worker: int) -> None:
        with open_store(url) as store:
            for batch in range(10):
                store.append(
                    [
                        decision_record(
                            policy="p",
                            version="1",
                            content_hash="c",
                            data_hash="d",
                            evaluated_at=datetime.date(2021, 1, 1),
                            case={"w": worker, "b": batch, "i": i},
                            output={},
                            trace_json=b"{}",
                        )
                        for i in range(5)
                    ]
                )

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with open_store(url) as store:
        report = verify_log(store, None)
    assert report.intact and report.records == 200


def test_replay_is_identical_under_the_recorded_version(server: str, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    from test_service import DECIDE, bearer, make_config

    from engine import diff as d
    from engine.decisionlog.replay import replay
    from engine.service.app import create_app

    url = database(server, "replayed")
    config = make_config(tmp_path)
    config.store = open_store(url, create=True)
    config.log_url = url
    cases = sorted(harness.CASES_DIR.glob("*.json"))[:20]
    with TestClient(create_app(config)) as client:
        for path in cases:
            response = client.post(
                "/v1/policies/ear-742.7/decide?at=2021-01-01",
                content=path.read_bytes(),
                headers=bearer(DECIDE),
            )
            assert response.status_code == 200
    folder = harness.ROOT / "policies" / "ear-742.7"
    with open_store(url) as store:
        outcome = replay(store, d.resolve_spec(d.Spec.parse(f"{folder}@2020-10-06"), None), folder)
    assert outcome.same.identical == outcome.same.replayed == len(cases)
