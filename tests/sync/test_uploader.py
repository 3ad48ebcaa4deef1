"""The uploader against the Junction stub served by uvicorn over loopback."""

import asyncio
import dataclasses
import itertools
import logging
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from drivers.readings import (
    DeviceTime,
    GlucoseUnit,
    MassUnit,
    PressureUnit,
    ReadingFlag,
    ReadingKind,
)
from sync.backoff import backoff_for
from sync.junction.schemas import instant_text
from sync.junction.stub import Faults
from sync.outbox import SyncStatus, items_for_read
from sync.uploader import SyncEvent
from tests.sync.factories import T0, blood_pressure, body, glucose, item, wall

BERLIN = ZoneInfo("Europe/Berlin")


def _cuff_reading(device, unit):
    """120/80 mmHg in the cuff's unit (the strict stub refuses implausible pressures)."""
    if unit is PressureUnit.KPA:
        return blood_pressure(device=device, unit=unit, systolic=16.0, diastolic=10.7)
    return blood_pressure(device=device, unit=unit)


def _readings(n_users=3, per_kind=20):
    items = []
    for u in range(n_users):
        user = f"user-{u}"
        dev = f"C0:FF:EE:00:0{u}:0"
        reads = (
            [
                glucose(device=dev + "1", unit=random.choice(list(GlucoseUnit)))
                for _ in range(per_kind)
            ]
            + [_cuff_reading(dev + "2", random.choice(list(PressureUnit))) for _ in range(per_kind)]
            + [body(device=dev + "3", unit=random.choice(list(MassUnit))) for _ in range(per_kind)]
        )
        items += items_for_read(reads, user_id=user, zone=BERLIN, enqueued_at=T0)
    return items


def _expected_keys(items):
    """(user, stub resource, timestamp) for every sample the items must produce."""
    keys = set()
    for it in items:
        ts = it.reading.instant(BERLIN).isoformat().replace("+00:00", "Z")
        if it.resource is ReadingKind.BODY:
            keys.add((it.user_id, "weight", ts))
            keys.add((it.user_id, "fat", ts))
        else:
            keys.add((it.user_id, it.resource.value, ts))
    return keys


def _stored_keys(stub):
    keys = [(d["user_id"], d["resource"], d["timestamp"]) for d in stub.samples.values()]
    assert len(keys) == len(set(keys))
    return set(keys)


async def _queued(outbox):
    far = datetime.now(UTC) + timedelta(days=1)
    return sum(s.queued for s in await outbox.streams(far))


async def _drain(uploader, timeout=30):
    await asyncio.wait_for(uploader.run(until_idle=True), timeout)


async def test_every_reading_arrives_once_with_units_and_instants(
    stub_server, outbox, make_uploader
):
    items = _readings()
    await outbox.enqueue(items)
    uploader = make_uploader()
    await _drain(uploader)
    stub = stub_server.stub
    assert _stored_keys(stub) == _expected_keys(items)
    assert stub.writes == len(stub.samples), "no resends without faults"
    assert await _queued(outbox) == 0
    for doc in stub.samples.values():
        if doc["resource"] == "glucose":
            assert doc["unit"] == "mmol/L"
            assert doc["type"] == "fingerprick"
            assert doc["value"] == pytest.approx(5.773) or doc["value"] == pytest.approx(1.04)
        elif doc["resource"] == "blood_pressure":
            assert doc["systolic"]["unit"] == "mmHg"
            assert doc["pulse"]["unit"] == "bpm"
        elif doc["resource"] == "weight":
            assert doc["unit"] == "kg"
    assert all(r.gzip for r in stub.requests if r.resource != "link")
    links = [r for r in stub.requests if r.resource == "link"]
    assert len(links) == 3 * 2, "one manual-provider link per (user, slug), then cached"
    progress = await outbox.progress()
    assert {p.status for p in progress} == {SyncStatus.COMPLETED}
    assert sum(p.delivered_total for p in progress) == len(items)


