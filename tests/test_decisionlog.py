"""The decision log: Merkle trees against RFC 6962's definition, append-only by the database,
every class of tampering detected over random trials, erasure, retention and holds."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from log_tampering import CLASSES, EXPECTED, Raw, build_log, tamper

from engine.decisionlog import merkle
from engine.decisionlog.backends import open_store
from engine.decisionlog.checkpoints import CheckpointWriter, Signer, read_checkpoints
from engine.decisionlog.log import erase, export_records, hold, inclusion_proof, latest_checkpoint, prune
from engine.decisionlog.records import commitment, genesis
from engine.decisionlog.store import LogError, Pending
from engine.decisionlog.verify import verify_log

ROOT = Path(__file__).resolve().parent.parent
TRIALS = 100


def rfc6962_root(leaves: list[bytes]) -> bytes:
    """MTH exactly as RFC 6962 section 2.1 defines it (recursive), for comparison."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return merkle.node_hash(rfc6962_root(leaves[:k]), rfc6962_root(leaves[k:]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=8), min_size=1, max_size=40, unique=True), st.data())
def test_merkle_root_and_inclusion_match_rfc6962(items: list[bytes], data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(i) for i in items]
    root = rfc6962_root(leaves)
    assert merkle.root_of(leaves) == root
    index = data.draw(st.integers(0, len(leaves) - 1))
    path = merkle.inclusion_path(leaves, index)
    assert merkle.verify_inclusion(leaves[index], index, len(leaves), path, root)
    assert not merkle.verify_inclusion(merkle.leaf_hash(b"other"), index, len(leaves), path, root)
    if len(leaves) > 1:
        assert not merkle.verify_inclusion(leaves[index], (index + 1) % len(leaves), len(leaves), path, root)


@pytest.fixture(scope="module")
def base_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("base")
    build_log(str(folder / "log.db"), folder, records=64, checkpoint_every=8)
    return folder


def copy_log(base: Path, target: Path) -> str:
    target.mkdir(exist_ok=True)
    shutil.copy(base / "log.db", target / "log.db")
    return str(target / "log.db")


def test_a_fresh_log_verifies(base_log: Path) -> None:
    with open_store(str(base_log / "log.db")) as store:
        report = verify_log(store, base_log / "checkpoints")
    assert report.intact, report.problems
    assert report.records == 64 and report.checkpoints >= 8 and report.newest_checkpoint == 64


def test_the_database_refuses_update_and_delete(base_log: Path, tmp_path: Path) -> None:
    url = copy_log(base_log, tmp_path)
    db = sqlite3.connect(url)
    for statement in (
        "UPDATE records SET kind = 'x' WHERE seq = 1",
        "UPDATE bodies SET body = x'00' WHERE seq = 1",
        "DELETE FROM records WHERE seq = 1",
        "DELETE FROM bodies WHERE seq = 1",
        "DELETE FROM personal",
        "UPDATE personal SET value = 'null'",
        "DELETE FROM log_meta",
    ):
        with pytest.raises(sqlite3.IntegrityError, match=r"append-only|retention"):
            db.execute(statement)
    db.close()
    with open_store(url) as store:
        assert verify_log(store, base_log / "checkpoints").intact


@pytest.mark.parametrize("kind", CLASSES)
def test_every_tampering_is_detected_and_named(kind: str, base_log: Path, tmp_path: Path) -> None:
    """100 random trials per class: verify exits 1, names the kind and the first bad record."""
    rng = random.Random(f"{kind}-trials")
    with open_store(str(base_log / "log.db")) as store:
        start = store.genesis()
    for trial in range(TRIALS):
        url = copy_log(base_log, tmp_path / str(trial % 3))
        raw = Raw(sqlite3.connect(url, isolation_level=None), postgres=False)
        first, raw_size = tamper(raw, kind, rng, start)
        raw.done()
        with open_store(url) as store:
            report = verify_log(store, base_log / "checkpoints")
        assert not report.intact, f"{kind} trial {trial} (record {first}) went undetected"
        named = report.first
        assert named is not None and named.kind in EXPECTED[kind], (kind, trial, first, report.problems)
        if named.kind == "truncated" and kind == "delete-rechain":
            assert named.seq == raw_size - 1  # one record short of the newest checkpoint
        elif kind in ("edit-rechain", "delete-rechain"):
            assert named.seq <= first, (kind, trial, first, named)  # the checkpoint's range contains it
        else:
            assert named.seq == first, (kind, trial, first, named)


