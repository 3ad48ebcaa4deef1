import random

import pytest
from pydantic import SecretStr

from sync.junction.client import JunctionClient
from sync.junction.stub import JunctionStub, create_app
from sync.junction.stub_server import StubServer
from sync.memory_outbox import MemoryOutbox
from sync.uploader import Uploader

API_KEY = "sk_us_stubkey"
USERS = (
    *(f"u{i}" for i in range(10)),
    *("u", "a", "b", "p", "q", "bad", "big", "gone", "good", "parked", "small", "solo"),
    *("user-a", "user-b", "alice", "bob"),
    *(f"user-{i}" for i in range(10)),
)
"""Junction users the strict stub knows (it refuses others with 404, as Junction does)."""


def fast_backoff(error, attempt, rng: random.Random) -> float:
    """Real policy shape (jitter, Retry-After floor) at 1/100 scale."""
    from sync.backoff import backoff_for

    return backoff_for(error, attempt, rng) / 100


@pytest.fixture
async def stub_server():
    async with StubServer(
        create_app(stub=JunctionStub(api_key=API_KEY), users=list(USERS))
    ) as server:
        yield server


@pytest.fixture(params=["memory", "sqlite"])
async def outbox(request, tmp_path):
    """Every uploader test runs over the in-memory and the store's SQLite outbox."""
    if request.param == "memory":
        return MemoryOutbox()
    from tests.gateway.store.factories import sqlite_outbox

    return await sqlite_outbox(tmp_path)


@pytest.fixture
async def client(stub_server):
    client = JunctionClient(
        base_url=stub_server.base_url,
        api_key=SecretStr(API_KEY),
        read_timeout_s=2.0,
        connect_timeout_s=1.0,
    )
    yield client
    await client.aclose()


@pytest.fixture
def make_uploader(outbox, client):
    def make(**kw):
        target, via = kw.pop("outbox", outbox), kw.pop("client", client)
        options = {
            "time_zone": "Europe/Berlin",
            "backoff": fast_backoff,
            "rng": random.Random(7),
            "idle_poll_s": 0.05,
            "batch_size": 50,
        } | kw
        return Uploader(target, via, **options)

    return make