async def test_random_faults_lose_nothing_and_double_nothing(stub_server, outbox, make_uploader):
    items = _readings(n_users=4, per_kind=30)
    await outbox.enqueue(items)
    stub = stub_server.stub
    stub.set_faults(
        Faults(
            rate_limit=0.1,
            retry_after_s=0.05,
            server_error=0.1,
            unavailable=0.05,
            drop=0.1,
            drop_after_accept=0.1,
            slow=0.05,
            slow_s=2.5,
            unauthorized_once=True,
            seed=3,
        )
    )
    await _drain(make_uploader(batch_size=20), timeout=45)
    assert _stored_keys(stub) == _expected_keys(items)
    assert await _queued(outbox) == 0
    assert await outbox.dead_letters() == []
    faults = {r.fault for r in stub.requests}
    assert {"rate_limit", "drop_after_accept", "drop"} <= faults
    assert stub.writes > len(stub.samples), "some resends happened and were absorbed"


async def test_priority_order_and_one_post_per_stream(stub_server, outbox, make_uploader):
    reads = [glucose() for _ in range(3)] + [blood_pressure() for _ in range(3)] + [body()]
    await outbox.enqueue(items_for_read(reads, user_id="solo", zone=BERLIN, enqueued_at=T0))
    await _drain(make_uploader(max_in_flight=1, batch_size=1))
    data = [r for r in stub_server.stub.requests if r.resource != "link"]
    # sync.priority.DEFAULT_RESOURCE_ORDER: vitals first, glucose before blood pressure
    assert [r.resource for r in data] == ["glucose"] * 3 + ["blood_pressure"] * 3 + ["body"]


async def test_streams_are_serialised_but_run_concurrently(stub_server, outbox, make_uploader):
    await outbox.enqueue(_readings(n_users=5, per_kind=40))
    stub_server.stub.set_faults(Faults(slow=0.5, slow_s=0.05, seed=1))
    await _drain(make_uploader(max_in_flight=8, batch_size=10))
    data = [r for r in stub_server.stub.requests if r.resource != "link"]
    assert all(r.concurrent == 0 for r in data), "two POSTs of one stream overlapped"
    spans = sorted((r.started, r.ended) for r in data)
    overlaps = sum(b[0] < a[1] for a, b in itertools.pairwise(spans))
    assert overlaps > 0, "different streams should overlap"


async def test_fair_across_users(stub_server, outbox, make_uploader):
    big = [glucose(device="AA:00:00:00:00:01") for _ in range(50)]
    small = [glucose(device="AA:00:00:00:00:02")]
    await outbox.enqueue(items_for_read(big, user_id="big", zone=BERLIN, enqueued_at=T0))
    await outbox.enqueue(items_for_read(small, user_id="small", zone=BERLIN, enqueued_at=T0))
    await _drain(make_uploader(max_in_flight=1, batch_size=5))
    data = [r.user_id for r in stub_server.stub.requests if r.resource != "link"]
    assert data.index("small") <= 1


async def test_first_read_goes_up_daily_by_default_like_the_devices_sdk(
    stub_server, outbox, make_uploader
):
    """mobile-sdk-sync.md §2.4: the Devices SDK sends every BLE read as daily, no window."""
    reads = [glucose(flags=frozenset({ReadingFlag.HISTORICAL})) for _ in range(4)]
    await outbox.enqueue(items_for_read(reads, user_id="u", zone=BERLIN, enqueued_at=T0))
    await _drain(make_uploader(batch_size=3))
    data = [r for r in stub_server.stub.requests if r.resource == "glucose"]
    assert [(r.stage, r.samples) for r in data] == [("daily", 3), ("daily", 1)]
    assert all("start_date" not in r.body and "end_date" not in r.body for r in data)
    assert len(stub_server.stub.samples) == 4


async def test_backfill_setting_sends_first_read_historical_in_the_documented_window(
    stub_server, outbox, make_uploader
):
    """backfill_days: window [receive - N days, receive] in whole seconds, fixed per chunk."""
    received = T0.replace(microsecond=250_000)
    first_read = frozenset({ReadingFlag.HISTORICAL})

    def at(when):
        reading = glucose(flags=first_read, device_time=DeviceTime.from_datetime(when))
        return dataclasses.replace(reading, received_at=received)

    reads = [at(wall(8, minute)) for minute in range(7)]
    old = at(wall(8) - timedelta(days=40))
    items = items_for_read([*reads, old], user_id="u", zone=BERLIN, enqueued_at=T0)
    await outbox.enqueue(items)
    later = glucose()
    await outbox.enqueue(
        items_for_read([later], user_id="u", zone=BERLIN, enqueued_at=T0 + timedelta(seconds=1))
    )
    await _drain(make_uploader(batch_size=3, backfill_days=30))
    data = [r for r in stub_server.stub.requests if r.resource == "glucose"]
    historical = [r for r in data if r.stage == "historical"]
    assert sum(r.samples for r in historical) == 7
    end = T0.replace(microsecond=0) + timedelta(seconds=1)
    window = {(r.body["start_date"], r.body["end_date"]) for r in historical}
    assert window == {(instant_text(end - timedelta(days=30)), instant_text(end))}
    assert [r.body["is_final_chunk"] for r in historical][-1] is True
    assert [r.body["is_final_chunk"] for r in historical].count(True) == 1
    # The 40-day-old reading would be dropped inside a historical window: it goes daily.
    assert sum(r.samples for r in data if r.stage == "daily") == 2
    assert not stub_server.stub.dropped
    docs = stub_server.stub.samples.values()
    assert {d["stage"] for d in docs if d["id"] in {later.id, old.id}} == {"daily"}
    assert len(docs) == 9