def test_verify_command_exit_codes_and_names(base_log: Path, tmp_path: Path) -> None:
    url = copy_log(base_log, tmp_path)
    checkpoints = str(base_log / "checkpoints")
    command = [sys.executable, "-m", "engine", "log", "verify", url, "--checkpoints", checkpoints]
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    ok = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "intact" in ok.stdout
    raw = Raw(sqlite3.connect(url, isolation_level=None), postgres=False)
    raw.run("DELETE FROM bodies WHERE seq = 20")
    raw.run("DELETE FROM records WHERE seq = 20")
    raw.done()
    bad = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert bad.returncode == 1
    assert "TAMPERED: first bad record #20" in bad.stdout and "deleted" in bad.stdout
    as_json = subprocess.run(
        [*command, "--format", "json"], capture_output=True, text=True, env=env, check=False
    )
    assert json.loads(as_json.stdout)["first_bad"]["seq"] == 20


def test_a_forged_checkpoint_is_detected(base_log: Path, tmp_path: Path) -> None:
    url = copy_log(base_log, tmp_path)
    folder = tmp_path / "checkpoints"
    shutil.copytree(base_log / "checkpoints", folder)
    lines = (folder / "checkpoints.jsonl").read_text().splitlines()
    forged = json.loads(lines[-1])
    forged["root"] = "00" * 32
    (folder / "checkpoints.jsonl").write_text("\n".join([*lines, json.dumps(forged)]) + "\n")
    with open_store(url) as store:
        report = verify_log(store, folder)
    assert [p.kind for p in report.problems] == ["forged-checkpoint"]


