"""uvicorn settings for the API, shared by `run`, `serve-api` and the tests.

Proxy headers (`X-Forwarded-For`, `X-Forwarded-Proto`) decide who the client is, and the
client's address decides loopback trust. uvicorn honours them by default (from 127.0.0.1,
or from whatever `FORWARDED_ALLOW_IPS` lists, `*` included), so a variable in the service's
environment could make a LAN peer look like the box itself. Here they are off unless
`[api] trusted_proxies` lists the proxies, and then only those are believed.
"""

from typing import Literal

import uvicorn
from starlette.types import ASGIApp

from gateway.config import ApiSettings


def server_config(
    app: ASGIApp,
    api: ApiSettings,
    *,
    log_level: str = "warning",
    lifespan: Literal["on", "off"] = "on",
    port: int | None = None,
    access_log: bool = False,
) -> uvicorn.Config:
    """The uvicorn config for serving `app` as `[api]` says (`port` overrides, e.g. 0 in tests)."""
    return uvicorn.Config(
        app,
        host=api.host,
        port=api.port if port is None else port,
        log_level=log_level,
        lifespan=lifespan,
        # Off by default: query strings may carry user ids; the API logs what matters.
        access_log=access_log,
        proxy_headers=bool(api.trusted_proxies),
        # Explicit, so uvicorn never falls back to $FORWARDED_ALLOW_IPS.
        forwarded_allow_ips=list(api.trusted_proxies),
        server_header=False,  # no version banner for scanners
    )
