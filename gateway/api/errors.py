"""Exception → response translation: clear `{"detail": ...}` bodies, never a stack trace."""

import logging

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from gateway.services import PairingUnavailableError, SyncUnavailableError
from gateway.store import InvalidCursorError, StoreError

_LOGGER = logging.getLogger(__name__)


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


def install(app: FastAPI) -> None:
    """Register the handlers on `app`."""
    app.add_exception_handler(InvalidCursorError, _invalid_cursor)
    app.add_exception_handler(PairingUnavailableError, _unavailable_here)
    app.add_exception_handler(SyncUnavailableError, _unavailable_here)
    app.add_exception_handler(StoreError, _store_error)
