"""The Junction HTTP client: auth headers, gzip bodies, timeouts, and error translation.

This module is the one boundary where httpx exceptions and HTTP statuses become
`sync.errors` (always ``raise … from exc``):

| what happened                                   | raised                           |
| ----------------------------------------------- | -------------------------------- |
| connect refused / DNS / connect timeout         | `OfflineError`                   |
| read/write/pool timeout, dropped connection     | `UploadTimeoutError`             |
| 408, 429, 5xx (``Retry-After`` parsed)          | `ServerBusyError`                |
| 401 (bearer: after one refresh and one retry)   | `UnauthorizedError`              |
| token endpoint ``invalid_token``                | `InvalidTokenError` (purged)     |
| token endpoint ``reauthentication_required``    | `ReauthenticationRequiredError`  |
| any other 4xx                                   | `RejectedError`                  |
"""

import asyncio
import gzip
import importlib.metadata
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr, ValidationError

from sync.errors import (
    InvalidTokenError,
    OfflineError,
    ReauthenticationRequiredError,
    RejectedError,
    ServerBusyError,
    SignInTokenRejectedError,
    SyncError,
    UnauthorizedError,
    UploadTimeoutError,
)
from sync.junction.auth import MemoryTokenStore, TokenManager, TokenStore
from sync.junction.mapping import Upload
from sync.junction.regions import Environment, Region, api_base_url, auth_base_url
from sync.junction.schemas import TokenResponse

_LOGGER = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0  # a reachable Junction answers a TCP/TLS handshake well within this
READ_TIMEOUT_S = 30.0  # between the SDKs' 15 s (iOS) and 60 s (Android)
BODY_EXCERPT_CHARS = 2000  # response bodies kept for dead letters
GZIP_LEVEL = 5  # most of level 9's ratio on JSON at a fraction of the CPU (a Pi matters)
RELINK_STATUSES = frozenset({400, 404})  # a refusal that may mean "no such connection"
# Compact JSON, NaN refused. Bodies are built by `mapping` (trees, never cyclic): skipping
# the cycle check writes the same bytes ~7 % faster (issue 18: this runs per reading).
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, check_circular=False)


def user_agent() -> str:
    """``edge-gateway/<version> (+<project URL>)`` from the installed package's metadata.

    The URL is the ``[project.urls]`` Homepage (or the first Project-URL) of pyproject.toml,
    so Junction can reach whoever runs the gateway; without one, no URL is made up.
    """
    try:
        meta = importlib.metadata.metadata("edge-gateway")
    except importlib.metadata.PackageNotFoundError:
        return "edge-gateway (BLE gateway)"
    urls = [u.partition(",")[2].strip() for u in meta.get_all("Project-URL") or []]
    url = meta["Home-page"] or next((u for u in urls if u), None)
    detail = f"+{url}" if url else "BLE gateway"
    return f"edge-gateway/{meta['Version']} ({detail})"


USER_AGENT = user_agent()


class LinkStore(Protocol):
    """Where the gateway remembers which manual-provider connections it made (persisted)."""

    async def links(self) -> set[tuple[str, str]]:
        """Every (user_id, provider) linked."""
        ...

    async def set_link(self, user_id: str, provider: str, *, linked: bool) -> None:
        """Remember (or forget) one link."""
        ...


class MemoryLinkStore:
    """`LinkStore` in memory."""

    def __init__(self) -> None:
        self._links: set[tuple[str, str]] = set()

    async def links(self) -> set[tuple[str, str]]:
        """See `LinkStore.links`."""
        return set(self._links)

    async def set_link(self, user_id: str, provider: str, *, linked: bool) -> None:
        """See `LinkStore.set_link`."""
        if linked:
            self._links.add((user_id, provider))
        else:
            self._links.discard((user_id, provider))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _error_type(response: httpx.Response) -> str | None:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return None
    if isinstance(detail, dict) and isinstance(detail.get("error_type"), str):
        return str(detail["error_type"])
    return None


def _status_error(what: str, response: httpx.Response) -> SyncError:
    """The error for a non-2xx answer other than 401."""
    status, body = response.status_code, response.text[:BODY_EXCERPT_CHARS]
    if status in {408, 429} or status >= 500:
        return ServerBusyError(
            f"{what}: Junction answered {status}; will retry with backoff",
            status_code=status,
            body=body,
            retry_after=_retry_after(response),
        )
    return RejectedError(
        f"{what}: Junction refused it with {status}; inspect the dead letter and fix the data "
        "or the mapping, then requeue it",
        status_code=status,
        body=body,
    )


