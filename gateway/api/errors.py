"""Exception → response translation: clear `{"detail": ...}` bodies, never a stack trace."""

import logging

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from gateway.api.middleware import too_large_detail
from gateway.services import PairingUnavailableError, SyncUnavailableError
from gateway.store import InvalidCursorError, StoreError

_LOGGER = logging.getLogger(__name__)

_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")  # what the API uses; sorted for Allow


async def _invalid_cursor(request: Request, exc: Exception) -> JSONResponse:
    del request
    return JSONResponse({"detail": f"{exc}"}, status_code=status.HTTP_400_BAD_REQUEST)


async def _unavailable_here(request: Request, exc: Exception) -> JSONResponse:
    del request
    return JSONResponse({"detail": f"{exc}"}, status_code=status.HTTP_409_CONFLICT)


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    _LOGGER.error("%s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": f"the gateway's database cannot answer now: {exc}"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "5"},
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's handler, but a 405 lists every method of the path (routes per method)."""
    if not isinstance(exc, StarletteHTTPException):  # registered for that class only
        raise exc
    if exc.status_code == status.HTTP_413_CONTENT_TOO_LARGE:  # a streamed body over the limit
        limit = request.app.state.services.settings.api.max_body_bytes
        return JSONResponse({"detail": too_large_detail(limit)}, status_code=exc.status_code)
    if exc.status_code != status.HTTP_405_METHOD_NOT_ALLOWED:
        return await http_exception_handler(request, exc)
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]
    methods = ", ".join(allowed)
    return JSONResponse(
        {"detail": f"{request.method} is not allowed on {request.url.path}; use {methods}"},
        status_code=exc.status_code,
        headers={"Allow": methods},
    )


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, without each error's `input` and `ctx` (they echo what was sent).

    What was sent may be a secret (a sign-in token) or megabytes; the location, message and
    type name the problem well enough.
    """
    del request
    if not isinstance(exc, RequestValidationError):  # registered for that class only
        raise exc
    errors = [
        {"type": err.get("type"), "loc": list(err.get("loc", ())), "msg": err.get("msg")}
        for err in exc.errors()
    ]
    return JSONResponse({"detail": errors}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def install(app: FastAPI) -> None:
    """Register the handlers on `app`."""
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(InvalidCursorError, _invalid_cursor)
    app.add_exception_handler(PairingUnavailableError, _unavailable_here)
    app.add_exception_handler(SyncUnavailableError, _unavailable_here)
    app.add_exception_handler(StoreError, _store_error)