async def test_cancel_mid_post_then_restart_loses_nothing(stub_server, outbox, make_uploader):
    items = _readings(n_users=2, per_kind=10)
    await outbox.enqueue(items)
    stub = stub_server.stub
    stub.set_faults(Faults(script=["slow", "slow", "slow"], slow_s=0.5))
    first = asyncio.create_task(make_uploader().run())
    while not any(r.fault == "slow" and r.ended is None for r in stub.requests):
        await asyncio.sleep(0.01)
    first.cancel()  # the uploader dies with POSTs in flight and claims held
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await _queued(outbox) > 0
    await _drain(make_uploader())  # a fresh uploader on the same outbox
    await asyncio.sleep(0.6)  # let the cancelled slow requests finish on the stub side
    assert _stored_keys(stub) == _expected_keys(items)
    assert await _queued(outbox) == 0


async def test_dropped_after_accept_then_restart_is_absorbed(stub_server, outbox, make_uploader):
    items = _readings(n_users=1, per_kind=5)
    await outbox.enqueue(items)
    stub = stub_server.stub
    stub.set_faults(Faults(script=["drop_after_accept"], scope="data"))
    slow_retry = make_uploader(backoff=lambda *a: 600.0)
    first = asyncio.create_task(slow_retry.run())
    while not any(r.fault == "drop_after_accept" and r.ended for r in stub.requests):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    accepted = {k for k, d in stub.samples.items()}
    assert accepted, "the stub stored the body before dropping the connection"
    later = datetime.now(UTC) + timedelta(minutes=11)
    await _drain(make_uploader(clock=lambda: later))
    assert _stored_keys(stub) == _expected_keys(items)
    assert max(d["writes"] for d in stub.samples.values()) == 2, "resend upserted"


async def test_bad_reading_is_isolated_and_dead_lettered(stub_server, outbox, make_uploader):
    good = [glucose() for _ in range(6)]
    bad = glucose(concentration=-0.001)
    reads = [*good[:3], bad, *good[3:]]
    # items_for_read keeps such a reading out of the outbox; the uploader must still isolate
    # one that got in (an older gateway queued it).
    await outbox.enqueue([item(r, user_id="u") for r in reads])
    events: list[SyncEvent] = []
    await _drain(make_uploader(on_event=events.append))
    [dead] = await outbox.dead_letters()
    assert dead.item.id == bad.id
    assert dead.status_code == 422
    assert "value" in dead.body
    assert await _queued(outbox) == 0
    assert [e.kind for e in events] == ["dead_letter"]


async def test_permanent_4xx_dead_letters_the_batch(stub_server, outbox, make_uploader):
    await outbox.enqueue([item(glucose()), item(glucose())])
    stub_server.stub.set_faults(Faults(script=["reject", "reject", "reject"]))
    await _drain(make_uploader())
    dead = await outbox.dead_letters()
    assert len(dead) == 2
    assert {d.status_code for d in dead} == {400}


async def test_pause_and_resume(stub_server, outbox, make_uploader):
    await outbox.enqueue([item(glucose(), user_id="p"), item(glucose(), user_id="q")])
    uploader = make_uploader()
    await uploader.pause("p")
    await _drain(uploader)
    assert {d["user_id"] for d in stub_server.stub.samples.values()} == {"q"}
    await uploader.resume("p")
    await _drain(uploader)
    assert {d["user_id"] for d in stub_server.stub.samples.values()} == {"p", "q"}


