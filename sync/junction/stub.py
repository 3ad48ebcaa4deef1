"""A local Junction stand-in: the ingestion endpoints the SDKs use, strict, with fault injection.

Endpoints (mobile-sdk-sync.md §1-2):

- ``POST /v2/timeseries/{user_id}/glucose|blood_pressure``, ``POST /v2/summary/body/{user_id}``:
  body validated with `sync.junction.schemas` (gzip or plain); a wrong shape is a 422 with
  ``{"detail": [{"loc", "msg", "type"}]}``. Samples are upserted by (user, resource,
  provider, source type, timestamp), Junction's primary key; the last write wins.
- ``POST /v2/link/provider/manual/{slug}`` ``{"user_id"}``: 200 the first time, 409 after.
- ``POST /v2/user/{user_id}/sign_in_token`` (team key): a sign-in token for the user.
- ``POST /v1/token`` (form): token exchange and refresh with rotation; a user can be made to
  answer ``invalid_token`` or ``reauthentication_required`` (`JunctionStub.auth_errors`).
- ``GET /v2/timeseries/{user_id}/{resource}``: the stored samples (``weight`` and ``fat``
  for body data).
- ``GET /_stub/requests`` (request log), ``GET|PUT /_stub/faults``, ``GET /_stub/samples``,
  ``POST /_stub/reset``: test and operator controls.

Every data and link request needs ``X-Vital-API-Key`` (if the stub has a key) or a bearer
token from its own ``/v1/token`` for the same user.

Faults (`sync.junction.stub_faults.Faults`): 429 with Retry-After, 500, 503, slow
responses, dropped connections (before or after the body was accepted), 401 once, a
permanent 400; scripted or random. Set them with `create_app(faults=…)`,
`Faults.from_flags` (CLI flags) or ``PUT /_stub/faults`` at run time.
"""

import asyncio
import base64
import dataclasses
import json
import logging
import secrets
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sync.junction.schemas import (
    BloodPressurePayload,
    BodyPayload,
    Envelope,
    GlucosePayload,
    ManualProviderRequest,
    Sample,
)
from sync.junction.stub_faults import Faults
from sync.junction.stub_state import JunctionStub, LoggedRequest

_LOGGER = logging.getLogger(__name__)

__all__ = ["Faults", "JunctionStub", "LoggedRequest", "create_app"]

MAX_BODY_BYTES = 64 * 1024 * 1024  # decompressed; a hostile gzip bomb stops here

_DATA_PREFIXES = ("/v2/timeseries/", "/v2/summary/", "/v2/link/provider/manual/")


def _route_key(method: str, path: str) -> tuple[str | None, str | None] | None:
    """(user, resource) of a data or link POST, None for other requests."""
    if method != "POST" or not path.startswith(_DATA_PREFIXES):
        return None
    parts = path.strip("/").split("/")
    if parts[1] == "timeseries" and len(parts) == 4:
        return parts[2], parts[3]
    if parts[1] == "summary" and len(parts) == 4:
        return parts[3], parts[2]
    return None, "link"


