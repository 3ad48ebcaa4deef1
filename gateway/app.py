"""The FastAPI application: `create_app(services)`.

`edge-gateway run` builds `Services` with the live collector and uploader and serves this app
with uvicorn on the same event loop; tests and `serve-api` use `standalone_services`. The
lifespan only advertises the API over mDNS (when `[api] mdns` is on); the runtime parts are
started and stopped by whoever built them.
"""

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from gateway.api import errors, middleware
from gateway.api.auth import redact_access_log
from gateway.api.routes import (
    devices,
    events,
    health,
    kiosk,
    kiosk_staff,
    metrics,
    page,
    readings,
    sync,
    users,
)
from gateway.api.schemas import Problem
from gateway.api.strict import reject_unknown_query
from gateway.kiosk.state import KioskState
from gateway.kiosk.watch import watch_sessions
from gateway.services import Services

_LOGGER = logging.getLogger(__name__)

DESCRIPTION = """\
Readings from Bluetooth meters, cuffs and scales, in Junction's units, with live events.

Authenticate with `Authorization: Bearer <token>` (`edge-gateway token create --scope read`);
`admin` scope for changes. Requests from the gateway itself (loopback) need no token unless
`[api] trust_loopback = false`; tokenless ones that change something must send a JSON body or
`X-Requested-With`, and come from the gateway's own page when sent by a browser.
Bodies over `[api] max_body_bytes` get 413.
"""


def create_app(services: Services) -> FastAPI:
    """The API, events, metrics and kiosk page over `services`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        advertiser = None
        api = services.settings.api
        if api.mdns:
            # Imported only when mDNS is on: zeroconf is ~3.5 MiB of RSS (issue 18).
            from gateway.mdns import (
                Advertiser,
                advertised_addresses,
                interfaces_for,
                service_info,
            )

            addresses = advertised_addresses(api.host)
            info = service_info(port=api.port, addresses=addresses)
            advertiser = Advertiser(info, interfaces_for(api.host))
            try:
                await advertiser.start()
            except OSError as exc:
                _LOGGER.warning("mDNS advertisement failed (%s); apps must be given the URL", exc)
                advertiser = None
        app.state.advertiser = advertiser
        # Kiosk sessions end when idle, and the page hears at once when one lapses.
        idle = timedelta(seconds=services.settings.kiosk.idle_s)
        watcher = asyncio.create_task(watch_sessions(services.db, services.events, idle))
        # Start-up's objects (modules, routes, schemas, settings) live as long as the
        # process: move them out of the collector's generations, so a full collection no
        # longer walks them. Gen-2 pauses of ~70 ms every 150-300 requests set the API's
        # p99 before this (issue 18; https://docs.python.org/3/library/gc.html#gc.freeze).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            if advertiser is not None:
                await advertiser.stop()

    # /docs and /redoc from the package's own copies of Swagger UI and ReDoc (fastapi-offline):
    # a gateway on a clinic network often has no route to a CDN.
    app = FastAPIOffline(
        title="Edge Gateway",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        responses={
            400: {"model": Problem, "description": "Malformed request."},
            413: {"model": Problem, "description": "Body over `[api] max_body_bytes`."},
        },
        dependencies=[Depends(reject_unknown_query)],
    )
    app.state.services = services
    app.state.kiosk = KioskState.from_settings(services.settings)
    errors.install(app)
    redact_access_log()
    middleware.install(app, services)
    for module in (
        readings,
        devices,
        users,
        kiosk,
        kiosk_staff,
        sync,
        events,
        health,
        metrics,
        page,
    ):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=page.STATIC_DIR), name="static")
    return app