async def test_offline_does_not_burn_attempts(outbox, make_uploader, unused_tcp_port):
    from pydantic import SecretStr

    from sync.junction.client import JunctionClient

    dead_end = JunctionClient(
        base_url=f"http://127.0.0.1:{unused_tcp_port}",
        api_key=SecretStr("k"),
        connect_timeout_s=0.5,
    )
    await outbox.enqueue([item(glucose())])
    events: list[SyncEvent] = []
    uploader = make_uploader(client=dead_end, on_event=events.append)
    task = asyncio.create_task(uploader.run())
    await asyncio.sleep(0.5)
    uploader.stop()
    await task
    await dead_end.aclose()
    assert [e.kind for e in events][:1] == ["offline"]
    assert uploader.stats.batches >= 2, "it kept probing"
    # stop() may cancel a probe that still holds its claim; after its lease it is free again.
    later = datetime.now(UTC) + timedelta(hours=1)
    batch = await outbox.claim("user-a", ReadingKind.GLUCOSE, limit=1, now=later, lease_until=later)
    assert batch is not None
    assert batch.items[0].attempts == 0
    [progress] = await outbox.progress()
    assert progress.status is SyncStatus.EXPECTED_ERROR


async def test_retry_after_holds_every_stream(stub_server, outbox, make_uploader):
    await outbox.enqueue(_readings(n_users=3, per_kind=10))
    stub = stub_server.stub
    stub.set_faults(Faults(script=["rate_limit"], retry_after_s=0.4, scope="data"))
    await _drain(make_uploader(max_in_flight=2, batch_size=5, backoff=backoff_for))
    data = [r for r in stub.requests if r.resource != "link"]
    [limited] = [r for r in data if r.fault == "rate_limit"]
    # A request already on its way when the 429 went out may land just after it.
    quiet = [r for r in data if limited.ended + 0.05 < r.started < limited.ended + 0.39]
    assert quiet == []
    assert any(r.started >= limited.ended + 0.39 for r in data), "uploads resumed"


async def test_no_measured_values_in_logs_above_debug(stub_server, outbox, make_uploader, caplog):
    caplog.set_level("DEBUG")
    reads = [glucose(concentration=0.00139967), blood_pressure(systolic=137.25)]
    reads.append(glucose(concentration=-0.00139967))  # refused: dead letter + warning
    await outbox.enqueue(items_for_read(reads, user_id="u", zone=BERLIN, enqueued_at=T0))
    stub_server.stub.set_faults(Faults(script=["server_error", "drop"], scope="data"))
    await _drain(make_uploader())
    loud = [r for r in caplog.records if r.levelno > logging.DEBUG]
    assert any(r.levelno == logging.WARNING for r in loud)
    for record in loud:
        text = record.getMessage() + (record.exc_text or "")
        for value in ("0.00139967", "7.769", "137.25", "1.39967e-03"):
            assert value not in text, record.getMessage()


async def test_offline_then_back_online_delivers(outbox, make_uploader, unused_tcp_port):
    from pydantic import SecretStr

    from sync.junction.client import JunctionClient
    from sync.junction.stub import JunctionStub, create_app
    from sync.junction.stub_server import StubServer
    from tests.sync.conftest import API_KEY, USERS

    client = JunctionClient(
        base_url=f"http://127.0.0.1:{unused_tcp_port}",
        api_key=SecretStr(API_KEY),
        connect_timeout_s=0.5,
    )
    items = [item(glucose()), item(blood_pressure())]
    await outbox.enqueue(items)
    events: list[SyncEvent] = []
    uploader = make_uploader(client=client, on_event=events.append)
    task = asyncio.create_task(uploader.run(until_idle=True))
    await asyncio.sleep(0.3)
    assert not task.done()
    stub = JunctionStub(api_key=API_KEY)
    async with StubServer(create_app(stub=stub, users=list(USERS)), port=unused_tcp_port):
        await asyncio.wait_for(task, 10)
    await client.aclose()
    assert len(stub.samples) == 2
    assert [e.kind for e in events] == ["offline", "online"]


async def test_unmappable_reading_is_dead_lettered_alone(stub_server, outbox, make_uploader):
    reads = [glucose(), glucose(concentration=float("nan")), glucose()]
    await outbox.enqueue([item(r, user_id="u") for r in reads])
    await _drain(make_uploader())
    [dead] = await outbox.dead_letters()
    assert (dead.item.id, dead.status_code) == (reads[1].id, None)
    assert "finite" in dead.reason
    assert len(stub_server.stub.samples) == 2
