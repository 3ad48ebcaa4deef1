"""The event bus: ids, envelope, resume with Last-Event-ID, gaps, threads."""

import asyncio
import contextlib
import json
import threading
from datetime import UTC, datetime

import pytest

from gateway.events import (
    EPOCH_BITS,
    GAP,
    EventBus,
    Resource,
    historical_event_data,
    next_epoch,
    reading_event_data,
    reading_event_type,
)


async def take(bus: EventBus, n: int, after: int | None = None) -> list:
    out = []
    async with asyncio.timeout(2), contextlib.aclosing(bus.subscribe(after)) as events:
        async for event in events:
            out.append(event)
            if len(out) == n:
                break
    return out


def test_envelope_and_ids_increase() -> None:
    bus = EventBus(epoch=3)
    first = bus.publish("daily.data.glucose.created", "u1", {"user_id": "u1", "data": []})
    second = bus.publish("gateway.device.seen", None, {"address": "A"})
    assert first.id == (3 << EPOCH_BITS) | 1
    assert second.id == first.id + 1
    assert json.loads(first.json) == {
        "event_type": "daily.data.glucose.created",
        "user_id": "u1",
        "client_user_id": None,
        "team_id": None,
        "data": {"user_id": "u1", "data": []},
    }
    assert first.envelope() == json.loads(first.json)


def test_reading_event_type_is_junctions() -> None:
    assert reading_event_type(Resource.BLOOD_PRESSURE) == "daily.data.blood_pressure.created"
    assert reading_event_type("weight", change="updated") == "daily.data.weight.updated"
    assert reading_event_type("fat", stage="historical") == "historical.data.fat.created"
    with pytest.raises(ValueError, match="steps"):
        reading_event_type("steps")
    with pytest.raises(ValueError, match="body"):
        reading_event_type("body")  # scales give weight and fat samples, not a list
    with pytest.raises(ValueError, match="historical"):
        reading_event_type("glucose", stage="historical", change="updated")


def test_reading_event_data_is_a_junction_group() -> None:
    sample = {
        "timestamp": "2026-11-20T06:01:00+00:00",
        "timezone_offset": 3600,
        "type": None,
        "unit": "mmol/L",
        "value": 5.8,
    }
    data = reading_event_data(
        "u1", "accuchek_ble", "glucose", "C0:FF:EE:00:00:01", [sample], ["r1"]
    )
    assert data == {
        "user_id": "u1",
        "source": {
            "provider": "accuchek_ble",
            "type": "fingerprick",
            "app_id": None,
            "device_id": "C0:FF:EE:00:00:01",
        },
        "data": [sample],
        "reading_ids": ["r1"],
    }
    window = historical_event_data(
        "u1",
        "omron_ble",
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 11, 20, 12, tzinfo=UTC),
    )
    assert window == {
        "user_id": "u1",
        "start_date": "2026-11-01T00:00:00+00:00",
        "end_date": "2026-11-20T12:00:00+00:00",
        "provider": "omron_ble",
    }


def test_unserialisable_data_publishes_nothing() -> None:
    bus = EventBus()
    with pytest.raises(TypeError):
        bus.publish("x", None, {"bad": object()})
    with pytest.raises(ValueError, match="Out of range"):
        bus.publish("x", None, {"bad": float("nan")})
    assert bus.since(0) == ([], False)
    assert bus.last_id == 0


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        EventBus(capacity=0)


async def test_live_subscriber_gets_new_events_only() -> None:
    bus = EventBus()
    bus.publish("old", None, {})
    task = asyncio.create_task(take(bus, 2))
    await asyncio.sleep(0.01)
    bus.publish("a", None, {})
    bus.publish("b", None, {})
    assert [e.event_type for e in await task] == ["a", "b"]
    assert bus.subscribers == 0


async def test_resume_after_last_event_id() -> None:
    bus = EventBus()
    ids = [bus.publish(f"e{i}", None, {}).id for i in range(5)]
    events = await take(bus, 3, after=ids[1])
    assert [e.id for e in events] == ids[2:]


async def test_resume_older_than_kept_reports_gap_then_kept() -> None:
    bus = EventBus(capacity=3)
    ids = [bus.publish(f"e{i}", None, {}).id for i in range(6)]
    events = await take(bus, 4, after=ids[0])
    assert events[0].event_type == GAP
    assert events[0].data["oldest_id"] == ids[3]
    assert events[0].id == ids[3] - 1
    assert [e.id for e in events[1:]] == ids[3:]


async def test_resume_from_previous_run_reports_gap(tmp_path) -> None:
    old = EventBus(epoch=next_epoch(tmp_path))
    stale = old.publish("e", None, {}).id
    new = EventBus(epoch=next_epoch(tmp_path))
    fresh = new.publish("f", None, {}).id
    assert fresh > stale
    events = await take(new, 2, after=stale)
    assert [e.event_type for e in events] == [GAP, "f"]


async def test_future_id_is_a_gap_then_live() -> None:
    bus = EventBus()
    bus.publish("e", None, {})
    task = asyncio.create_task(take(bus, 2, after=10**12))
    await asyncio.sleep(0.01)
    live = bus.publish("live", None, {})
    events = await task
    assert events[0].event_type == GAP
    assert events[1].id == live.id


async def test_slow_subscriber_gets_gap_not_blocking_publishers() -> None:
    bus = EventBus(capacity=2)
    gen = bus.subscribe()
    first = asyncio.ensure_future(gen.__anext__())
    await asyncio.sleep(0.01)
    for i in range(5):
        bus.publish(f"e{i}", None, {})
    # It had seen nothing when five arrived; only the newest two are kept.
    assert (await first).event_type == GAP
    assert (await gen.__anext__()).event_type == "e3"
    assert (await gen.__anext__()).event_type == "e4"
    await gen.aclose()
    assert bus.subscribers == 0


async def test_publish_from_another_thread_wakes_subscriber() -> None:
    bus = EventBus()
    task = asyncio.create_task(take(bus, 1))
    await asyncio.sleep(0.01)
    thread = threading.Thread(target=bus.publish, args=("t", None, {}))
    thread.start()
    thread.join()
    assert [e.event_type for e in await task] == ["t"]


def test_next_epoch_counts_and_survives_garbage(tmp_path) -> None:
    assert next_epoch(tmp_path) == 1
    assert next_epoch(tmp_path) == 2
    (tmp_path / "events.epoch").write_text("garbage")
    assert next_epoch(tmp_path) > 2
