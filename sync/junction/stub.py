"""A local Junction stand-in, strict on everything Junction's docs state, with fault injection.

Every rule below cites its source: a file of ``../shared/reference/`` and a phrase in it.

Registries:

- users: ``POST /v2/user`` ``{"client_user_id"}`` (team key) creates one
  (junction-docs/api-reference__user__create-user.txt); ``junction-stub --user ID`` and
  `JunctionStub.add_user` register known ids. Any call for an unknown user is a 404
  ``user_not_found``.
- connections: ``POST /v2/link/provider/manual/{slug}`` ``{"user_id"}``: 200 the first time,
  409 after (mobile-sdk-sync.md §2.1 "409 = already exists"); the slug must be one of the
  docs' provider table (`sync.junction.providers`), else 400 ``unsupported_provider``.
  A data POST for a (user, provider) never linked is a 400 ``connection_not_found``: data
  arrives through a connection (mobile-sdk-sync.md §6 "Copy" 2 "Before the first upload per
  user+slug, POST /v2/link/provider/manual/{slug}"); Junction's exact answer is not
  documented, this one is the stub's.

Ingestion (mobile-sdk-sync.md §2): ``POST /v2/timeseries/{user_id}/glucose|blood_pressure``
and ``POST /v2/summary/body/{user_id}``, checked in this order:

1. auth: team key or a bearer token of that user, else 401;
2. ``Content-Type: application/json`` (gzip ``Content-Encoding`` allowed), else 415
   (junction-digest.md §4.2 "``Content-Type: application/json`` on POST");
3. shape, with `sync.junction.schemas` (422 ``{"detail": [{"loc", "msg", "type"}]}``,
   junction-digest.md §4.5 "Validation (422)");
4. user known (404), provider slug supplies the resource per the docs' provider table
   (400 ``unsupported_resource``: glucose under ``omron_ble``, body under ``accuchek_ble``),
   connection made (400 ``connection_not_found``);
5. plausible values (422 ``value_out_of_range``, `PLAUSIBLE`): the docs give units, not
   ranges, except body fat "``%`` (0-100)" (junction-digest.md §1.3); the other bounds are
   the stub's, wide enough for any meter, cuff or scale;
6. blood pressure parts at one instant (422 ``parts_at_different_times``): BP is a discrete
   resource, one ``timestamp`` for ``systolic`` and ``diastolic`` (junction-digest.md §1.1
   "Blood pressure has no `value`. It has `systolic` … and `diastolic`");
7. historical stage: samples outside ``[start_date, end_date]`` are dropped, not stored, and
   counted (``dropped`` in the answer and the log): "out of bound data are dropped"
   (junction-docs/wearables__providers__data-ingestion-bounds.txt), the window being the
   historical pull range "``[now - days_to_pull, now]``" (…historical-data-pull-range.txt);
8. upsert by (user, resource, provider, source type, timestamp), last write wins
   (junction-docs/wearables__providers__data-primary-key.txt).

Auth: ``POST /v2/user/{user_id}/sign_in_token`` (team key) answers a Sign-In Token shaped
like Junction's (base64 JSON around a JWT with ``uid`` and ``iss``, mobile-sdk-sync.md
§1.2). The token endpoint ``POST /v1/token`` is served by `create_auth_app` on its own
origin (the auth host, §1.1), not by the API app: exchange (single use; a used or expired
token is ``invalid_token``) and refresh with rotation; a user can be made to answer
``invalid_token`` or ``reauthentication_required`` (`JunctionStub.auth_errors`).

Read-back, auth required like every documented GET (junction-digest.md §1.2 "header
`x-vital-api-key`"): ``GET /v2/timeseries/{user_id}/{resource}`` (the legacy flat list:
``glucose``, ``blood_pressure``, ``body_weight``, ``body_fat``),
``GET /v2/timeseries/{user_id}/{resource}/grouped?start_date=…&end_date=…``
(``{"groups": {provider: [{"source", "data"}]}, "next", "next_cursor"}``) and
``GET /v2/summary/body/{user_id}?start_date=…&end_date=…`` (``{"body": [...]}``).

Operator controls (loopback only, no auth): ``GET /_stub/requests`` (every request: method,
path, status, headers with secrets redacted, decoded body and answer for the latest
`LOGGED_BODIES`, fault, samples, dropped), ``GET /_stub/samples`` (stored samples),
``GET /_stub/dropped``, ``GET|PUT /_stub/faults``, ``POST /_stub/reset``.

Faults (`sync.junction.stub_faults.Faults`) apply to data and link POSTs: 429 with
Retry-After, 500, 503, slow responses, dropped connections (before or after the body was
accepted), 401 once, a permanent 400; scripted or random. Set them with
`create_app(faults=…)`, `Faults.from_flags` (CLI flags) or ``PUT /_stub/faults``.
"""

