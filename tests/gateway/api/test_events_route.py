"""/v1/events over a real uvicorn: live events, Last-Event-ID resume, filters, auth."""

import asyncio
import contextlib
from datetime import timedelta

import httpx
import pytest

from gateway.api.reading_events import publish_readings
from gateway.api.routes.events import RECHECK_S
from gateway.events import GAP, KIOSK_SESSION_STARTED
from gateway.store import kiosk, open_database, readings, tokens, users
from tests.gateway.api.conftest import KIOSK_HEADERS
from tests.gateway.api.live import serve, sse_messages
from tests.sync.factories import glucose


async def collect(client, n, *, params=None, headers=None) -> list[dict]:
    out = []
    async with (
        asyncio.timeout(5),
        client.stream("GET", "/v1/events", params=params, headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for message in sse_messages(response):
            out.append(message)
            if len(out) == n:
                break
    return out


@contextlib.asynccontextmanager
async def live_client(services, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else KIOSK_HEADERS
    async with serve(services) as url, httpx.AsyncClient(base_url=url, headers=headers) as client:
        yield client


async def subscribed(services, count: int = 1) -> None:
    """Wait until the stream is attached to the bus (a fixed sleep races a loaded CI box)."""
    async with asyncio.timeout(5):
        while services.events.subscribers < count:
            await asyncio.sleep(0.01)


async def publish_soon(services, *events) -> None:
    await subscribed(services)
    for event_type, user_id in events:
        services.events.publish(event_type, user_id, {"n": 1})


async def test_live_events_in_webhook_envelope(services) -> None:
    users.bind(services.db, "C0:FF:EE:00:00:01", "u1")
    async with live_client(services) as client:
        task = asyncio.create_task(collect(client, 1))
        await subscribed(services)
        reading = glucose(1)
        readings.save_transfer(services.db, [reading], zone=services.settings.zone)
        [event] = publish_readings(services.events, [readings.get_reading(services.db, reading.id)])
        [message] = await task
    assert message["id"] == str(event.id)
    body = message["data"]
    assert body["event_type"] == "daily.data.glucose.created"
    assert body["user_id"] == "u1"
    assert set(body) == {"event_type", "user_id", "client_user_id", "team_id", "data"}
    assert body["data"]["source"] == {
        "provider": "accuchek_ble",
        "type": "fingerprick",
        "app_id": None,
        "device_id": "C0:FF:EE:00:00:01",
    }
    [sample] = body["data"]["data"]
    assert sample["unit"] == "mmol/L"
    assert body["data"]["reading_ids"] == [reading.id]


async def test_resume_with_last_event_id(services) -> None:
    ids = [services.events.publish(f"e{i}", None, {}).id for i in range(4)]
    async with live_client(services) as client:
        header = await collect(client, 2, headers={"Last-Event-ID": str(ids[1])})
        query = await collect(client, 1, params={"last_event_id": str(ids[2])})
    assert [m["data"]["event_type"] for m in header] == ["e2", "e3"]
    assert [m["id"] for m in header] == [str(ids[2]), str(ids[3])]
    assert [m["data"]["event_type"] for m in query] == ["e3"]


async def test_resume_from_too_old_id_starts_with_gap(services) -> None:
    services.events = type(services.events)(capacity=2)
    for i in range(5):
        services.events.publish(f"e{i}", None, {})
    async with live_client(services) as client:
        messages = await collect(client, 3, headers={"Last-Event-ID": "1"})
    assert [m["data"]["event_type"] for m in messages] == [GAP, "e3", "e4"]
    assert "updated_since" in messages[0]["data"]["data"]


async def test_user_filter(services) -> None:
    async with live_client(services) as client:
        task = asyncio.create_task(collect(client, 2, params={"user_id": "u1"}))
        await publish_soon(services, ("a", "u2"), ("b", "u1"), ("c", None))
        messages = await task
    assert [(m["data"]["event_type"], m["data"]["user_id"]) for m in messages] == [
        ("b", "u1"),
        ("c", None),
    ]


async def test_kiosk_stream_shows_only_the_person_at_the_kiosk(services) -> None:
    kiosk.start_session(services.db, "here", duration=timedelta(minutes=5))
    async with live_client(services) as client:
        task = asyncio.create_task(collect(client, 2, params={"kiosk": "true"}))
        await publish_soon(services, ("other", "elsewhere"), ("mine", "here"), ("device", None))
        messages = await task
    assert [m["data"]["event_type"] for m in messages] == ["mine", "device"]


@pytest.mark.parametrize("bad", ["abc", "-1", "1e9", "9" * 25])
async def test_bad_last_event_id_is_4xx(services, bad) -> None:
    async with live_client(services) as client:
        response = await client.get("/v1/events", headers={"Last-Event-ID": bad})
    assert response.status_code in {400, 422}
    assert "detail" in response.json()


async def test_events_need_a_token_off_the_box(services, read_token) -> None:
    services.settings.api.trust_loopback = False
    async with live_client(services) as client:
        response = await client.get("/v1/events")
        assert response.status_code == 401
    async with live_client(services, read_token) as client:
        task = asyncio.create_task(collect(client, 1))
        await publish_soon(services, (KIOSK_SESSION_STARTED, "u1"))
        assert (await task)[0]["data"]["event_type"] == KIOSK_SESSION_STARTED


async def test_subscriber_detaches_on_disconnect(services) -> None:
    async with live_client(services) as client:
        task = asyncio.create_task(collect(client, 1))
        await publish_soon(services, ("x", None))
        await task
        async with asyncio.timeout(5):
            while services.events.subscribers:
                await asyncio.sleep(0.02)
    assert services.events.subscribers == 0


async def test_kiosk_stream_hears_the_session_end_of_the_person_who_left(services) -> None:
    session = kiosk.start_session(services.db, "ada", duration=timedelta(minutes=5))
    async with live_client(services) as client:
        task = asyncio.create_task(collect(client, 1, params={"kiosk": "true"}))
        await subscribed(services)
        assert (await client.delete(f"/v1/kiosk/sessions/{session.id}")).status_code == 200
        [message] = await task
    assert message["data"]["event_type"] == "gateway.kiosk.session.ended"
    assert message["data"]["user_id"] == "ada"


async def test_a_revoked_token_ends_its_open_stream(services) -> None:
    """Revoked by another process (the CLI) while the stream is open: it ends within seconds
    and nothing published after the revocation reaches it."""
    token, info = tokens.create_token(services.db, tokens.Scope.READ)
    received: list[dict] = []
    async with live_client(services, token) as client:

        async def listen() -> None:
            async with client.stream("GET", "/v1/events") as response:
                assert response.status_code == 200
                async for message in sse_messages(response):
                    received.append(message)  # noqa: PERF401 - seen as they come

        task = asyncio.create_task(listen())
        await publish_soon(services, ("before", None))
        async with asyncio.timeout(5):
            while not received:
                await asyncio.sleep(0.01)
        other = open_database(services.db.path)  # another process's connection
        assert tokens.revoke_token(other, info.id)
        other.close()
        async with asyncio.timeout(4 * RECHECK_S):
            while services.events.subscribers:
                services.events.publish("after", None, {"n": 2})
                await asyncio.sleep(0.2)
        await asyncio.wait_for(task, 5)
    assert [m["data"]["event_type"] for m in received if m.get("data")] == ["before"]
