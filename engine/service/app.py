"""The HTTP decision service: FastAPI routes over loaded policies and the group-committed decision log.

Every decision is evaluated with its trace (the log keeps the trace's hash), queued to the
log writer, and answered only once its record is committed; the answer is the decision JSON
of `policy eval --format json` plus `decision_id` and `receipt`. Errors are JSON objects with
the CLI's codes (`invalid-json`, `invalid-case`, ...; docs/service.md lists them all).
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import json
import re
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.decisionlog.backends import open_store
from engine.decisionlog.checkpoints import CheckpointWriter
from engine.decisionlog.evaluation import evaluate_for_log
from engine.decisionlog.log import decision_record, exported_record, inclusion_proof, latest_checkpoint
from engine.decisionlog.store import LogError, LogUnavailable, Pending, Sealed, Store
from engine.decisionlog.writer import GroupCommitter
from engine.errors import CaseError, UsageError
from engine.service.auth import Token, Tokens
from engine.service.metrics import Metrics
from engine.service.policies import LoadedVersion, PolicySet

__all__ = ["ApiError", "ServiceConfig", "create_app"]

JSON = "application/json"
COMMIT_TIMEOUT = 10.0
MAX_BATCH_CASES = 1000


@dataclass
class ServiceConfig:
    """Everything `policy serve` decided before starting (the CLI builds it; tests may too)."""

    policies: PolicySet
    store: Store
    tokens: Tokens
    log_url: str
    checkpoint_dir: Path | None = None
    checkpoints: CheckpointWriter | None = None
    personal_fields: tuple[str, ...] = ()
    max_body_bytes: int = 64 * 1024
    max_depth: int = 32
    max_in_flight: int = 256
    reload_interval: float = 2.0
    unsafe_durability: bool = False
    writer_options: dict[str, Any] = field(default_factory=dict)


class ApiError(Exception):
    """An error answer: HTTP status, the CLI's code, a message, help, and per-field problems."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        help: str | None = None,
        problems: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message, self.help = status, code, message, help
        self.problems, self.headers = problems, headers or {}

    def response(self) -> Response:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.help:
            error["help"] = self.help
        if self.problems is not None:
            error["problems"] = self.problems
        return Response(json.dumps({"error": error}, ensure_ascii=False), self.status, self.headers, JSON)


def _overloaded(reason: str) -> ApiError:
    return ApiError(
        503,
        "overloaded",
        f"the service is at capacity ({reason}); try again",
        "retry after a second",
        headers={"Retry-After": "1"},
    )


def _log_unavailable(detail: str) -> ApiError:
    return ApiError(
        503,
        "log-unavailable",
        "the decision could not be logged, so it was not made",
        detail,
        headers={"Retry-After": "1"},
    )


# ---------------------------------------------------------------------------
# Reading requests


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether JSON nesting goes deeper than `limit` (iterative: no recursion on hostile input)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return False


