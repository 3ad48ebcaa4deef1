"""Bearer-token authentication with `read` and `admin` scopes.

Tokens are created by `edge-gateway token create` and stored hashed (`gateway.store.tokens`).
With `[api] trust_loopback` (the default), a request from 127.0.0.1 or ::1 *without* an
Authorization header is treated as admin: the kiosk browser on the same box needs no token.
A request that does send a token is always checked, wherever it comes from. The token may
also come as the `access_token` query parameter (Human API's convention; a browser
`EventSource` cannot send headers), with the same scopes. Tokens are never logged: the
uvicorn access log is filtered (`redact_access_log`) in case it is turned on.
"""

import ipaddress
import logging
import re
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

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


def authenticate(
    request: Request,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER_SCHEME)],
    access_token: Annotated[str | None, _QUERY_TOKEN] = None,
) -> Scope:
    """The scope of the request's credentials (header, or `access_token` query parameter).

    Raises:
        HTTPException: 401 when the token is missing, malformed, unknown or revoked, or
            given both ways.
    """
    services: Services = request.app.state.services
    header = request.headers.get("authorization")
    if access_token is not None:
        if header is not None:
            msg = "token given twice (Authorization header and access_token); send one"
            raise _unauthorized(msg)
        header = f"Bearer {access_token}"
    if header is None:
        client = request.client.host if request.client else None
        if services.settings.api.trust_loopback and is_loopback(client):
            return Scope.ADMIN
        msg = (
            "missing bearer token; send 'Authorization: Bearer <token>' "
            "(create one with `edge-gateway token create --scope read`)"
        )
        raise _unauthorized(msg)
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        msg = "malformed Authorization header; use 'Authorization: Bearer <token>'"
        raise _unauthorized(msg)
    scope = tokens.verify_token(services.db, token) if len(token) <= _MAX_TOKEN_CHARS else None
    if scope is None:
        _LOGGER.info("refused an unknown or revoked API token from %s", request.client)
        msg = "unknown or revoked token; create a new one with `edge-gateway token create`"
        raise _unauthorized(msg)
    return scope


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
