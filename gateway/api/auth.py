"""Bearer-token authentication with `read` and `admin` scopes, decided before any body is read.

Tokens are created by `edge-gateway token create` and stored hashed (`gateway.store.tokens`).
With `[api] trust_loopback` (the default), a request from 127.0.0.1 or ::1 *without* an
Authorization header is treated as admin, so the kiosk browser on the same box needs no
token, but only when it comes from the gateway's own page (same origin) and, when it changes
something, carries `X-Requested-With` or a JSON body: neither can be sent cross-origin
without a CORS preflight, which the gateway refuses (SECURITY.md, "Cross-site requests").
A request that does send a token is always checked, wherever it comes from. The token may
also come as the `access_token` query parameter (Human API's convention; a browser
`EventSource` cannot send headers), with the same scopes. Tokens are never logged: the
uvicorn access log is filtered (`redact_access_log`) in case it is turned on.

`authenticate` is the one place the decision is made; `AuthGate` (gateway.api.middleware)
calls it for every request before the route reads a body, and the route dependency
`authenticated` hands its outcome to the route. Neither costs a thread hop when the token
map is current (issue 18): the gate decides on the event loop and only falls back to a
worker thread when the check would have to wait.
"""

import asyncio
import ipaddress
import logging
import re
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection
from starlette.types import Scope as AsgiScope

from gateway.api import origin
from gateway.api.origin import Site
from gateway.services import Services
from gateway.store import tokens
from gateway.store.tokens import Scope

_LOGGER = logging.getLogger(__name__)

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="edge-gateway"'}
_MAX_TOKEN_CHARS = 256  # ours are ~47; longer is not ours, refuse before hashing


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers=_CHALLENGE)