import asyncio
import dataclasses
import json
import logging
import time
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from drivers.readings import ReadingKind
from sync.junction.payloads import (
    BloodPressurePayload,
    BloodPressureSample,
    BodyPayload,
    Envelope,
    GlucosePayload,
    ManualProviderRequest,
    Sample,
)
from sync.junction.providers import PROVIDER_RESOURCES, accepts
from sync.junction.stub_faults import Faults
from sync.junction.stub_state import JunctionStub, LoggedRequest, redact_fields, redact_headers

_LOGGER = logging.getLogger(__name__)

__all__ = ["Faults", "JunctionStub", "LoggedRequest", "create_app", "create_auth_app"]

MAX_BODY_BYTES = 64 * 1024 * 1024  # decompressed; a hostile gzip bomb stops here
LOGGED_BODIES = 1000  # the log keeps decoded bodies of this many latest requests (memory)

_DATA_PREFIXES = ("/v2/timeseries/", "/v2/summary/", "/v2/link/provider/manual/")

PLAUSIBLE: Mapping[tuple[str, str], tuple[float, float]] = {
    # (part, unit) -> [low, high]; see the module docstring, rule 5.
    ("glucose", "mmol/L"): (0.5, 60.0),  # meters read 0.6-33.3 mmol/L (10-600 mg/dL)
    ("glucose", "mg/dL"): (9.0, 1081.0),
    ("systolic", "mmHg"): (40.0, 300.0),
    ("diastolic", "mmHg"): (20.0, 250.0),
    ("pulse", "bpm"): (20.0, 300.0),
    ("body_mass", "kg"): (0.5, 650.0),
    ("body_fat", "%"): (0.0, 100.0),  # junction-digest.md §1.3 body_fat "% (0-100)"
    ("body_fat", "percent"): (0.0, 100.0),
}

_READ_PATHS = {  # read path -> stored resource (junction-digest.md §1.3: path vs event slug)
    "glucose": "glucose",
    "blood_pressure": "blood_pressure",
    "body_weight": "weight",
    "body_fat": "fat",
}


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
    """Logs requests (not ``/_stub``) and injects faults into data/link POSTs."""

    def __init__(self, app: ASGIApp, stub: JunctionStub) -> None:
        self.app = app
        self.stub = stub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith("/_stub/"):
            await self.app(scope, receive, send)
            return
        route = _route_key(scope.get("method", ""), scope.get("path", ""))
        stub = self.stub
        headers = dict(scope["headers"])
        entry = LoggedRequest(
            seq=len(stub.requests) + 1,
            method=scope["method"],
            path=scope["path"],
            user_id=route[0] if route else None,
            resource=route[1] if route else None,
            started=time.monotonic(),
            gzip=headers.get(b"content-encoding", b"") == b"gzip",
            concurrent=stub.in_flight.get(route, 0) if route else 0,
            headers=redact_headers(scope["headers"]),
        )
        stub.requests.append(entry)
        if len(stub.requests) > LOGGED_BODIES:
            stub.requests[-LOGGED_BODIES - 1].body = None
            stub.requests[-LOGGED_BODIES - 1].answer = None
        scope.setdefault("state", {})["stub_entry"] = entry
        if route is None:
            try:
                await self.app(scope, receive, _recording(entry, send, None))
            finally:
                entry.ended = time.monotonic()
            return
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
            entry.status, entry.answer = status, body
            await JSONResponse(body, status, headers=extra)(scope, receive, send)
            return
        if fault == "slow":
            await asyncio.sleep(stub.faults.slow_s)
        if fault == "drop":
            entry.status = -1
            await _drop(send)
            return
        await self.app(scope, receive, _recording(entry, send, fault))
        if fault == "drop_after_accept":
            entry.status = -(entry.status or 0)
            await _drop(send)