def test_a_torn_last_checkpoint_line_is_a_warning_not_tampering(base_log: Path, tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    shutil.copytree(base_log / "checkpoints", folder)
    with open(folder / "checkpoints.jsonl", "a") as handle:
        handle.write('{"log_id": "half')
    found, errors, warnings = read_checkpoints(folder)
    assert found and not errors and "unfinished last line" in warnings[0]


def test_personal_values_are_only_commitments_in_the_hashed_bytes(base_log: Path, tmp_path: Path) -> None:
    url = copy_log(base_log, tmp_path)
    with open_store(url) as store:
        record = next(r for r in store.records() if r.kind == "decision")
        assert record.body is not None
        assert b"Person" not in record.body
        stored = json.loads(record.body)["input"]["end_user"]["name"]["$commitment"]
        ((salt, value),) = [
            v for p, v in store.personal([record.seq])[record.seq].items() if p == "end_user.name"
        ]
        assert stored == commitment(salt, value) and value.startswith("Person")
        exported = next(r for r in export_records(store) if r["kind"] == "decision")
        assert exported["input"]["end_user"]["name"].startswith("Person")


def test_erase_removes_value_and_salt_and_verify_still_passes(base_log: Path, tmp_path: Path) -> None:
    url = copy_log(base_log, tmp_path)
    signer = Signer(base_log / "signing-key.pem", create=False)
    with open_store(url) as store:
        target = next(r for r in store.records() if r.kind == "decision" and r.seq > 3)
        event, paths = erase(store, signer, target.decision_id or "", by="dpo", reason="GDPR Art. 17 request")
        assert paths == ["$trace", "end_user.name"]
        assert store.personal([target.seq]) == {}
        exported = [r for r in export_records(store) if r["seq"] in (target.seq, event.seq)]
        assert exported[0]["input"]["end_user"]["name"] == {
            "$erased": exported[0]["input"]["end_user"]["name"]["$erased"]
        }
        assert exported[0]["personal_erased"] is True
        assert exported[1]["kind"] == "erasure" and exported[1]["by"] == "dpo"
        with pytest.raises(LogError, match="holds no personal values"):
            erase(store, signer, target.decision_id or "", by="dpo", reason="again")
        # the chain goes on; the newest checkpoint (64 records) still holds, the erasure is record #64
        report = verify_log(store, base_log / "checkpoints")
        assert report.intact, report.problems
        assert event.seq == 64
    db = sqlite3.connect(url)
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("DELETE FROM personal WHERE seq = ?", (target.seq + 1,))  # not erased: refused


def test_a_forged_erasure_event_is_detected(base_log: Path, tmp_path: Path) -> None:
    url = copy_log(base_log, tmp_path)
    signer = Signer(tmp_path / "other-key.pem")  # not the log's key
    with open_store(url) as store:
        target = next(r for r in store.records() if r.kind == "decision")
        erase(store, signer, target.decision_id or "", by="mallory", reason="cover-up")
        report = verify_log(store, base_log / "checkpoints")
    assert [p.kind for p in report.problems] == ["forged-event"]


def old_log(folder: Path) -> tuple[str, Signer]:
    """A log with decisions from 2015, 2019 and now (their times written as they were)."""
    url = str(folder / "old.db")
    signer = Signer(folder / "key.pem")
    with open_store(url, create=True) as store:
        from engine.decisionlog.log import decision_record

        for i, year in enumerate([2015, 2015, 2015, 2019, 2026]):
            pending = decision_record(
                policy="p",
                version="1",
                content_hash="c",
                data_hash="d",
                evaluated_at=date(year, 1, 1),
                case={"i": i},
                output={},
                trace_json=b"{}",
                decision_id=f"d{i}",
                decided_at=f"{year}-03-01T00:00:00.000000Z",
            )
            store.append([pending])
    return url, signer


def test_prune_refuses_under_five_years_and_keeps_held_records(tmp_path: Path) -> None:
    url, signer = old_log(tmp_path)
    with open_store(url) as store:
        with pytest.raises(LogError, match="younger than 5 years"):
            prune(store, signer, date(2023, 1, 1), by="ops", reason="r", today=date(2026, 6, 1))
        hold(store, signer, "d1", reason="BIS request 2026-17", by="counsel")
        event, count, kept = prune(
            store, signer, date(2016, 1, 1), by="ops", reason="retention", today=date(2026, 6, 1)
        )
        assert count == 2 and kept == {"d1": "BIS request 2026-17"} and event is not None
        exported = {r["decision_id"]: r for r in export_records(store) if r["kind"] == "decision"}
        assert exported["d0"]["pruned"] and exported["d2"]["pruned"] and "input" in exported["d1"]
        assert verify_log(store, None).intact
        hold(store, signer, "d1", reason="written authorisation 2026-22", by="counsel", release=True)
        _, count, _ = prune(
            store, signer, date(2016, 1, 1), by="ops", reason="retention", today=date(2026, 6, 1)
        )
        assert count == 1
        report = verify_log(store, None)
        assert report.intact and report.pruned == 3
    db = sqlite3.connect(url)
    with pytest.raises(sqlite3.IntegrityError, match="retention"):
        db.execute("INSERT INTO pruned VALUES (4, 99)")
        db.execute("DELETE FROM bodies WHERE seq = 4")  # the database itself refuses a young record


def test_inclusion_proof_checks_with_the_standalone_script(base_log: Path, tmp_path: Path) -> None:
    url = copy_log(base_log, tmp_path)
    with open_store(url) as store:
        target = next(r for r in store.records() if r.seq == 37)
        proof = inclusion_proof(store, target.decision_id or "", latest_checkpoint(base_log / "checkpoints"))
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(proof))
    script = ROOT / "tools" / "verify_inclusion.py"
    assert len(script.read_text().splitlines()) <= 150
    assert "import engine" not in script.read_text() and "from engine" not in script.read_text()
    key = str(base_log / "checkpoints" / "public-key.pem")
    good = subprocess.run(
        [sys.executable, str(script), str(path), "--public-key", key],
        capture_output=True,
        text=True,
        check=False,
    )
    assert good.returncode == 0 and "proven" in good.stdout, good.stdout + good.stderr
    proof["record"] = proof["record"].replace("favorable", "unfavorable")
    path.write_text(json.dumps(proof))
    bad = subprocess.run(
        [sys.executable, str(script), str(path)], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 1 and "NOT PROVEN" in bad.stdout


def test_group_commit_reports_a_failed_commit_to_every_caller(tmp_path: Path) -> None:
    from engine.decisionlog.records import RecordBody
    from engine.decisionlog.store import LogUnavailable
    from engine.decisionlog.writer import GroupCommitter

    with open_store(str(tmp_path / "log.db"), create=True) as store:

        def broken(pending: object) -> list[object]:
            raise LogUnavailable("disk full")

        store.append = broken  # type: ignore[method-assign,assignment]
        writer = GroupCommitter(store, CheckpointWriter(tmp_path / "cp", Signer(tmp_path / "k.pem")))
        writer.start()
        outcomes: list[tuple[object, object]] = []
        for _ in range(5):
            writer.submit(
                Pending(RecordBody("decision", {}), "x", "2026-01-01T00:00:00Z"),
                lambda s, e: outcomes.append((s, e)),
            )
        writer.stop()
    assert len(outcomes) == 5 and all(s is None and isinstance(e, LogUnavailable) for s, e in outcomes)
    assert not writer.healthy


def test_genesis_binds_the_chain_to_the_log() -> None:
    assert genesis("a") != genesis("b")
