"""A real uvicorn server on an ephemeral loopback port, in the test's event loop."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import httpx
import uvicorn

from gateway.api.server import server_config
from gateway.app import create_app
from gateway.services import Services


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
