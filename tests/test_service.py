"""The decision service in process (FastAPI's TestClient): answers, errors with the CLI's codes,
auth, limits, hot reload, metrics, and the log rule: no commit, no decision."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import engine
from engine.decisionlog import merkle
from engine.decisionlog.backends import open_store
from engine.decisionlog.checkpoints import CheckpointWriter, Signer
from engine.decisionlog.evaluation import evaluate_for_log
from engine.decisionlog.log import export_records
from engine.decisionlog.records import trace_hash
from engine.decisionlog.store import LogUnavailable
from engine.service.app import ServiceConfig, create_app
from engine.service.auth import TokenError, load_tokens
from engine.service.policies import PolicySet

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "fixtures" / "cases"
DECIDE = "decide-token-0123456789"
READER = "reader-token-0123456789"
ADMIN = "admin-token-01234567890"
URL = "/v1/policies/ear-742.7/decide"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def case(name: str = "water-cannon-hong-kong-police") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CASES / f"{name}.json").read_text())
    return data


def tokens_file(folder: Path) -> Path:
    path = folder / "tokens.json"
    path.write_text(
        json.dumps(
            {
                "tokens": [
                    {"name": "app", "token": DECIDE, "scopes": ["decide"]},
                    {"name": "auditor", "token": READER, "scopes": ["log"]},
                    {"name": "ops", "token": ADMIN, "scopes": ["admin", "decide"]},
                ]
            }
        )
    )
    path.chmod(0o600)
    return path


def make_config(folder: Path, policies: list[Path] | None = None, **options: Any) -> ServiceConfig:
    store = open_store(str(folder / "log.db"), create=True)
    signer = Signer(folder / "key.pem")
    return ServiceConfig(
        policies=PolicySet(policies or [ROOT / "policies" / "ear-742.7"]),
        store=store,
        tokens=load_tokens(tokens_file(folder)),
        log_url=str(folder / "log.db"),
        checkpoint_dir=folder / "checkpoints",
        checkpoints=CheckpointWriter(folder / "checkpoints", signer),
        personal_fields=("end_user.name",),
        reload_interval=0,
        **options,
    )


@pytest.fixture
def served(tmp_path: Path) -> Any:
    config = make_config(tmp_path)
    app = create_app(config)
    with TestClient(app) as client:
        client.config = config  # type: ignore[attr-defined]
        client.service = app.app.state.service  # type: ignore[attr-defined]
        yield client


def test_a_decision_is_the_cli_json_plus_id_and_receipt_and_is_logged(served: Any) -> None:
    facts = dict(case(), end_user={"type": "government", "name": "Jane Roe Trading"})
    response = served.post(URL + "?at=2021-01-01", json=facts, headers=bearer(DECIDE))
    assert response.status_code == 200, response.text
    body = response.json()
    expected = engine.load(ROOT / "policies" / "ear-742.7", at=__import__("datetime").date(2021, 1, 1))
    decision = expected.evaluate(facts, at=__import__("datetime").date(2021, 1, 1))
    assert {k: v for k, v in body.items() if k not in ("decision_id", "receipt")} == decision.model_dump(
        mode="json"
    )
    assert body["policy"] == "ear-742.7" and body["version"] == "2020-10-06" and body["content_hash"]
    receipt = body["receipt"]
    with open_store(served.config.log_url) as store:
        records = [r for r in export_records(store) if r["kind"] == "decision"]
        assert receipt["log_id"] == store.log_id
    (record,) = records
    assert record["decision_id"] == body["decision_id"] and record["seq"] == receipt["seq"]
    assert record["leaf_hash"] == receipt["leaf_hash"] and record["chain_hash"] == receipt["chain_hash"]
    assert record["input"] == facts and record["output"] == decision.model_dump(mode="json")
    assert record["requested_by"] == "app" and record["evaluated_at"] == "2021-01-01"
    for field in ("decided_at", "content_hash", "data_hash", "trace_hash", "version", "policy"):
        assert record[field]
    with open_store(served.config.log_url) as store:
        raw = store.body(receipt["seq"]) or b""
    assert b"Jane Roe" not in raw  # the declared personal field is only a commitment


def test_explain_returns_the_trace_whose_hash_is_logged(served: Any) -> None:
    facts = case()
    facts["end_user"].pop(
        "name", None
    )  # no personal value: the trace hash is unsalted, anyone can recompute it
    response = served.post(URL + "?at=2021-01-01&explain=true", json=facts, headers=bearer(DECIDE))
    body = response.json()
    assert body["trace"]["trace_version"] == 1 and body["trace"]["rules"]
    with open_store(served.config.log_url) as store:
        (record,) = [r for r in export_records(store) if r["kind"] == "decision"]
    policy = engine.load(ROOT / "policies" / "ear-742.7", version="2020-10-06")
    evaluation = evaluate_for_log(policy, facts, __import__("datetime").date(2021, 1, 1), explain=True)
    assert evaluation.trace == body["trace"]  # the trace answered is the trace of `policy eval --explain`
    assert (
        policy.evaluate(facts, trace=True, at=__import__("datetime").date(2021, 1, 1)).model_dump(
            mode="json"
        )["trace"]
        == body["trace"]
    )
    assert record["trace_hash"] == trace_hash(evaluation.raw_trace)


def test_version_by_name_or_date(served: Any) -> None:
    old = served.post(URL + "?at=2020-05-01", json=case(), headers=bearer(DECIDE)).json()
    named = served.post(URL + "?version=2020-03-09", json=case(), headers=bearer(DECIDE)).json()
    assert old["version"] == named["version"] == "2020-03-09"
    assert old["evaluated_at"] == "2020-05-01"


ERRORS = [
    ("no token", {}, URL, None, 401, "unauthorized"),
    ("wrong token", bearer("x" * 20), URL, None, 401, "unauthorized"),
    ("log-only token", bearer(READER), URL, None, 403, "forbidden"),
    ("bad JSON", bearer(DECIDE), URL, b'{"eccn": ', 400, "invalid-json"),
    ("not an object", bearer(DECIDE), URL, b"[1, 2]", 422, "invalid-case"),
    ("too large", bearer(DECIDE), URL, b'{"x": "' + b"a" * 70000 + b'"}', 413, "too-large"),
    ("too deep", bearer(DECIDE), URL, b"[" * 40 + b"]" * 40, 400, "too-deep"),
    ("unknown policy", bearer(DECIDE), "/v1/policies/ear-742.8/decide", None, 404, "unknown-policy"),
    ("no version then", bearer(DECIDE), URL + "?at=1990-01-01", None, 404, "no-version"),
    ("bad date", bearer(DECIDE), URL + "?at=yesterday", None, 400, "bad-parameter"),
]


@pytest.mark.parametrize(
    ("why", "headers", "url", "body", "status", "code"), ERRORS, ids=[e[0] for e in ERRORS]
)
def test_errors_are_json_with_codes(
    served: Any, why: str, headers: dict[str, str], url: str, body: bytes | None, status: int, code: str
) -> None:
    response = served.post(url, content=body if body is not None else json.dumps(case()), headers=headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    with open_store(served.config.log_url) as store:
        assert not [r for r in store.records() if r.kind == "decision"]  # no decision, nothing logged


def test_error_bodies(served: Any, snapshot: Any) -> None:
    """The located, coded error bodies an integrator sees (snapshot)."""
    bad_case = dict(case(), destination="Hong Kong", quantity="many")
    del bad_case["eccn"]
    answers = {
        "invalid-json": served.post(
            URL, content=b'{"eccn": "0A985",\n  oops}', headers=bearer(DECIDE)
        ).json(),
        "invalid-case": served.post(URL + "?at=2021-01-01", json=bad_case, headers=bearer(DECIDE)).json(),
        "unknown-policy": served.post(
            "/v1/policies/ear-742-7/decide", json={}, headers=bearer(DECIDE)
        ).json(),
        "unauthorized": served.post(URL, json={}).json(),
    }
    assert answers == snapshot


def test_batch_decides_valid_cases_and_reports_invalid_ones(served: Any) -> None:
    cases = [case(), {"eccn": 12}, case("handcuffs-canada-police")]
    response = served.post(URL + "-batch?at=2021-01-01", json={"cases": cases}, headers=bearer(DECIDE))
    results = response.json()["results"]
    assert [("decision_id" in r, "error" in r) for r in results] == [
        (True, False),
        (False, True),
        (True, False),
    ]
    assert results[1]["error"]["code"] == "invalid-case"
    with open_store(served.config.log_url) as store:
        logged = {r.decision_id for r in store.records() if r.kind == "decision"}
    assert logged == {results[0]["decision_id"], results[2]["decision_id"]}


def test_read_endpoints(served: Any) -> None:
    listed = served.get("/v1/policies", headers=bearer(DECIDE)).json()
    (policy,) = listed["policies"]
    assert policy["id"] == "ear-742.7" and [v["version"] for v in policy["versions"]][:2] == [
        "2020-03-09",
        "2020-10-06",
    ]
    versions = served.get("/v1/policies/ear-742.7/versions", headers=bearer(DECIDE)).json()
    assert all(v["content_hash"] and v["data_hash"] for v in versions)
    schema = served.get("/v1/policies/ear-742.7/schema?at=2021-01-01", headers=bearer(DECIDE)).json()
    assert schema["title"] == "Case for ear-742.7 2020-10-06"
    openapi = served.get("/openapi.json").json()
    assert "/v1/policies/{policy_id}/decide" in openapi["paths"]
    assert served.get("/v1/policies").status_code == 401


def test_health_readiness_and_metrics(served: Any) -> None:
    served.post(URL + "?at=2021-01-01", json=case(), headers=bearer(DECIDE))
    assert served.get("/healthz").json() == {"status": "ok"}
    ready = served.get("/readyz").json()
    assert ready["ready"] and ready["policies"] == 1 and ready["unsafe_durability"] is False
    text = served.get("/metrics").text
    for name in (
        "decisions_unlogged_total 0",
        "policy_decisions_logged_total 1",
        'policy_request_duration_seconds_bucket{route="/v1/policies/{id}/decide",le="0.05"}',
        "policy_log_commit_batch_size_bucket",
        'policy_requests_total{route="/v1/policies/{id}/decide",status="200"} 1',
    ):
        assert name in text, name


def test_log_endpoints_give_the_record_and_a_proof(served: Any) -> None:
    decided = served.post(URL + "?at=2021-01-01", json=case(), headers=bearer(DECIDE)).json()
    served.service.writer._checkpoint(force=True)
    decision_id = decided["decision_id"]
    assert served.get(f"/v1/log/decisions/{decision_id}", headers=bearer(DECIDE)).status_code == 403
    record = served.get(f"/v1/log/decisions/{decision_id}", headers=bearer(READER)).json()
    assert record["output"]["decisions"] == decided["decisions"]
    proof = served.get(f"/v1/log/proof/{decision_id}", headers=bearer(READER)).json()
    leaf = merkle.leaf_hash(proof["record"].encode())
    path = [bytes.fromhex(h) for h in proof["audit_path"]]
    root = bytes.fromhex(proof["checkpoint"]["root"])
    assert merkle.verify_inclusion(leaf, proof["leaf_index"], proof["tree_size"], path, root)
    assert (
        served.get("/v1/log/decisions/nope", headers=bearer(READER)).json()["error"]["code"]
        == "unknown-decision"
    )


def test_a_failed_commit_is_a_503_and_no_decision(tmp_path: Path) -> None:
    config = make_config(tmp_path)

    def broken(pending: object) -> list[object]:
        raise LogUnavailable("the decision log could not commit: disk I/O error")

    app = create_app(config)
    with TestClient(app) as client:
        config.store.append = broken  # type: ignore[method-assign,assignment]
        response = client.post(URL + "?at=2021-01-01", json=case(), headers=bearer(DECIDE))
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
        assert response.json()["error"]["code"] == "log-unavailable"
        assert "decision_id" not in response.text
        assert client.get("/readyz").status_code == 503
        assert 'policy_decisions_rejected_total{reason="log-unavailable"} 1' in client.get("/metrics").text


def test_overload_is_a_503_with_retry_after(tmp_path: Path) -> None:
    config = make_config(tmp_path, max_in_flight=1)
    release = threading.Event()
    original = config.store.append

    def slow(pending: Any) -> Any:
        release.wait(10)
        return original(pending)

    app = create_app(config)
    with TestClient(app) as client:
        config.store.append = slow  # type: ignore[method-assign]
        first: list[Any] = []
        thread = threading.Thread(
            target=lambda: first.append(
                client.post(URL + "?at=2021-01-01", json=case(), headers=bearer(DECIDE))
            )
        )
        thread.start()
        for _ in range(200):
            if app.app.state.service.in_flight:
                break
            threading.Event().wait(0.01)
        second = client.post(URL + "?at=2021-01-01", json=case(), headers=bearer(DECIDE))
        release.set()
        thread.join(10)
    assert second.status_code == 503 and second.headers["Retry-After"] == "1"
    assert second.json()["error"]["code"] == "overloaded"
    assert first[0].status_code == 200


def test_hot_reload_is_atomic_and_a_broken_policy_keeps_the_old_one(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    folder = tmp_path / "policies" / "ear-742.7"
    config = make_config(tmp_path, policies=[folder])
    app = create_app(config)
    with TestClient(app) as client:
        before = client.post(URL + "?at=2021-01-01", json=case(), headers=bearer(DECIDE)).json()[
            "content_hash"
        ]
        version = folder / "2020-10-06.policy"
        good_text = version.read_text()
        version.write_text(
            good_text
            + '\nrule broken-rule "oops"\n  if no_such_fact\n  then decide license_review = favorable\n'
        )
        refused = client.post("/v1/admin/reload", headers=bearer(ADMIN))
        assert refused.status_code == 422 and "no_such_fact" in refused.json()["errors"][0]
        assert client.post("/v1/admin/reload", headers=bearer(DECIDE)).status_code == 403
        still = client.post(URL + "?at=2021-01-01", json=case(), headers=bearer(DECIDE)).json()
        assert still["content_hash"] == before
        assert client.get("/readyz").json()["reload_errors"]
        version.write_text(good_text.replace('title "Crime control', 'title "Crime-control', 1))
        assert client.post("/v1/admin/reload", headers=bearer(ADMIN)).json()["reloaded"] is True
        after = client.post(URL + "?at=2021-01-01", json=case(), headers=bearer(DECIDE)).json()
        assert after["content_hash"] != before and after["title"].startswith("Crime-control")
        assert client.get("/readyz").json()["reload_errors"] == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not JSON"),
        ('{"tokens": [{"name": "a", "token": "short", "scopes": ["decide"]}]}', "tokens[0].token"),
        (
            '{"tokens": [{"name": "a", "token": "0123456789abcdefgh", "scopes": ["root"]}]}',
            "tokens[0].scopes",
        ),
        ('{"tokens": []}', "no token configured"),
    ],
)
def test_tokens_file_errors_name_the_field(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(content)
    with pytest.raises(TokenError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_tokens(path)


def test_constant_time_lookup_finds_each_token(tmp_path: Path) -> None:
    tokens = load_tokens(tokens_file(tmp_path))
    assert [tokens.authenticate(f"Bearer {t}").name for t in (DECIDE, READER, ADMIN)] == [
        "app",
        "auditor",
        "ops",
    ]  # type: ignore[union-attr]
    assert tokens.authenticate("Basic abc") is None and tokens.authenticate(None) is None


def test_engine_and_the_cli_import_none_of_the_service_stacks() -> None:
    import subprocess
    import sys

    probe = (
        "import sys, engine, engine.cli; "
        "heavy = [m for m in ('fastapi', 'uvicorn', 'starlette', 'cryptography', 'psycopg') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == "[]"


def test_the_demo_serves_one_decision_and_verifies_the_log(capsys: pytest.CaptureFixture[str]) -> None:
    from engine.service.demo import show

    assert show() == 0
    out = capsys.readouterr().out
    assert "200: ear-742.7 @ 2020-10-06: license_review = not_favorable" in out
    assert "1 records, 1 signed checkpoint(s): intact" in out