async def read_json(request: Request, max_bytes: int, max_depth: int) -> Any:
    """The request body as JSON, within the size and nesting limits; located errors otherwise."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, "too-large", f"the body is {declared} bytes; the limit is {max_bytes}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, "too-large", f"the body is over {max_bytes} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ApiError(
            400,
            "invalid-json",
            f"<body>:{exc.lineno}:{exc.colno}: {exc.msg}",
            "send the case as a JSON object",
        ) from None
    except UnicodeDecodeError:
        raise ApiError(400, "invalid-json", "the body is not UTF-8", "send UTF-8 JSON") from None
    except RecursionError:
        raise ApiError(400, "too-deep", f"the JSON nests deeper than {max_depth} levels") from None
    if _depth_exceeds(data, max_depth):
        raise ApiError(400, "too-deep", f"the JSON nests deeper than {max_depth} levels")
    return data


def _query_date(request: Request) -> date | None:
    text = request.query_params.get("at")
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ApiError(
            400, "bad-parameter", f"at=`{text[:40]}` is not a date", "write at=YYYY-MM-DD"
        ) from None


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() in ("1", "true", "yes")


def _today() -> date:
    return datetime.now(UTC).date()


# ---------------------------------------------------------------------------
# The app


class Service:
    """State shared by the routes: config, metrics, the writer, and the in-flight count."""

    def __init__(self, config: ServiceConfig):
        self.config = config
        self.metrics = Metrics()
        self.metrics.unsafe_durability = config.unsafe_durability
        self.writer = GroupCommitter(
            config.store, config.checkpoints, observer=self.metrics, **config.writer_options
        )
        self.in_flight = 0
        self.metrics.queue_depth = lambda: self.writer.queued
        self.metrics.in_flight = lambda: self.in_flight
        self.started = False

    # -- auth ----------------------------------------------------------------
    def authorize(self, request: Request, scope: str | None) -> Token:
        token = self.config.tokens.authenticate(request.headers.get("authorization"))
        if token is None:
            raise ApiError(
                401,
                "unauthorized",
                "a valid bearer token is required",
                "send `Authorization: Bearer TOKEN`",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if scope is not None and scope not in token.scopes:
            raise ApiError(403, "forbidden", f"token `{token.name}` lacks the `{scope}` scope")
        return token

    # -- policies ------------------------------------------------------------
    def version_for(self, policy_id: str, request: Request) -> tuple[LoadedVersion, date]:
        snapshot = self.config.policies.current
        served = snapshot.policies.get(policy_id)
        if served is None:
            close = difflib.get_close_matches(policy_id, list(snapshot.policies), n=1)
            raise ApiError(
                404,
                "unknown-policy",
                f"no policy `{policy_id[:100]}`",
                f"did you mean `{close[0]}`?" if close else f"served: {', '.join(snapshot.policies)}",
            )
        at = _query_date(request)
        try:
            loaded = served.choose(version=request.query_params.get("version"), at=at or _today())
        except UsageError as exc:
            raise ApiError(404, "no-version", str(exc), exc.help) from None
        return loaded, at or _today()

    # -- deciding ------------------------------------------------------------
    def decide_one(
        self, loaded: LoadedVersion, case: Any, when: date, token: Token, explain: bool = False
    ) -> tuple[dict[str, Any], Pending]:
        """Evaluate with the trace; the output without it, and the pending log record."""
        if not isinstance(case, dict):
            raise ApiError(422, "invalid-case", "a case is a JSON object of facts")
        try:
            evaluation = evaluate_for_log(loaded.policy, case, when, explain=explain)
        except CaseError as exc:
            raise ApiError(
                422,
                "invalid-case",
                "the case does not match the policy's facts",
                f"GET /v1/policies/{loaded.policy.id}/schema gives the expected input",
                problems=[{"path": p, "reason": r} for p, r in exc.problems],
            ) from None
        output = evaluation.output
        pending = decision_record(
            policy=output["policy"],
            version=output["version"],
            content_hash=output["content_hash"],
            data_hash=loaded.data_hash,
            evaluated_at=when,
            case=case,
            output=output,
            trace_json=evaluation.raw_trace,
            personal_paths=self.config.personal_fields,
            requested_by=token.name,
        )
        return {**output, "trace": evaluation.trace}, pending

    async def commit(self, pending: list[Pending]) -> list[Sealed | None]:
        """Queue records and wait for their commit; 503 on overload, failure or timeout."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Sealed | None]] = []
        for item in pending:
            future: asyncio.Future[Sealed | None] = loop.create_future()

            def done(sealed: Sealed | None, error: Exception | None, f: asyncio.Future[Any] = future) -> None:
                loop.call_soon_threadsafe(_settle, f, sealed, error)

            if not self.writer.submit(item, done):
                self.metrics.reject("overloaded", len(pending) - len(futures))
                if not futures:
                    raise _overloaded("the log queue is full")
                break
            futures.append(future)
        try:
            results = await asyncio.wait_for(asyncio.gather(*futures), COMMIT_TIMEOUT)
        except LogUnavailable as exc:
            self.metrics.reject("log-unavailable", len(pending))
            raise _log_unavailable(str(exc)) from None
        except TimeoutError:
            self.metrics.reject("log-timeout", len(pending))
            raise _log_unavailable(f"the log did not commit within {COMMIT_TIMEOUT:g} s") from None
        if len(futures) < len(pending):
            raise _overloaded("the log queue is full")
        return list(results)


