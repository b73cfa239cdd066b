"""The service part of `make demo`: serve one decision over loopback HTTP, then verify the log.

It starts the real app on uvicorn in a thread on a free 127.0.0.1 port, posts a bundled case
with a bearer token, prints the answer's decision, id and receipt, stops, and verifies the log
against its signed checkpoints, all inside a temporary folder.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
TOKEN = "demo-token-0123456789abcdef"


def show() -> int:
    """Print one served decision and one verified log; 0 on success."""
    import uvicorn

    from engine.decisionlog.backends import open_store
    from engine.decisionlog.checkpoints import CheckpointWriter, Signer
    from engine.decisionlog.verify import verify_log
    from engine.service.app import ServiceConfig, create_app
    from engine.service.auth import load_tokens
    from engine.service.policies import PolicySet

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        tokens = tmp / "tokens.json"
        tokens.write_text(
            json.dumps({"tokens": [{"name": "demo", "token": TOKEN, "scopes": ["decide", "log"]}]})
        )
        tokens.chmod(0o600)
        log = str(tmp / "decisions.db")
        config = ServiceConfig(
            policies=PolicySet([ROOT / "policies" / "ear-742.7"]),
            store=open_store(log, create=True),
            tokens=load_tokens(tokens),
            log_url=log,
            checkpoint_dir=tmp / "checkpoints",
            checkpoints=CheckpointWriter(tmp / "checkpoints", Signer(tmp / "signing-key.pem")),
            reload_interval=0,
        )
        server = uvicorn.Server(
            uvicorn.Config(create_app(config), host="127.0.0.1", port=0, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        case = (ROOT / "fixtures" / "cases" / "water-cannon-hong-kong-police.json").read_bytes()
        url = f"http://127.0.0.1:{port}/v1/policies/ear-742.7/decide?at=2021-01-01"
        print(
            f"POST {url.replace(str(port), 'PORT')}  (policy serve policies --log decisions.db --tokens tokens.json)"
        )
        request = urllib.request.Request(url, data=case, headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
        server.should_exit = True
        thread.join(10)
        values = ", ".join(f"{k} = {v['value']}" for k, v in answer["decisions"].items())
        print(
            f"  200: {answer['policy']} @ {answer['version']}: {values}; obligations: {[o['name'] for o in answer['obligations']]}"
        )
        print(
            f"  decision_id {answer['decision_id']}, receipt: record #{answer['receipt']['seq']}, "
            f"leaf {answer['receipt']['leaf_hash'][:16]}..., committed before the answer"
        )
        with open_store(log) as store:
            report = verify_log(store, tmp / "checkpoints", tmp / "checkpoints" / "public-key.pem")
        verdict = "intact" if report.intact else f"TAMPERED: {report.first}"
        print(
            f"policy log verify decisions.db: {report.records} records, {report.checkpoints} signed checkpoint(s): {verdict}"
        )
        return 0 if report.intact else 1
