"""A real uvicorn server: in the test's event loop (`serve`), or as a `serve-api` process."""

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import uvicorn

from gateway.api.server import server_config
from gateway.app import create_app
from gateway.services import Services
from gateway.store import DATABASE_FILENAME, open_database, tokens
from gateway.store.tokens import Scope

CLI = "from gateway.cli import main; main()"


@contextlib.asynccontextmanager
async def serve(services: Services) -> AsyncIterator[str]:
    """Serve the app; yields its base URL."""
    # The settings' own uvicorn config (proxy headers off, ...) on an ephemeral port.
    config = server_config(create_app(services), services.settings.api, port=0, access_log=True)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        async with asyncio.timeout(10):
            await task


async def sse_messages(response: httpx.Response) -> AsyncIterator[dict]:
    """Parsed SSE messages ({"id", "data"}) of a streaming response, comments skipped."""
    message: dict = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in message:
                message["data"] = json.loads(message["data"])
                yield message
            message = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            message[field] = value.removeprefix(" ")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_api(tmp_path: Path, host: str = "127.0.0.1", extra: str = "") -> Iterator[tuple]:
    """`edge-gateway serve-api` with FORWARDED_ALLOW_IPS=*; yields (process, base URL, token)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    db = open_database(data_dir / DATABASE_FILENAME)
    token, _ = tokens.create_token(db, Scope.ADMIN, "tests")
    db.close()
    port = free_port(host)
    config = tmp_path / "gateway.toml"
    config.write_text(f'data_dir = "{data_dir}"\n[api]\nhost = "{host}"\nport = {port}\n{extra}')
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["FORWARDED_ALLOW_IPS"] = "*"
    process = subprocess.Popen(
        [sys.executable, "-c", CLI, "serve-api", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/v1/health/live", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "serve-api did not come up"
                time.sleep(0.1)
        yield process, url, token
    finally:
        process.terminate()
        process.communicate(timeout=10)