class _FaultMiddleware:
    """Logs data/link requests and injects faults before the routes see them."""

    def __init__(self, app: ASGIApp, stub: JunctionStub) -> None:
        self.app = app
        self.stub = stub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = (
            _route_key(scope.get("method", ""), scope.get("path", ""))
            if scope["type"] == "http"
            else None
        )
        if route is None:
            await self.app(scope, receive, send)
            return
        stub = self.stub
        headers = dict(scope["headers"])
        entry = LoggedRequest(
            seq=len(stub.requests) + 1,
            method=scope["method"],
            path=scope["path"],
            user_id=route[0],
            resource=route[1],
            started=time.monotonic(),
            gzip=headers.get(b"content-encoding", b"") == b"gzip",
            concurrent=stub.in_flight.get(route, 0),
        )
        stub.requests.append(entry)
        scope.setdefault("state", {})["stub_entry"] = entry
        stub.in_flight[route] = stub.in_flight.get(route, 0) + 1
        try:
            if route[1] != "link" or stub.faults.scope == "all":
                entry.fault = stub.next_fault()
            await self._dispatch(entry, scope, receive, send)
        finally:
            stub.in_flight[route] -= 1
            entry.ended = time.monotonic()

    async def _dispatch(
        self, entry: LoggedRequest, scope: Scope, receive: Receive, send: Send
    ) -> None:
        fault, stub = entry.fault, self.stub
        retry_after = f"{stub.faults.retry_after_s:g}"  # fractions: a stub extension for tests
        canned: dict[str, tuple[int, dict[str, Any], dict[str, str]]] = {
            "rate_limit": (429, {"detail": "Too Many Requests"}, {"retry-after": retry_after}),
            "unavailable": (503, {"detail": "Service Unavailable"}, {"retry-after": retry_after}),
            "server_error": (500, {"detail": "Internal Server Error"}, {}),
            "unauthorized": (401, {"detail": {"error_type": "unauthorized"}}, {}),
            "reject": (400, {"detail": {"error_type": "injected", "error_message": "no"}}, {}),
        }
        if fault in canned:
            status, body, extra = canned[fault]
            entry.status = status
            await JSONResponse(body, status, headers=extra)(scope, receive, send)
            return
        if fault == "slow":
            await asyncio.sleep(stub.faults.slow_s)
        if fault == "drop":
            entry.status = -1
            await _drop(send)
            return

        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry.status = message["status"]
            if fault != "drop_after_accept":
                await send(message)

        await self.app(scope, receive, logging_send)
        if fault == "drop_after_accept":
            entry.status = -(entry.status or 0)
            await _drop(send)


