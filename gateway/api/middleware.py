"""The API's protective layers, outermost first (SECURITY.md says what each one stops).

1. `SecurityHeaders`: CSP (`frame-ancestors 'none'`), nosniff, no referrer, no framing, on
   every response, errors included.
2. Starlette's `TrustedHostMiddleware`: a Host that is not the gateway's gets 400 (DNS
   rebinding); names from `gateway.api.hosts`.
3. `BodyLimit`: a body over `[api] max_body_bytes` gets 413 before it is read (Content-Length
   at once; streamed bodies as soon as they pass the limit, via Starlette's
   `RequestBodyLimitMiddleware`).
4. Starlette's `CORSMiddleware`, only when `[api] cors_origins` lists origins.
5. `AuthGate`: `gateway.api.auth.authenticate` decides before the route reads a body; a
   state-changing request it refuses is answered here.
"""

import asyncio

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Send
from starlette.types import Scope as AsgiScope

from gateway.api import auth, hosts
from gateway.services import Services
from gateway.store.tokens import Scope, WouldBlockError

# The kiosk page loads only its own files and talks only to its own origin.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# The /docs and /redoc pages load Swagger UI / ReDoc from the gateway itself (fastapi-offline,
# no CDN) with an inline bootstrap script; they still may not be framed.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # no-cors reads from other origins (<script src=/v1/readings>) get nothing.
    "Cross-Origin-Resource-Policy": "same-origin",
}


class SecurityHeaders:
    """Add the security headers to every HTTP response that does not set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        """ASGI entry point: wrap `send` to add the headers."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope["path"] in _DOCS_PATHS else PAGE_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", csp)
                for name, value in _COMMON_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def too_large_detail(max_bytes: int) -> str:
    """The 413 message: the limit and the key that sets it."""
    return (
        f"request body larger than {max_bytes} bytes refused; "
        "send less (the limit is [api] max_body_bytes)"
    )


class BodyLimit:
    """413 for a body over `max_bytes`: by Content-Length before reading, else while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        # Raises while the route reads a streamed body; errors.py words the 413.
        self.streamed = RequestBodyLimitMiddleware(app, max_body_size=max_bytes)

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        """ASGI entry point: refuse by Content-Length, else count the streamed body."""
        if scope["type"] == "http":
            length = Headers(scope=scope).get("content-length", "")
            if length.isdigit() and int(length) > self.max_bytes:
                response = JSONResponse({"detail": too_large_detail(self.max_bytes)}, 413)
                await response(scope, receive, send)
                return
        await self.streamed(scope, receive, send)


class AuthGate:
    """Decide authentication before the route runs; answer a refused state change at once.

    A refused GET is left to the route's dependency, so routes that need no token (the page,
    health) still answer. A refused POST/PUT/PATCH/DELETE is answered here: its body is never
    read, and nothing it names is touched.
    """

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        """ASGI entry point: decide, record, and answer a refused state change."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        decision: Scope | HTTPException
        conn = HTTPConnection(scope)
        try:
            try:  # on the loop: the token map is in memory, and this never waits
                decision = auth.authenticate(conn, self.services, wait=False)
            except WouldBlockError:  # another thread holds the map, or SQLite is busy
                decision = await asyncio.to_thread(auth.authenticate, conn, self.services)
        except HTTPException as exc:
            decision = exc
        auth.record_decision(scope, decision)
        if isinstance(decision, HTTPException) and scope["method"] not in auth.SAFE_METHODS:
            response = JSONResponse(
                {"detail": decision.detail}, decision.status_code, headers=decision.headers
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install(app: FastAPI, services: Services) -> None:
    """Add the layers to `app` (Starlette runs the last added first)."""
    api = services.settings.api
    app.add_middleware(AuthGate, services=services)
    if api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=api.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", auth.CSRF_HEADER],
            max_age=600,
        )
    app.add_middleware(BodyLimit, max_bytes=api.max_body_bytes)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts.allowed_hosts(api))
    app.add_middleware(SecurityHeaders)
