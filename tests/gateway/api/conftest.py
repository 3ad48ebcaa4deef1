"""API fixtures: a real SQLite store in tmp_path, standalone services, httpx over ASGI."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.config import Settings
from gateway.services import ScriptedPairing, Services, standalone_services
from gateway.store import tokens
from gateway.store.tokens import Scope

LOOPBACK = ("127.0.0.1", 50000)
REMOTE = ("192.0.2.10", 50000)  # TEST-NET-1: a nearby app on the network


def make_services(data_dir: Path, **api: object) -> Services:
    settings = Settings(data_dir=data_dir, timezone="Europe/Berlin", api=api or {})
    return standalone_services(settings)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    built = make_services(tmp_path / "data")
    built.pairing = ScriptedPairing({"C0:FF:EE:00:00:02": 123456, "C0:FF:EE:00:00:03": None})
    yield built
    built.db.close()


@pytest.fixture
def read_token(services: Services) -> str:
    return tokens.create_token(services.db, Scope.READ, "tests")[0]


@pytest.fixture
def admin_token(services: Services) -> str:
    return tokens.create_token(services.db, Scope.ADMIN, "tests")[0]


# What the kiosk page sends with every call (gateway/static/app.js).
KIOSK_HEADERS = {"X-Requested-With": "edge-gateway-kiosk"}


def client_for(
    services: Services,
    peer: tuple[str, int] = LOOPBACK,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(services), client=peer)
    sent = dict(headers or {})
    if token:
        sent["Authorization"] = f"Bearer {token}"
    return httpx.AsyncClient(transport=transport, base_url="http://localhost", headers=sent)


@pytest.fixture
async def local(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """The kiosk page on the box itself: loopback, no token, its marking header."""
    async with client_for(services, headers=KIOSK_HEADERS) as client:
        yield client


@pytest.fixture
async def remote_read(services: Services, read_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(services, REMOTE, read_token) as client:
        yield client


@pytest.fixture
async def remote_admin(services: Services, admin_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(services, REMOTE, admin_token) as client:
        yield client