def _settle(future: asyncio.Future[Any], sealed: Sealed | None, error: Exception | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(sealed)


def _receipt(store: Store, sealed: Sealed | None) -> dict[str, Any] | None:
    if sealed is None:
        return None
    return {
        "log_id": store.log_id,
        "seq": sealed.seq,
        "leaf_hash": sealed.leaf.hex(),
        "chain_hash": sealed.chain.hex(),
        "decided_at": sealed.pending.recorded_at,
    }


def _answer(
    body: dict[str, Any], explain: bool, pending: Pending, sealed: Sealed | None, store: Store
) -> dict[str, Any]:
    if not explain:
        body = {**body, "trace": None}
    return {**body, "decision_id": pending.decision_id, "receipt": _receipt(store, sealed)}


_ROUTES = (
    (re.compile(r"^/v1/policies/[^/]+/decide$"), "/v1/policies/{id}/decide"),
    (re.compile(r"^/v1/policies/[^/]+/decide-batch$"), "/v1/policies/{id}/decide-batch"),
    (re.compile(r"^/v1/policies/[^/]+/schema$"), "/v1/policies/{id}/schema"),
    (re.compile(r"^/v1/policies/[^/]+/versions$"), "/v1/policies/{id}/versions"),
    (re.compile(r"^/v1/policies/[^/]+$"), "/v1/policies/{id}"),
    (re.compile(r"^/v1/log/decisions/[^/]+$"), "/v1/log/decisions/{id}"),
    (re.compile(r"^/v1/log/proof/[^/]+$"), "/v1/log/proof/{id}"),
)
_FIXED = {
    "/v1/policies",
    "/v1/log/checkpoint",
    "/v1/admin/reload",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
}


def route_label(path: str) -> str:
    """The route template a path matched (bounded label values for the metrics)."""
    if path in _FIXED:
        return path
    for pattern, label in _ROUTES:
        if pattern.match(path):
            return label
    return "other"


class Instrumented:
    """ASGI wrapper: count and time every request by route and status."""

    def __init__(self, app: Any, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_status(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.request(route_label(scope.get("path", "")), status[0], time.perf_counter() - started)


_CASE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            JSON: {
                "schema": {"type": "object", "description": "a case: GET .../schema gives its JSON Schema"}
            }
        },
    }
}