async def _drop(send: Send) -> None:
    """Start a response and never finish it: uvicorn then closes the connection."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"100"), (b"content-type", b"application/json")],
        }
    )


def _problem(status: int, error_type: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"detail": {"error_type": error_type, "error_message": message}}, status_code=status
    )


def _invalid(exc: ValidationError) -> JSONResponse:
    detail = exc.errors(include_url=False, include_input=False, include_context=False)
    return JSONResponse({"detail": json.loads(json.dumps(detail, default=str))}, 422)


async def _body(request: Request) -> bytes | JSONResponse:
    raw = await request.body()
    if request.headers.get("content-encoding", "").lower() == "gzip":
        try:
            decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            raw = decompressor.decompress(raw, MAX_BODY_BYTES)
            if decompressor.unconsumed_tail:
                return _problem(413, "body_too_large", "decompressed body is too large")
        except zlib.error:
            return _problem(400, "bad_encoding", "body is not valid gzip")
    return raw


_PAYLOADS: Mapping[str, type[Envelope]] = {
    "glucose": GlucosePayload,
    "blood_pressure": BloodPressurePayload,
    "body": BodyPayload,
}


def create_app(
    *,
    api_key: str | None = None,
    faults: Faults | None = None,
    token_ttl_s: float = 3600.0,
    stub: JunctionStub | None = None,
) -> FastAPI:
    """The stub as a FastAPI app (its state is ``app.state.stub``, a `JunctionStub`).

    Args:
        api_key: The team key ``X-Vital-API-Key`` must carry; None accepts only bearer
            tokens.
        faults: Initial fault plan (none by default).
        token_ttl_s: Lifetime of the access tokens it issues.
        stub: Existing state to serve (tests); built from the other arguments if None.

    Returns:
        The app.
    """
    state = stub or JunctionStub(api_key=api_key, token_ttl_s=token_ttl_s)
    if faults is not None:
        state.set_faults(faults)
    app = FastAPI(title="Junction stub", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.stub = state
    app.add_middleware(_FaultMiddleware, stub=state)

    async def ingest(request: Request, user_id: str, resource: str) -> Response:
        if not state.authorized(request, user_id):
            return _problem(401, "unauthorized", "missing or invalid credentials")
        raw = await _body(request)
        if isinstance(raw, Response):
            return raw
        try:
            payload = _PAYLOADS[resource].model_validate_json(raw)
        except ValidationError as exc:
            return _invalid(exc)
        if isinstance(payload, BodyPayload):
            lists: dict[str, Sequence[Sample]] = {
                "weight": payload.data.body_mass,
                "fat": payload.data.body_fat_percentage,
            }
            count = 0
            for name, samples in lists.items():
                for sample in samples:
                    state.upsert(user_id, name, payload, sample)
                count += len(samples)
        else:
            data: list[Any] = payload.data  # type: ignore[attr-defined]
            for sample in data:
                state.upsert(user_id, resource, payload, sample)
            count = len(data)
        entry = getattr(request.state, "stub_entry", None)
        if isinstance(entry, LoggedRequest):
            entry.samples, entry.stage = count, payload.stage
        return JSONResponse({"success": True, "count": count})

    @app.post("/v2/timeseries/{user_id}/{resource}")
    async def post_timeseries(request: Request, user_id: str, resource: str) -> Response:
        if resource not in {"glucose", "blood_pressure"}:
            return _problem(404, "unknown_resource", f"{resource} is not ingested here")
        return await ingest(request, user_id, resource)

    @app.post("/v2/summary/{resource}/{user_id}")
    async def post_summary(request: Request, resource: str, user_id: str) -> Response:
        if resource != "body":
            return _problem(404, "unknown_resource", f"{resource} is not ingested here")
        return await ingest(request, user_id, resource)

    @app.post("/v2/link/provider/manual/{slug}")
    async def connect_manual(request: Request, slug: str) -> Response:
        try:
            body = ManualProviderRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            return _invalid(exc)
        if not state.authorized(request, body.user_id):
            return _problem(401, "unauthorized", "missing or invalid credentials")
        if (body.user_id, slug) in state.connections:
            return _problem(409, "duplicate_connection", "already connected")
        state.connections.add((body.user_id, slug))
        return JSONResponse({"success": True})

    @app.post("/v2/user/{user_id}/sign_in_token")
    async def sign_in_token(request: Request, user_id: str) -> Response:
        key = request.headers.get("x-vital-api-key")
        if state.api_key is None or key is None or not secrets.compare_digest(key, state.api_key):
            return _problem(401, "unauthorized", "a team API key is required")
        user_token = secrets.token_urlsafe(24)
        state.sign_in_tokens[user_token] = user_id
        inner = json.dumps({"public_key": "stub", "user_token": user_token}).encode()
        return JSONResponse({"user_id": user_id, "sign_in_token": base64.b64encode(inner).decode()})

    @app.post("/v1/token")
    async def token(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        grant = form.get("grant_type")
        if grant == "urn:ietf:params:oauth:grant-type:token-exchange":
            if form.get("subject_token_type") != "urn:junction:sign-in-token":
                return _problem(400, "invalid_request", "unsupported subject_token_type")
            user_id = state.sign_in_tokens.pop(form.get("subject_token", ""), None)
        elif grant == "refresh_token":
            user_id = state.refresh_tokens.pop(form.get("refresh_token", ""), None)
            if user_id is not None and user_id in state.auth_errors:
                return _problem(400, state.auth_errors[user_id], "refresh refused")
        else:
            return _problem(400, "unsupported_grant_type", f"grant_type {grant!r}")
        if user_id is None:
            return _problem(400, "invalid_token", "unknown or used token")
        return JSONResponse(state.issue_tokens(user_id))

    @app.get("/v2/timeseries/{user_id}/{resource}")
    async def read_back(user_id: str, resource: str) -> list[dict[str, Any]]:
        return [
            doc
            for doc in state.samples.values()
            if doc["user_id"] == user_id and doc["resource"] == resource
        ]

    @app.get("/_stub/samples")
    async def all_samples() -> list[dict[str, Any]]:
        return list(state.samples.values())

    @app.get("/_stub/requests")
    async def request_log() -> list[dict[str, Any]]:
        return [dataclasses.asdict(r) for r in state.requests]

    @app.get("/_stub/faults")
    async def get_faults() -> Faults:
        return state.faults

    @app.put("/_stub/faults")
    async def put_faults(faults: Faults) -> Faults:
        state.set_faults(faults)
        return state.faults

    @app.post("/_stub/reset")
    async def reset() -> dict[str, bool]:
        state.reset()
        return {"success": True}

    return app
