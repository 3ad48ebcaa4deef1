"""The Junction stub's state: stored samples, tokens, connections, request log, faults."""

import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from sync.junction.schemas import Envelope, instant_text
from sync.junction.stub_faults import FaultName, Faults


@dataclass(slots=True)
class LoggedRequest:
    """One data or link request as the stub saw it."""

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
    samples: dict[tuple[str, str, str, str, str], dict[str, Any]] = field(default_factory=dict)
    writes: int = 0
    requests: list[LoggedRequest] = field(default_factory=list)
    connections: set[tuple[str, str]] = field(default_factory=set)
    auth_errors: dict[str, str] = field(default_factory=dict)
    sign_in_tokens: dict[str, str] = field(default_factory=dict)  # user_token -> user
    access_tokens: dict[str, Session] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # refresh token -> user
    in_flight: dict[tuple[str | None, str | None], int] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)

    def set_faults(self, faults: Faults) -> None:
        """Replace the fault plan (and reseed if it carries a seed)."""
        self.faults = faults
        if faults.seed is not None:
            self.rng.seed(faults.seed)

    def reset(self) -> None:
        """Forget samples, requests, connections and faults (tokens are kept)."""
        self.samples.clear()
        self.requests.clear()
        self.connections.clear()
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