def create_app(config: ServiceConfig) -> Any:
    """The ASGI app (FastAPI inside the metrics wrapper). Start/stop of the writer is in its lifespan."""
    service = Service(config)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(service.writer.start)
        poller = asyncio.create_task(_poll_reload(service)) if config.reload_interval > 0 else None
        try:
            yield
        finally:
            if poller is not None:
                poller.cancel()
            await run_in_threadpool(service.writer.stop)

    app = FastAPI(
        title="policy decision service",
        version="1",
        description="Decisions under versioned licensing policies, each one logged before it is answered.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> Response:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return ApiError(exc.status_code, code, str(exc.detail)).response()

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> Response:
        return ApiError(400, "bad-request", "the request is malformed").response()

    @app.post("/v1/policies/{policy_id}/decide", openapi_extra=_CASE_BODY)
    async def decide(policy_id: str, request: Request) -> Response:
        """Decide one case (`?at=DATE` or `?version=V`, `?explain=true` for the trace)."""
        token = service.authorize(request, "decide")
        if service.in_flight >= config.max_in_flight:
            service.metrics.reject("overloaded")
            raise _overloaded("too many requests in flight")
        service.in_flight += 1
        try:
            loaded, when = service.version_for(policy_id, request)
            case = await read_json(request, config.max_body_bytes, config.max_depth)
            body, pending = service.decide_one(loaded, case, when, token, _flag(request, "explain"))
            (sealed,) = await service.commit([pending])
            answer = _answer(body, _flag(request, "explain"), pending, sealed, config.store)
            return Response(json.dumps(answer, ensure_ascii=False), 200, media_type=JSON)
        finally:
            service.in_flight -= 1

    @app.post("/v1/policies/{policy_id}/decide-batch", openapi_extra=_CASE_BODY)
    async def decide_batch(policy_id: str, request: Request) -> Response:
        """Decide `{"cases": [...]}` (at most 1,000); invalid cases get an error entry, not a decision."""
        token = service.authorize(request, "decide")
        if service.in_flight >= config.max_in_flight:
            service.metrics.reject("overloaded")
            raise _overloaded("too many requests in flight")
        service.in_flight += 1
        try:
            loaded, when = service.version_for(policy_id, request)
            data = await read_json(request, config.max_body_bytes * 16, config.max_depth + 2)
            cases = data.get("cases") if isinstance(data, dict) else None
            if not isinstance(cases, list) or len(cases) > MAX_BATCH_CASES:
                raise ApiError(
                    422,
                    "invalid-batch",
                    f'the body must be {{"cases": [...]}} with at most {MAX_BATCH_CASES} cases',
                )
            results: list[dict[str, Any]] = []
            decided: list[tuple[int, dict[str, Any], Pending]] = []
            for index, case in enumerate(cases):
                try:
                    body, pending = service.decide_one(loaded, case, when, token, _flag(request, "explain"))
                except ApiError as exc:
                    error = {"code": exc.code, "message": exc.message, "problems": exc.problems or []}
                    results.append({"index": index, "error": error})
                    continue
                decided.append((index, body, pending))
                results.append({"index": index})
            sealed = await service.commit([p for _, _, p in decided])
            explain = _flag(request, "explain")
            for (index, body, pending), record in zip(decided, sealed, strict=True):
                results[index] = {"index": index, **_answer(body, explain, pending, record, config.store)}
            return Response(json.dumps({"results": results}, ensure_ascii=False), 200, media_type=JSON)
        finally:
            service.in_flight -= 1

    @app.get("/v1/policies")
    async def list_policies(request: Request) -> Response:
        """Every served policy with its versions."""
        service.authorize(request, None)
        snapshot = config.policies.current
        body = {
            "loaded_at": snapshot.loaded_at,
            "policies": [
                {"id": p.id, "versions": [v.describe() for v in p.versions]}
                for p in snapshot.policies.values()
            ],
        }
        return Response(json.dumps(body), media_type=JSON)

    @app.get("/v1/policies/{policy_id}")
    async def one_policy(policy_id: str, request: Request) -> Response:
        service.authorize(request, None)
        served = _served(config, policy_id)
        return Response(
            json.dumps({"id": served.id, "versions": [v.describe() for v in served.versions]}),
            media_type=JSON,
        )

    @app.get("/v1/policies/{policy_id}/versions")
    async def versions(policy_id: str, request: Request) -> Response:
        service.authorize(request, None)
        served = _served(config, policy_id)
        return Response(json.dumps([v.describe() for v in served.versions]), media_type=JSON)

    @app.get("/v1/policies/{policy_id}/schema")
    async def schema(policy_id: str, request: Request) -> Response:
        """JSON Schema of a case for the chosen version (`?at=` or `?version=`)."""
        service.authorize(request, None)
        loaded, _ = service.version_for(policy_id, request)
        return Response(json.dumps(loaded.policy.schema()), media_type=JSON)

    @app.get("/v1/log/decisions/{decision_id}")
    async def logged(decision_id: str, request: Request) -> Response:
        """The logged record of one decision (scope `log`)."""
        service.authorize(request, "log")
        record = await run_in_threadpool(_find_record, config.log_url, decision_id)
        return Response(json.dumps(record, ensure_ascii=False), media_type=JSON)

    @app.get("/v1/log/proof/{decision_id}")
    async def proof(decision_id: str, request: Request) -> Response:
        """An RFC 6962 inclusion proof of a decision against the newest signed checkpoint (scope `log`)."""
        service.authorize(request, "log")
        if config.checkpoint_dir is None:
            raise ApiError(404, "no-checkpoints", "this service exports no checkpoints")
        body = await run_in_threadpool(_proof, config.log_url, config.checkpoint_dir, decision_id)
        return Response(json.dumps(body), media_type=JSON)

    @app.get("/v1/log/checkpoint")
    async def checkpoint(request: Request) -> Response:
        service.authorize(request, "log")
        if config.checkpoint_dir is None:
            raise ApiError(404, "no-checkpoints", "this service exports no checkpoints")
        try:
            latest = latest_checkpoint(config.checkpoint_dir)
        except LogError as exc:
            raise ApiError(404, "no-checkpoints", str(exc), exc.help) from None
        return Response(json.dumps(latest.to_json()), media_type=JSON)

    @app.post("/v1/admin/reload")
    async def reload(request: Request) -> Response:
        """Reload every policy; if any fails `check`, the old versions keep serving (scope `admin`)."""
        service.authorize(request, "admin")
        outcome = await run_in_threadpool(config.policies.reload)
        service.metrics.reloads["ok" if outcome.ok else "failed"] += 1
        body = {
            "reloaded": outcome.ok,
            "errors": outcome.errors,
            "loaded_at": config.policies.current.loaded_at,
        }
        return Response(json.dumps(body, ensure_ascii=False), 200 if outcome.ok else 422, media_type=JSON)

    @app.get("/healthz")
    async def healthz() -> Response:
        """The process is up."""
        return Response(json.dumps({"status": "ok"}), media_type=JSON)

    @app.get("/readyz")
    async def readyz() -> Response:
        """Ready when policies are loaded and the log commits; 503 otherwise."""
        writer = service.writer
        ready = writer.healthy and bool(config.policies.current.policies)
        body = {
            "ready": ready,
            "policies": len(config.policies.current.policies),
            "log": {"healthy": writer.healthy, "last_error": writer.last_error, "queued": writer.queued},
            "reload_errors": config.policies.last_error,
            "unsafe_durability": config.unsafe_durability,
        }
        return Response(json.dumps(body, ensure_ascii=False), 200 if ready else 503, media_type=JSON)

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus text exposition."""
        return Response(service.metrics.render(), media_type="text/plain; version=0.0.4")

    return Instrumented(app, service.metrics)


def _served(config: ServiceConfig, policy_id: str) -> Any:
    served = config.policies.current.policies.get(policy_id)
    if served is None:
        raise ApiError(404, "unknown-policy", f"no policy `{policy_id[:100]}`")
    return served


def _find_record(url: str, decision_id: str) -> dict[str, Any]:
    try:
        with open_store(url) as store:
            return exported_record(store, decision_id)
    except LogError as exc:
        raise ApiError(404, "unknown-decision", str(exc), exc.help) from None


def _proof(url: str, folder: Path, decision_id: str) -> dict[str, Any]:
    try:
        checkpoint = latest_checkpoint(folder)
        with open_store(url) as store:
            return inclusion_proof(store, decision_id, checkpoint)
    except LogError as exc:
        raise ApiError(404, "no-proof", str(exc), exc.help) from None


async def _poll_reload(service: Service) -> None:
    """Reload when a policy file changes; report failures once per change."""
    config = service.config
    while True:
        await asyncio.sleep(config.reload_interval)
        try:
            outcome = await run_in_threadpool(config.policies.reload, only_if_changed=True)
        except Exception as exc:  # never let the poller die silently
            print(f"policy reload failed: {exc!r}", file=sys.stderr)
            continue
        if not outcome.attempted:
            continue
        if outcome.ok:
            service.metrics.reloads["ok"] += 1
            print(f"policies reloaded at {config.policies.current.loaded_at}", file=sys.stderr)
        else:
            service.metrics.reloads["failed"] += 1
            print(
                "policy reload refused; the previous versions keep serving:\n" + "\n".join(outcome.errors),
                file=sys.stderr,
            )