def is_loopback(host: str | None) -> bool:
    """Whether a peer address is the loopback interface."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


# Declares the scheme in OpenAPI (/docs gets an Authorize button); parsing stays ours, so a
# malformed header is a 401 even from loopback.
_BEARER_SCHEME = HTTPBearer(auto_error=False, description="`edge-gateway token create`")


# Human API's query token ("Patterns and Conventions": `?access_token=`): a browser
# EventSource cannot send headers. No constraints here on purpose: a 422 would echo the value.
_QUERY_TOKEN = Query(
    description="The token as a query parameter (Human API style), for clients that cannot "
    "send headers (a browser EventSource). Same scopes as the header; prefer the header.",
)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Any value will do: a custom header (like a JSON content type) makes browsers preflight a
# cross-origin request, and the preflight fails unless the origin is in `[api] cors_origins`.
CSRF_HEADER = "X-Requested-With"
_AUTH_SCOPE_KEY = "edge_gateway.auth"


def _forbidden(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, detail=detail)


def _marked_non_simple(conn: HTTPConnection) -> bool:
    """Whether the request carries something a cross-origin form or no-cors fetch cannot."""
    if conn.headers.get(CSRF_HEADER.lower(), "").strip():
        return True
    media_type = conn.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def authenticate(conn: HTTPConnection, services: Services, *, wait: bool = True) -> Scope:
    """The scope of a request's credentials.

    A token is checked against the store's in-memory map of live tokens
    (`gateway.store.tokens.verify_token`), which may have to be reloaded first: with `wait`
    False (on the event loop) that never waits for a lock, it raises `WouldBlockError`.

    Rules, in order:
    1. A state-changing request (not GET/HEAD/OPTIONS) whose `Origin`/`Sec-Fetch-Site` says
       another site, and not an origin of `[api] cors_origins`, is refused (403).
    2. With an Authorization header (or the `access_token` query parameter, not both): it
       must be `Bearer <token>` with a live token.
    3. Without one: loopback peers are admin under `[api] trust_loopback`, if the request is
       same-origin or not from a browser, and a state-changing one carries `X-Requested-With`
       or a JSON content type (403 otherwise). Anyone else: 401.

    Raises:
        HTTPException: 401 when the token is missing, malformed, unknown or revoked, or
            given both ways; 403 for a cross-site state change or an unmarked tokenless one.
        WouldBlockError: `wait` is False and checking the token needs waiting.
    """
    api = services.settings.api
    changes_state = conn.scope.get("method", "GET") not in SAFE_METHODS
    site = origin.classify(conn, api.cors_origins)
    if changes_state and site is Site.CROSS_SITE:
        msg = (
            "cross-site request refused: this page's origin may not change the gateway; "
            "list it in [api] cors_origins and send a token"
        )
        raise _forbidden(msg)
    header = conn.headers.get("authorization")
    access_token = conn.query_params.get("access_token")
    if access_token is not None:
        if header is not None:
            msg = "token given twice (Authorization header and access_token); send one"
            raise _unauthorized(msg)
        header = f"Bearer {access_token}"
    if header is None:
        client = conn.client.host if conn.client else None
        loopback = api.trust_loopback and is_loopback(client)
        if loopback and site in {Site.SAME_ORIGIN, Site.NO_BROWSER}:
            if changes_state and not _marked_non_simple(conn):
                msg = (
                    f"tokenless loopback requests that change something must send a JSON body "
                    f"or the header '{CSRF_HEADER}: <anything>' (cross-site request protection)"
                )
                raise _forbidden(msg)
            return Scope.ADMIN
        msg = (
            "missing bearer token; send 'Authorization: Bearer <token>' "
            "(create one with `edge-gateway token create --scope read`)"
        )
        if loopback:
            msg += "; requests from other web origins get no loopback exemption"
        raise _unauthorized(msg)
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        msg = "malformed Authorization header; use 'Authorization: Bearer <token>'"
        raise _unauthorized(msg)
    scope = None
    if len(token) <= _MAX_TOKEN_CHARS:
        scope = tokens.verify_token(services.db, token, wait=wait)
    if scope is None:
        _LOGGER.info("refused an unknown or revoked API token from %s", conn.client)
        msg = "unknown or revoked token; create a new one with `edge-gateway token create`"
        raise _unauthorized(msg)
    return scope


def record_decision(scope: AsgiScope, decision: Scope | HTTPException) -> None:
    """Keep `authenticate`'s outcome in the ASGI scope for the route dependency."""
    scope[_AUTH_SCOPE_KEY] = decision


async def authenticated(
    request: Request,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER_SCHEME)],
    access_token: Annotated[str | None, _QUERY_TOKEN] = None,
) -> Scope:
    """Route dependency: the scope `AuthGate` decided (decided here if there is no gate).

    The parameters only declare the header and the query token in OpenAPI (and make
    `access_token` a known query parameter); `authenticate` reads them itself.

    Raises:
        HTTPException: The gate's 401/403.
    """
    del access_token
    decision = request.scope.get(_AUTH_SCOPE_KEY)
    if decision is None:  # no gate: the store may have to be read, off the event loop
        decision = await asyncio.to_thread(authenticate, request, request.app.state.services)
    if isinstance(decision, HTTPException):
        raise decision
    if not isinstance(decision, Scope):  # only record_decision writes the key
        msg = "corrupt auth decision"
        raise TypeError(msg)
    return decision


def require_admin(scope: Scope) -> Scope:
    """Pass admin scope through.

    Raises:
        HTTPException: 403 for a read-only token.
    """
    if scope is not Scope.ADMIN:
        msg = "this token has scope 'read'; this request needs a token with scope 'admin'"
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=msg)
    return scope


_TOKEN_IN_QUERY = re.compile(r"(access_token=)[^&\s\"]*", re.IGNORECASE)


class _RedactTokens(logging.Filter):
    """Replaces `access_token=` values in uvicorn access-log records with `***`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_IN_QUERY.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args
            )
        return True


def redact_access_log() -> None:
    """Keep query tokens out of uvicorn's access log (idempotent)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _RedactTokens) for f in access.filters):
        access.addFilter(_RedactTokens())