def _recording(entry: LoggedRequest, send: Send, fault: str | None) -> Send:
    """`send` that notes the status and JSON answer in the log (and swallows it on a drop)."""
    chunks: list[bytes] = []

    async def logging_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            entry.status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                try:
                    entry.answer = json.loads(b"".join(chunks) or b"null")
                except ValueError:
                    entry.answer = None
        if fault != "drop_after_accept":
            await send(message)

    return logging_send


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


def _entry(request: Request) -> LoggedRequest | None:
    entry = getattr(request.state, "stub_entry", None)
    return entry if isinstance(entry, LoggedRequest) else None


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
    entry = _entry(request)
    if entry is not None:
        try:
            entry.body = redact_fields(json.loads(raw))
        except ValueError:
            entry.body = raw[:2000].decode("utf-8", "replace")
    return raw


def _json_content(request: Request) -> JSONResponse | None:
    """415 unless the body is declared JSON (junction-digest.md §4.2)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        return _problem(415, "unsupported_media_type", "Content-Type must be application/json")
    return None


_PAYLOADS: Mapping[str, type[Envelope]] = {
    "glucose": GlucosePayload,
    "blood_pressure": BloodPressurePayload,
    "body": BodyPayload,
}


def _out_of_range(part: str, sample: Sample) -> str | None:
    bounds = PLAUSIBLE.get((part, sample.unit))
    if bounds is None or bounds[0] <= sample.value <= bounds[1]:
        return None
    return f"{part} {sample.value:g} {sample.unit} is outside [{bounds[0]:g}, {bounds[1]:g}]"


def _parts(resource: str, payload: Envelope) -> list[tuple[str, str, Any]]:
    """(stored resource, part name for the range check, sample) per sample."""
    if isinstance(payload, BodyPayload):
        return [("weight", "body_mass", m) for m in payload.data.body_mass] + [
            ("fat", "body_fat", f) for f in payload.data.body_fat_percentage
        ]
    if isinstance(payload, BloodPressurePayload):
        return [(resource, "blood_pressure", bp) for bp in payload.data]
    if isinstance(payload, GlucosePayload):
        return [(resource, "glucose", g) for g in payload.data]
    return []


def _refusals(rows: list[tuple[str, str, Any]]) -> list[dict[str, Any]]:
    """422 details for implausible values and BP parts at different instants."""
    problems: list[dict[str, Any]] = []
    for index, (_, kind, sample) in enumerate(rows):
        checks: list[tuple[str, Sample]] = [(kind, sample)]
        if isinstance(sample, BloodPressureSample):
            checks = [("systolic", sample.systolic), ("diastolic", sample.diastolic)]
            if sample.pulse is not None:
                checks.append(("pulse", sample.pulse))
            if len({(p.start_date, p.end_date) for _, p in checks}) > 1:
                problems.append(
                    {
                        "loc": ["body", "data", index],
                        "msg": "systolic, diastolic and pulse must share start_date/end_date",
                        "type": "parts_at_different_times",
                    }
                )
        for name, part in checks:
            if reason := _out_of_range(name, part):
                problems.append(
                    {
                        "loc": ["body", "data", index, name],
                        "msg": reason,
                        "type": "value_out_of_range",
                    }
                )
    return problems


def _in_window(payload: Envelope, sample: Any) -> bool:
    """Historical stage: the sample lies in ``[start_date, end_date]`` (rule 7)."""
    if payload.stage != "historical" or payload.start_date is None or payload.end_date is None:
        return True
    first = sample.systolic if isinstance(sample, BloodPressureSample) else sample
    return bool(payload.start_date <= first.start_date <= payload.end_date)


def _parse_date(value: str | None, *, end: bool) -> datetime | None:
    """A query date: ``YYYY-MM-DD`` (start 00:00:00, end 23:59:59) or ISO datetime."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if len(value) == len("YYYY-MM-DD"):
        parsed += timedelta(hours=23, minutes=59, seconds=59) if end else timedelta()
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _junction_sample(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored sample as Junction's read API shows it (junction-digest.md §1.1)."""
    shown: dict[str, Any] = {
        "timestamp": doc["timestamp"].replace("Z", "+00:00"),
        "timezone_offset": doc.get("timezone_offset"),
        "type": doc["source_type"],
    }
    if doc["resource"] == "blood_pressure":
        shown |= {
            "unit": "mmHg",
            "systolic": doc["systolic"]["value"],
            "diastolic": doc["diastolic"]["value"],
        }
    else:
        shown |= {"unit": doc["unit"], "value": doc["value"]}
    return shown


def create_app(
    *,
    api_key: str | None = None,
    faults: Faults | None = None,
    token_ttl_s: float = 3600.0,
    users: list[str] | None = None,
    stub: JunctionStub | None = None,
) -> FastAPI:
    """The stub's API as a FastAPI app (its state is ``app.state.stub``, a `JunctionStub`).

    The token endpoint is not here: serve `create_auth_app` on another origin
    (`sync.junction.stub_server.StubServer` does both).

    Args:
        api_key: The team key ``X-Vital-API-Key`` must carry; None accepts only bearer
            tokens.
        faults: Initial fault plan (none by default).
        token_ttl_s: Lifetime of the access tokens it issues.
        users: Junction user ids to register (more with ``POST /v2/user``).
        stub: Existing state to serve (tests); built from the other arguments if None.

    Returns:
        The app.
    """
    state = stub or JunctionStub(api_key=api_key, token_ttl_s=token_ttl_s)
    for user_id in users or []:
        state.add_user(user_id)
    if faults is not None:
        state.set_faults(faults)
    app = FastAPI(title="Junction stub", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.stub = state
    app.add_middleware(_FaultMiddleware, stub=state)

    def unknown_user(user_id: str) -> JSONResponse | None:
        if user_id in state.users:
            return None
        return _problem(404, "user_not_found", f"user {user_id} does not exist in this team")

    async def ingest(request: Request, user_id: str, resource: str) -> Response:
        if not state.authorized(request, user_id):
            return _problem(401, "unauthorized", "missing or invalid credentials")
        if (refused := _json_content(request)) is not None:
            return refused
        raw = await _body(request)
        if isinstance(raw, Response):
            return raw
        try:
            payload = _PAYLOADS[resource].model_validate_json(raw)
        except ValidationError as exc:
            return _invalid(exc)
        if (missing := unknown_user(user_id)) is not None:
            return missing
        if not accepts(payload.provider, ReadingKind(resource)):
            return _problem(
                400,
                "unsupported_resource",
                f"provider {payload.provider} does not supply {resource} (docs' provider table)",
            )
        if (user_id, payload.provider) not in state.connections:
            return _problem(
                400,
                "connection_not_found",
                f"user {user_id} has no {payload.provider} connection; link it first",
            )
        rows = _parts(resource, payload)
        if problems := _refusals(rows):
            return JSONResponse({"detail": problems}, 422)
        stored = dropped = 0
        for name, _, sample in rows:
            if _in_window(payload, sample):
                state.upsert(user_id, name, payload, sample)
                stored += 1
            else:
                dropped += 1
                state.dropped.append(
                    {"user_id": user_id, "resource": name, "reason": "outside historical window"}
                )
        entry = _entry(request)
        if entry is not None:
            entry.samples, entry.stage, entry.dropped = stored, payload.stage, dropped
        return JSONResponse({"success": True, "count": stored, "dropped": dropped})

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
        if (refused := _json_content(request)) is not None:
            return refused
        raw = await _body(request)
        if isinstance(raw, Response):
            return raw
        try:
            body = ManualProviderRequest.model_validate_json(raw)
        except ValidationError as exc:
            return _invalid(exc)
        if not state.authorized(request, body.user_id):
            return _problem(401, "unauthorized", "missing or invalid credentials")
        if (missing := unknown_user(body.user_id)) is not None:
            return missing
        if slug not in PROVIDER_RESOURCES:
            return _problem(400, "unsupported_provider", f"{slug} is not a manual provider")
        if (body.user_id, slug) in state.connections:
            return _problem(409, "duplicate_connection", "already connected")
        state.connections.add((body.user_id, slug))
        return JSONResponse({"success": True})

    @app.post("/v2/user")
    async def create_user(request: Request) -> Response:
        if not state.team_key(request):
            return _problem(401, "unauthorized", "a team API key is required")
        raw = await _body(request)
        if isinstance(raw, Response):
            return raw
        try:
            client_user_id = str(json.loads(raw)["client_user_id"])
        except (ValueError, KeyError, TypeError):
            return _problem(422, "invalid_request", 'body must be {"client_user_id": …}')
        user_id = state.create_user(client_user_id)
        return JSONResponse({"user_id": user_id, "client_user_id": client_user_id})

    @app.post("/v2/user/{user_id}/sign_in_token")
    async def sign_in_token(request: Request, user_id: str) -> Response:
        if not state.team_key(request):
            return _problem(401, "unauthorized", "a team API key is required")
        if (missing := unknown_user(user_id)) is not None:
            return missing
        return JSONResponse({"user_id": user_id, "sign_in_token": state.sign_in_token(user_id)})

    def readable(request: Request, user_id: str, resource: str) -> JSONResponse | str:
        if not state.authorized(request, user_id):
            return _problem(401, "unauthorized", "missing or invalid credentials")
        if (missing := unknown_user(user_id)) is not None:
            return missing
        if resource not in _READ_PATHS:
            return _problem(404, "unknown_resource", f"{resource} is not served by the stub")
        return _READ_PATHS[resource]

    def stored(
        user_id: str, resource: str, start: datetime | None, end: datetime | None
    ) -> list[dict[str, Any]]:
        docs = []
        for doc in state.samples.values():
            if doc["user_id"] != user_id or doc["resource"] != resource:
                continue
            at = datetime.fromisoformat(doc["timestamp"].replace("Z", "+00:00"))
            if (start and at < start) or (end and at > end):
                continue
            docs.append(doc)
        return sorted(docs, key=lambda d: d["timestamp"])

    @app.get("/v2/timeseries/{user_id}/{resource}/grouped")
    async def read_grouped(
        request: Request,
        user_id: str,
        resource: str,
        start_date: str,
        end_date: str | None = None,
        provider: str | None = None,
    ) -> Response:
        name = readable(request, user_id, resource)
        if isinstance(name, Response):
            return name
        try:
            start, end = _parse_date(start_date, end=False), _parse_date(end_date, end=True)
        except ValueError:
            return _problem(422, "invalid_date", "start_date/end_date: YYYY-MM-DD or ISO 8601")
        groups: dict[str, list[dict[str, Any]]] = {}
        by_source: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for doc in stored(user_id, name, start, end):
            if provider and doc["provider"] != provider:
                continue
            by_source.setdefault((doc["provider"], doc["source_type"]), []).append(doc)
        for (slug, source_type), docs in by_source.items():
            groups.setdefault(slug, []).append(
                {
                    "source": {"provider": slug, "type": source_type},
                    "data": [_junction_sample(d) for d in docs],
                }
            )
        return JSONResponse({"groups": groups, "next": None, "next_cursor": None})

    @app.get("/v2/timeseries/{user_id}/{resource}")
    async def read_flat(
        request: Request,
        user_id: str,
        resource: str,
        start_date: str | None = None,
        end_date: str | None = None,
    ) -> Response:
        name = readable(request, user_id, resource)
        if isinstance(name, Response):
            return name
        start, end = _parse_date(start_date, end=False), _parse_date(end_date, end=True)
        return JSONResponse([_junction_sample(d) for d in stored(user_id, name, start, end)])

    @app.get("/v2/summary/body/{user_id}")
    async def read_body(
        request: Request, user_id: str, start_date: str, end_date: str | None = None
    ) -> Response:
        name = readable(request, user_id, "body_weight")
        if isinstance(name, Response):
            return name
        start, end = _parse_date(start_date, end=False), _parse_date(end_date, end=True)
        days: dict[tuple[str, str], dict[str, Any]] = {}
        for resource, field in (("weight", "weight"), ("fat", "fat")):
            for doc in stored(user_id, resource, start, end):
                day = doc["timestamp"][:10]
                summary = days.setdefault(
                    (day, doc["provider"]),
                    {
                        "id": f"{user_id}-{doc['provider']}-{day}",
                        "user_id": user_id,
                        "calendar_date": day,
                        "source": {"provider": doc["provider"], "type": doc["source_type"]},
                    },
                )
                summary[field] = doc["value"]  # the day's latest (sorted by time)
        return JSONResponse({"body": list(days.values())})

    @app.get("/_stub/samples")
    async def all_samples() -> list[dict[str, Any]]:
        return list(state.samples.values())

    @app.get("/_stub/dropped")
    async def all_dropped() -> list[dict[str, Any]]:
        return list(state.dropped)

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


def create_auth_app(stub: JunctionStub) -> FastAPI:
    """The token endpoint ``POST /v1/token`` of `stub`, for its own origin (the auth host).

    Form (``application/x-www-form-urlencoded``, mobile-sdk-sync.md §1.2 item 3): the
    token exchange (``subject_token`` = the Sign-In Token's JWT, single use, expires) or
    ``grant_type=refresh_token`` (rotated: the old refresh token stops working, item 5).
    """
    state = stub
    app = FastAPI(title="Junction stub auth", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.stub = state
    app.add_middleware(_FaultMiddleware, stub=state)

    @app.post("/v1/token")
    async def token(request: Request) -> Response:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            return _problem(415, "unsupported_media_type", "a form body is expected")
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        entry = _entry(request)
        if entry is not None:
            entry.body = redact_fields(form)
        grant = form.get("grant_type")
        user_id: str | None
        if grant == "urn:ietf:params:oauth:grant-type:token-exchange":
            if form.get("subject_token_type") != "urn:junction:sign-in-token":
                return _problem(400, "invalid_request", "unsupported subject_token_type")
            issued = state.sign_in_tokens.pop(form.get("subject_token", ""), None)
            alive = issued is not None and issued[1] > time.monotonic()
            user_id = issued[0] if issued is not None and alive else None
        elif grant == "refresh_token":
            user_id = state.refresh_tokens.pop(form.get("refresh_token", ""), None)
            if user_id is not None and user_id in state.auth_errors:
                return _problem(400, state.auth_errors[user_id], "refresh refused")
        else:
            return _problem(400, "unsupported_grant_type", f"grant_type {grant!r}")
        if user_id is None:
            return _problem(400, "invalid_token", "unknown, used or expired token")
        return JSONResponse(state.issue_tokens(user_id))

    return app
