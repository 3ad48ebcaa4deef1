"""A gateway's API (store only, no radio) under uvicorn on an ephemeral loopback port."""

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from gateway.app import create_app
from gateway.config import load_settings
from gateway.services import standalone_services


def free_port() -> int:
    """A loopback port nothing listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_gateway(config: Path, *, ready: bool = True) -> Iterator[int]:
    """Serve `config`'s store in a thread; yields the port (the config's own port is ignored).

    With `ready` False, a "collector" readiness check fails (as while the gateway stops).
    """
    settings = load_settings(config)
    services = standalone_services(settings)
    services.readiness["collector"] = lambda: ready
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(services), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
        )
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                pytest.fail("uvicorn did not start")
            threading.Event().wait(0.01)
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(10)
        services.db.close()
