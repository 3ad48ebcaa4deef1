"""The Junction stub's state: users, connections, samples, tokens, request log, faults."""

import base64
import json
import random
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from sync.junction.payloads import Envelope
from sync.junction.regions import Environment, Region, issuer
from sync.junction.schemas import instant_text
from sync.junction.stub_faults import FaultName, Faults

SIGN_IN_TOKEN_TTL_S = 600.0  # "short-lived" (mobile-sdk-sync.md §1.2 item 1); not stated
REDACTED = "<redacted>"
SECRET_HEADERS = frozenset({"authorization", "x-vital-api-key", "x-vital-link-token"})
SECRET_FIELDS = frozenset({"subject_token", "refresh_token", "access_token", "sign_in_token"})


def redact_headers(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Request headers for the log, secrets replaced by ``<redacted>``."""
    shown: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        shown[name] = REDACTED if name in SECRET_HEADERS else value
    return shown


def redact_fields(body: Any) -> Any:
    """A decoded body for the log with token fields replaced by ``<redacted>``."""
    if isinstance(body, dict):
        return {k: REDACTED if k in SECRET_FIELDS else redact_fields(v) for k, v in body.items()}
    if isinstance(body, list):
        return [redact_fields(v) for v in body]
    return body


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(slots=True)
class LoggedRequest:
    """One request as the stub saw it (``/_stub/*`` controls are not logged)."""

    seq: int
    method: str
    path: str
    user_id: str | None
    resource: str | None
    started: float  # time.monotonic()
    ended: float | None = None
    status: int | None = None  # < 0: dropped; -200 = stored, then dropped; -1 = dropped unread
    fault: str | None = None
    samples: int = 0
    gzip: bool = False
    concurrent: int = 0  # requests in flight for the same (user, resource) when it began
    stage: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # secrets redacted
    body: Any = None  # decoded (gunzipped, parsed JSON or form), token fields redacted
    answer: Any = None  # the JSON the stub answered with
    dropped: int = 0  # historical samples outside their window, not stored


@dataclass(slots=True)
class Session:
    """An access token's owner and expiry (monotonic)."""

    user_id: str
    expires_at: float


@dataclass
class JunctionStub:
    """The stub's state, shared by its routes and its fault middleware."""

    api_key: str | None = None
    faults: Faults = field(default_factory=Faults)
    token_ttl_s: float = 3600.0
    region: Region = Region.US
    environment: Environment = Environment.SANDBOX
    users: dict[str, str | None] = field(default_factory=dict)  # user_id -> client_user_id
    samples: dict[tuple[str, str, str, str, str], dict[str, Any]] = field(default_factory=dict)
    writes: int = 0
    requests: list[LoggedRequest] = field(default_factory=list)
    connections: set[tuple[str, str]] = field(default_factory=set)
    auth_errors: dict[str, str] = field(default_factory=dict)
    sign_in_tokens: dict[str, tuple[str, float]] = field(default_factory=dict)
    # ^ user_token (a JWT) -> (user, monotonic expiry); popped on exchange (single use)
    dropped: list[dict[str, Any]] = field(default_factory=list)  # samples not stored, why
    access_tokens: dict[str, Session] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # refresh token -> user
    in_flight: dict[tuple[str | None, str | None], int] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)

    def set_faults(self, faults: Faults) -> None:
        """Replace the fault plan (and reseed if it carries a seed)."""
        self.faults = faults
        if faults.seed is not None:
            self.rng.seed(faults.seed)

    def add_user(self, user_id: str, client_user_id: str | None = None) -> str:
        """Register a Junction user (``POST /v2/user`` or ``junction-stub --user``)."""
        self.users.setdefault(user_id, client_user_id)
        return user_id

    def create_user(self, client_user_id: str) -> str:
        """A new user id for `client_user_id`, as ``POST /v2/user`` makes one."""
        return self.add_user(str(uuid.uuid4()), client_user_id)

    def sign_in_token(self, user_id: str) -> str:
        """A Sign-In Token shaped like Junction's: base64 of ``{"public_key", "user_token"}``.

        ``user_token`` is a JWT with ``uid`` and ``iss`` ("id-signer-{env}-{region}@…",
        mobile-sdk-sync.md §1.2 item 2). Its RS256 signature is random bytes: the SDK does
        not verify it and neither does the gateway; the stub knows its own tokens.
        """
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT"}
        claims = {
            "uid": user_id,
            "iss": issuer(self.region, self.environment),
            "tenant_id": "stub-tenant",
            "claims": {"vital_team_id": "stub-team"},
            "iat": now,
            "exp": now + int(SIGN_IN_TOKEN_TTL_S),
        }
        jwt = ".".join(
            [
                _b64url(json.dumps(header).encode()),
                _b64url(json.dumps(claims).encode()),
                _b64url(secrets.token_bytes(64)),
            ]
        )
        self.sign_in_tokens[jwt] = (user_id, time.monotonic() + SIGN_IN_TOKEN_TTL_S)
        inner = {"public_key": "stub-public-key", "user_token": jwt}
        return base64.b64encode(json.dumps(inner).encode()).decode()

    def reset(self) -> None:
        """Forget samples, requests, connections, drops and faults (users, tokens kept)."""
        self.samples.clear()
        self.requests.clear()
        self.connections.clear()
        self.dropped.clear()
        self.writes = 0
        self.set_faults(Faults())

    def next_fault(self) -> FaultName | None:
        """The fault for the next data or link request, if any."""
        return self.faults.next_fault(self.rng)

    def issue_tokens(self, user_id: str) -> dict[str, Any]:
        """A fresh access/refresh token pair for `user_id`."""
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.access_tokens[access] = Session(user_id, time.monotonic() + self.token_ttl_s)
        self.refresh_tokens[refresh] = user_id
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": self.token_ttl_s,
            "token_type": "bearer",
        }

    def team_key(self, request: Request) -> bool:
        """Whether the request carries the team API key."""
        key = request.headers.get("x-vital-api-key")
        return (
            key is not None
            and self.api_key is not None
            and secrets.compare_digest(key, self.api_key)
        )

    def authorized(self, request: Request, user_id: str) -> bool:
        """Whether the request carries the team key or a live token for `user_id`."""
        key = request.headers.get("x-vital-api-key")
        if key is not None:
            return self.api_key is not None and secrets.compare_digest(key, self.api_key)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        session = self.access_tokens.get(token) if scheme.lower() == "bearer" else None
        return (
            session is not None
            and session.user_id == user_id
            and session.expires_at > time.monotonic()
        )

    def upsert(self, user_id: str, resource: str, envelope: Envelope, sample: Any) -> None:
        """Store one sample under Junction's key; the last write wins."""
        dumped = sample.model_dump(mode="json", exclude_none=True)
        first = sample.systolic if resource == "blood_pressure" else sample
        timestamp = instant_text(first.start_date)
        key = (user_id, resource, envelope.provider, first.type or "unknown", timestamp)
        previous = self.samples.get(key)
        self.samples[key] = {
            "user_id": user_id,
            "resource": resource,
            "provider": envelope.provider,
            "source_type": first.type or "unknown",
            "timestamp": timestamp,
            "stage": envelope.stage,
            "time_zone": envelope.time_zone,
            "writes": 1 + (previous["writes"] if previous else 0),
            **dumped,
        }
        self.writes += 1