class JunctionClient:
    """Talks to one Junction region and environment for many users.

    Two auth modes: a team API key (``X-Vital-API-Key``, managed kiosks) if `api_key` is
    given, else per-user Sign-In Tokens (`sign_in`, then bearer tokens kept fresh by a
    `TokenManager` over `token_store`).
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: SecretStr | None = None,
        region: Region | str = Region.US,
        environment: Environment | str = Environment.SANDBOX,
        auth_url: str | None = None,
        token_store: TokenStore | None = None,
        link_store: LinkStore | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        read_timeout_s: float = READ_TIMEOUT_S,
        gzip_bodies: bool = True,
        max_connections: int = 16,
    ) -> None:
        """Build a client.

        Args:
            base_url: API base; defaults to the region/environment host. A local stub's
                URL serves both the API and the token endpoint.
            api_key: Team API key; None selects Sign-In Token mode.
            region: ``us`` or ``eu`` (the team's region).
            environment: ``production``, ``sandbox`` or ``dev``.
            auth_url: Token endpoint base; defaults to the region/environment auth host
                (``https://auth.{env.}{region}.junction.com``), whatever `base_url` is: the
                token endpoint lives on its own origin (mobile-sdk-sync.md §1.1).
            token_store: Where sessions are kept (Sign-In Token mode); in memory if None.
            link_store: Where made manual-provider links are remembered; in memory if None.
            transport: httpx transport (tests inject `httpx.MockTransport`).
            connect_timeout_s: TCP/TLS connect timeout.
            read_timeout_s: Read/write timeout.
            gzip_bodies: Send ingestion bodies gzip-encoded (as the SDKs do).
            max_connections: Connection pool size.
        """
        region, environment = Region(region), Environment(environment)
        self.base_url = (base_url or api_base_url(region, environment)).rstrip("/")
        self.auth_url = (auth_url or auth_base_url(region, environment)).rstrip("/")
        self._api_key = api_key
        self._gzip = gzip_bodies
        self.tokens = TokenManager(
            token_store or MemoryTokenStore(),
            self._token_request,
            region=region,
            environment=environment,
        )
        self._links = link_store or MemoryLinkStore()
        self._connected: set[tuple[str, str]] | None = None  # loaded from _links on first use
        self._link_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"user-agent": USER_AGENT, "accept": "application/json"},
        )

    @property
    def uses_api_key(self) -> bool:
        """Whether requests carry the team API key (else per-user bearer tokens)."""
        return self._api_key is not None

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _auth_headers(self, user_id: str) -> dict[str, str]:
        if self._api_key is not None:
            return {"x-vital-api-key": self._api_key.get_secret_value()}
        token = await self.tokens.access_token(user_id)
        return {"authorization": f"Bearer {token.get_secret_value()}"}

    async def _send(
        self, what: str, url: str, *, content: bytes, headers: Mapping[str, str]
    ) -> httpx.Response:
        try:
            return await self._http.post(url, content=content, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            msg = f"{what}: cannot reach Junction ({type(exc).__name__}); check the network"
            raise OfflineError(msg) from exc
        except httpx.TimeoutException as exc:
            msg = f"{what}: {type(exc).__name__}; outcome unknown, will resend (upserts)"
            raise UploadTimeoutError(msg) from exc
        except httpx.TransportError as exc:
            msg = f"{what}: connection lost ({type(exc).__name__}); will resend (upserts)"
            raise UploadTimeoutError(msg) from exc

    async def _post_json(
        self, what: str, user_id: str, path: str, body: Any, *, compress: bool
    ) -> httpx.Response:
        """POST with auth; in bearer mode a 401 refreshes once and retries once."""
        content = _ENCODER.encode(body).encode()
        headers = {"content-type": "application/json"}
        if compress:
            content = gzip.compress(content, compresslevel=GZIP_LEVEL)
            headers["content-encoding"] = "gzip"
        url = self.base_url + path
        auth = await self._auth_headers(user_id)
        response = await self._send(what, url, content=content, headers=headers | auth)
        if response.status_code == 401 and self._api_key is None:
            stale = SecretStr(auth["authorization"].removeprefix("Bearer "))
            await self.tokens.refresh(user_id, stale=stale)
            auth = await self._auth_headers(user_id)
            response = await self._send(what, url, content=content, headers=headers | auth)
        if response.status_code == 401:
            remedy = (
                "check the team API key"
                if self._api_key is not None
                else "sign the user in again with a new sign-in token"
            )
            msg = f"{what}: Junction answered 401; {remedy}"
            raise UnauthorizedError(msg, user_id=user_id)
        return response

    async def post(self, user_id: str, upload: Upload) -> None:
        """POST one upload; returns on 2xx.

        A 400/404 for a provider this client linked may mean the connection is gone
        (deregistered, or Junction's state was reset): the link is made again and, if that
        created it anew (not 409), the upload is sent once more (mobile-sdk-sync.md §3.10:
        the SDKs re-create the connection so "a remote deregistration is undone").

        Raises:
            SyncError: Classified as in the module docstring.
        """
        what = f"upload of {upload.samples} readings to {upload.path}"
        response = await self._post_json(
            what, user_id, upload.path, upload.body, compress=self._gzip
        )
        provider = str(upload.body.get("provider", ""))
        relink = response.status_code in RELINK_STATUSES and provider
        if relink and await self._relink(user_id, provider):
            response = await self._post_json(
                what, user_id, upload.path, upload.body, compress=self._gzip
            )
        if not response.is_success:
            raise _status_error(what, response)

    async def _linked(self) -> set[tuple[str, str]]:
        if self._connected is None:
            self._connected = await self._links.links()
        return self._connected

    async def _relink(self, user_id: str, provider: str) -> bool:
        """Link again; True if the connection was missing (Junction created it now)."""
        key = (user_id, provider)
        (await self._linked()).discard(key)
        await self._links.set_link(user_id, provider, linked=False)
        created = await self._link(user_id, provider)
        if created:
            _LOGGER.warning("%s connection of user %s was missing; linked again", provider, user_id)
        return created

    async def ensure_connected(self, user_id: str, provider: str) -> None:
        """``POST /v2/link/provider/manual/{provider}`` once per (user, provider); 409 is fine.

        Made links are remembered in the `LinkStore` (persisted by the gateway), so a
        restart does not link again.

        Raises:
            SyncError: Classified as in the module docstring.
        """
        key = (user_id, provider)
        if key in await self._linked():
            return
        await self._link(user_id, provider)

    async def _link(self, user_id: str, provider: str) -> bool:
        """Link and remember it; True if Junction created it (2xx), False if it existed (409)."""
        key = (user_id, provider)
        async with self._link_locks.setdefault(key, asyncio.Lock()):
            linked = await self._linked()
            if key in linked:
                return False
            what = f"connecting {provider} for user {user_id}"
            response = await self._post_json(
                what,
                user_id,
                f"/v2/link/provider/manual/{provider}",
                {"user_id": user_id},
                compress=False,
            )
            if not (response.is_success or response.status_code == 409):
                raise _status_error(what, response)
            linked.add(key)
            await self._links.set_link(user_id, provider, linked=True)
            return response.is_success

    async def sign_in(self, user_id: str, sign_in_token: SecretStr) -> None:
        """Exchange a user's Sign-In Token and store the session.

        Raises:
            ValueError: The token is malformed.
            SyncError: Junction refused the exchange or could not be reached.
        """
        await self.tokens.sign_in(user_id, sign_in_token)

    async def _token_request(self, user_id: str, form: dict[str, str]) -> TokenResponse:
        """`TokenEndpoint`: ``POST {auth}/v1/token`` with a form."""
        what = f"token request for user {user_id}"
        response = await self._send(
            what,
            f"{self.auth_url}/v1/token",
            content=urlencode(form).encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        if response.is_success:
            try:
                return TokenResponse.model_validate_json(response.content)
            except ValidationError as exc:
                msg = f"{what}: Junction's answer is not a token response; retry later"
                raise UploadTimeoutError(msg) from exc
        error_type = _error_type(response)
        if error_type == "invalid_token" and form.get("grant_type") != "refresh_token":
            msg = f"{what}: sign-in token already used or expired; ask the backend for a new one"
            raise SignInTokenRejectedError(msg, user_id=user_id)
        if error_type == "invalid_token":
            msg = f"{what}: token invalid (user deleted or revoked); credentials purged"
            raise InvalidTokenError(msg, user_id=user_id)
        if error_type == "reauthentication_required":
            msg = f"{what}: Junction wants a new sign-in; provide a new sign-in token"
            raise ReauthenticationRequiredError(msg, user_id=user_id)
        if response.status_code in {400, 401, 403}:
            msg = f"{what}: refused ({response.status_code}); provide a new sign-in token"
            raise UnauthorizedError(msg, user_id=user_id)
        raise _status_error(what, response)
