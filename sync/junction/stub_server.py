"""Serving the Junction stub on loopback: in-process (`StubServer`) or as a command (`run`).

`edge-gateway junction-stub` and the demo use these; the stub's endpoints are in
`sync.junction.stub`.
"""

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from sync.junction.regions import Environment, Region
from sync.junction.stub import create_app, create_auth_app
from sync.junction.stub_faults import Faults
from sync.junction.stub_state import JunctionStub

_LOGGER = logging.getLogger(__name__)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class _QuietDrops(logging.Filter):
    """Hide uvicorn's complaint about the connections the stub drops on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


def _check_loopback(host: str) -> None:
    if host not in LOOPBACK_HOSTS:
        msg = f"junction stub: refusing to bind {host}; it serves 127.0.0.1 or ::1 only"
        raise ValueError(msg)


class _Served:
    """One uvicorn server on a loopback socket, inside the current event loop."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.app, self.host, self.port = app, host, port
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit it (Linux): no Nagle + delayed-ACK 40 ms stalls between
        # a response's header and body writes, as a real front end (nginx, ALB) would not.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                await self._task
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class StubServer:
    """The stub's API and its token endpoint, each on its own loopback port (origin).

    Junction's token endpoint lives on the auth host, not the API host (mobile-sdk-sync.md
    §1.1), so a client that sends the exchange to the API origin fails here as it would
    there. Usage: ``async with StubServer(create_app()) as s: s.base_url, s.auth_url``.
    """

    def __init__(
        self, app: FastAPI, *, host: str = "127.0.0.1", port: int = 0, auth_port: int = 0
    ) -> None:
        _check_loopback(host)
        self.app = app
        self.host = host
        self._api = _Served(app, host, port)
        self._auth = _Served(create_auth_app(app.state.stub), host, auth_port)

    @property
    def port(self) -> int:
        """The API port."""
        return self._api.port

    @property
    def stub(self) -> JunctionStub:
        """The served state."""
        stub: JunctionStub = self.app.state.stub
        return stub

    @property
    def base_url(self) -> str:
        """The API origin, ``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self._api.port}"

    @property
    def auth_url(self) -> str:
        """The token endpoint's origin (``POST {auth_url}/v1/token``)."""
        return f"http://{self.host}:{self._auth.port}"

    async def __aenter__(self) -> "StubServer":
        """Bind and start serving; returns once both accept connections."""
        await self._api.start()
        try:
            await self._auth.start()
        except BaseException:
            await self._api.stop()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop serving."""
        await self._auth.stop()
        await self._api.stop()


async def serve(
    port: int,
    *,
    host: str = "127.0.0.1",
    api_key: str | None = None,
    faults: Faults | None = None,
    token_ttl_s: float = 3600.0,
    users: list[str] | None = None,
    region: str = "us",
    environment: str = "sandbox",
    on_ready: Callable[[str, str], None] | None = None,
) -> None:
    """Serve the stub on `host`:`port` until cancelled (`edge-gateway junction-stub`).

    Args:
        port: TCP port (0 picks a free one).
        host: A loopback address; anything else is refused.
        api_key: Team key to accept in ``X-Vital-API-Key`` (None: bearer tokens only).
        faults: Initial fault plan.
        token_ttl_s: Lifetime of issued access tokens.
        users: Junction user ids to register.
        region: Region named by issued Sign-In Tokens' ``iss``.
        environment: Environment named by issued Sign-In Tokens' ``iss``.
        on_ready: Called with the API and the auth base URLs once both accept connections.

    Raises:
        ValueError: `host` is not a loopback address, or an unknown region/environment.
    """
    state = JunctionStub(
        api_key=api_key,
        token_ttl_s=token_ttl_s,
        region=Region(region),
        environment=Environment(environment),
    )
    app = create_app(faults=faults, users=users, stub=state)
    async with StubServer(app, host=host, port=port) as server:
        _LOGGER.info("Junction stub: API %s, auth %s", server.base_url, server.auth_url)
        if on_ready is not None:
            on_ready(server.base_url, server.auth_url)
        await asyncio.Event().wait()


def run(
    port: int,
    *,
    host: str = "127.0.0.1",
    api_key: str | None = None,
    faults: Faults | None = None,
    token_ttl_s: float = 3600.0,
    users: list[str] | None = None,
    region: str = "us",
    environment: str = "sandbox",
    on_ready: Callable[[str, str], None] | None = None,
) -> None:
    """Blocking `serve` for a synchronous CLI command; returns on Ctrl-C.

    Raises:
        ValueError: `host` is not a loopback address.
    """
    _check_loopback(host)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve(
                port,
                host=host,
                api_key=api_key,
                faults=faults,
                token_ttl_s=token_ttl_s,
                users=users,
                region=region,
                environment=environment,
                on_ready=on_ready,
            )
        )


if __name__ == "__main__":  # pragma: no cover - `python -m … PORT [KEY [USER …]]`
    import sys

    run(
        int(sys.argv[1]),
        api_key=sys.argv[2] if len(sys.argv) > 2 else None,
        users=sys.argv[3:],
        on_ready=lambda url, auth: print(url, auth, sep="\n", flush=True),  # noqa: T201
    )
