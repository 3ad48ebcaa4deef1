"""The `sync.outbox.Outbox` contract, run against every implementation.

To add an implementation, add one entry to `IMPLEMENTATIONS`: a name and an async factory
taking a directory and returning an outbox over it. Calling the factory again with the same
directory must reopen the same data (that is how a restart is tested). For the in-memory
outbox "reopening" returns the same object.
"""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from drivers.readings import ReadingKind
from sync.memory_outbox import MemoryOutbox
from sync.outbox import Outbox, Stage, SyncStatus, UploadProgress, UserHold
from tests.gateway.store.factories import sqlite_outbox
from tests.sync.factories import T0, blood_pressure, glucose, item

OutboxFactory = Callable[[Path], Awaitable[Outbox]]

_MEMORY: dict[Path, MemoryOutbox] = {}


async def _memory(path: Path) -> Outbox:
    return _MEMORY.setdefault(path, MemoryOutbox())


IMPLEMENTATIONS: dict[str, OutboxFactory] = {
    "memory": _memory,
    "sqlite": sqlite_outbox,
}

LEASE = T0 + timedelta(minutes=5)
GLUCOSE = ReadingKind.GLUCOSE


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def factory(request: pytest.FixtureRequest) -> OutboxFactory:
    return IMPLEMENTATIONS[request.param]


@pytest.fixture
async def outbox(factory: OutboxFactory, tmp_path: Path) -> Outbox:
    return await factory(tmp_path)


async def test_implements_the_protocol(outbox):
    assert isinstance(outbox, Outbox)


async def test_enqueue_skips_known_ids_whatever_their_state(outbox):
    a, b, c = item(), item(), item()
    assert await outbox.enqueue([a, b]) == 2
    assert await outbox.enqueue([a, b, c]) == 1
    batch = await outbox.claim("user-a", GLUCOSE, limit=1, now=T0, lease_until=LEASE)
    assert batch is not None
    await outbox.complete(batch.claim_id, [batch.items[0].id], T0)
    assert await outbox.enqueue([batch.items[0]]) == 0, "delivered ids stay known"
    streams = await outbox.streams(T0)
    assert [s.queued for s in streams] == [2]


async def test_claim_takes_oldest_due_items_up_to_the_limit(outbox):
    items = [item(enqueued_at=T0 + timedelta(seconds=i)) for i in range(5)]
    await outbox.enqueue(list(reversed(items)))
    batch = await outbox.claim("user-a", GLUCOSE, limit=3, now=T0, lease_until=LEASE)
    assert batch is not None
    assert [i.id for i in batch.items] == [i.id for i in items[:3]]
    assert batch.remaining == 2
    assert (batch.user_id, batch.resource) == ("user-a", GLUCOSE)


async def test_one_live_claim_per_stream_and_streams_are_independent(outbox):
    await outbox.enqueue([item(), item(), item(blood_pressure()), item(user_id="user-b")])
    first = await outbox.claim("user-a", GLUCOSE, limit=1, now=T0, lease_until=LEASE)
    assert first is not None
    again = await outbox.claim("user-a", GLUCOSE, limit=1, now=T0, lease_until=LEASE)
    assert again is None, "the stream already has a POST in flight"
    bp = await outbox.claim(
        "user-a", ReadingKind.BLOOD_PRESSURE, limit=9, now=T0, lease_until=LEASE
    )
    other_user = await outbox.claim("user-b", GLUCOSE, limit=9, now=T0, lease_until=LEASE)
    assert bp is not None
    assert other_user is not None
    await outbox.complete(first.claim_id, [i.id for i in first.items], T0)
    assert await outbox.claim("user-a", GLUCOSE, limit=1, now=T0, lease_until=LEASE)


async def test_a_batch_holds_one_group_only(outbox):
    daily = item(enqueued_at=T0)
    historical = item(stage=Stage.HISTORICAL, enqueued_at=T0 + timedelta(seconds=1))
    other_provider = item(provider="contour_ble", enqueued_at=T0 + timedelta(seconds=2))
    daily_again = item(enqueued_at=T0 + timedelta(seconds=3))
    await outbox.enqueue([daily, historical, other_provider, daily_again])
    batch = await outbox.claim("user-a", GLUCOSE, limit=10, now=T0, lease_until=LEASE)
    assert batch is not None
    assert [i.id for i in batch.items] == [daily.id, daily_again.id]
    assert batch.remaining == 0


async def test_remaining_counts_the_rest_of_the_group_for_is_final_chunk(outbox):
    chunk = [item(stage=Stage.HISTORICAL, enqueued_at=T0 + timedelta(seconds=i)) for i in range(3)]
    await outbox.enqueue(chunk)
    first = await outbox.claim("user-a", GLUCOSE, limit=2, now=T0, lease_until=LEASE)
    assert first is not None
    assert first.remaining == 1
    await outbox.complete(first.claim_id, [i.id for i in first.items], T0)
    last = await outbox.claim("user-a", GLUCOSE, limit=2, now=T0, lease_until=LEASE)
    assert last is not None
    assert last.remaining == 0
    assert last.items[0].window_start == chunk[0].window_start


async def test_an_expired_lease_makes_items_claimable_with_attempts_unchanged(outbox):
    await outbox.enqueue([item()])
    first = await outbox.claim("user-a", GLUCOSE, limit=1, now=T0, lease_until=LEASE)
    assert first is not None
    later = LEASE + timedelta(seconds=1)
    second = await outbox.claim(
        "user-a", GLUCOSE, limit=1, now=later, lease_until=later + timedelta(minutes=5)
    )
    assert second is not None
    assert second.claim_id != first.claim_id
    assert second.items[0].attempts == 0
    # The stale claim can no longer send items back...
    await outbox.retry_later(first.claim_id, [first.items[0].id], not_before=later, error="x")
    await outbox.release(first.claim_id, [first.items[0].id])
    assert (await outbox.streams(later))[0].claimed == 1
    # ...but a 2xx under it is still a delivery.
    await outbox.complete(first.claim_id, [first.items[0].id], later)
    assert await outbox.streams(later) == []


async def test_restart_releases_every_claim(factory, tmp_path):
    outbox = await factory(tmp_path)
    await outbox.enqueue([item(), item()])
    batch = await outbox.claim("user-a", GLUCOSE, limit=5, now=T0, lease_until=LEASE)
    assert batch is not None
    reopened = await factory(tmp_path)
    assert await reopened.release_all() == 2
    again = await reopened.claim("user-a", GLUCOSE, limit=5, now=T0, lease_until=LEASE)
    assert again is not None
    assert {i.id for i in again.items} == {i.id for i in batch.items}


async def test_complete_is_idempotent_and_accepts_a_subset(outbox):
    a, b = item(enqueued_at=T0), item(enqueued_at=T0 + timedelta(seconds=1))
    await outbox.enqueue([a, b])
    batch = await outbox.claim("user-a", GLUCOSE, limit=5, now=T0, lease_until=LEASE)
    assert batch is not None
    await outbox.complete(batch.claim_id, [a.id], T0)
    await outbox.complete(batch.claim_id, [a.id, "unknown"], T0)
    [stream] = await outbox.streams(T0)
    assert (stream.queued, stream.claimed) == (1, 1)
    await outbox.release(batch.claim_id, [b.id])
    again = await outbox.claim("user-a", GLUCOSE, limit=5, now=T0, lease_until=LEASE)
    assert again is not None
    assert [i.id for i in again.items] == [b.id]


async def test_retry_later_counts_an_attempt_and_delays(outbox):
    await outbox.enqueue([item()])
    batch = await outbox.claim("user-a", GLUCOSE, limit=1, now=T0, lease_until=LEASE)
    assert batch is not None
    retry_at = T0 + timedelta(seconds=30)
    await outbox.retry_later(batch.claim_id, [batch.items[0].id], not_before=retry_at, error="503")
    [stream] = await outbox.streams(T0)
    assert (stream.due, stream.claimed, stream.next_due_at) == (0, 0, retry_at)
    assert await outbox.claim("user-a", GLUCOSE, limit=1, now=T0, lease_until=LEASE) is None
    again = await outbox.claim(
        "user-a", GLUCOSE, limit=1, now=retry_at, lease_until=retry_at + timedelta(minutes=1)
    )
    assert again is not None
    assert again.items[0].attempts == 1


async def test_release_does_not_count_an_attempt(outbox):
    await outbox.enqueue([item()])
    batch = await outbox.claim("user-a", GLUCOSE, limit=1, now=T0, lease_until=LEASE)
    assert batch is not None
    await outbox.release(batch.claim_id, [batch.items[0].id])
    again = await outbox.claim("user-a", GLUCOSE, limit=1, now=T0, lease_until=LEASE)
    assert again is not None
    assert again.items[0].attempts == 0


async def test_dead_letters_leave_the_queue_and_can_be_requeued(outbox):
    bad, good = item(enqueued_at=T0), item(enqueued_at=T0 + timedelta(seconds=1))
    await outbox.enqueue([bad, good])
    batch = await outbox.claim("user-a", GLUCOSE, limit=5, now=T0, lease_until=LEASE)
    assert batch is not None
    await outbox.dead_letter(
        batch.claim_id, [bad.id], status_code=422, body='{"detail": []}', reason="refused", now=T0
    )
    await outbox.complete(batch.claim_id, [good.id], T0)
    assert await outbox.streams(T0) == []
    [dead] = await outbox.dead_letters()
    assert (dead.item.id, dead.status_code, dead.body, dead.at) == (
        bad.id,
        422,
        '{"detail": []}',
        T0,
    )
    assert await outbox.dead_letters("user-b") == []
    assert await outbox.enqueue([bad]) == 0
    assert await outbox.requeue_dead([bad.id, good.id]) == 1
    assert await outbox.dead_letters() == []
    again = await outbox.claim("user-a", GLUCOSE, limit=5, now=T0, lease_until=LEASE)
    assert again is not None
    assert [i.id for i in again.items] == [bad.id]


async def test_streams_report_counts(outbox):
    await outbox.enqueue(
        [item(), item(stage=Stage.HISTORICAL), item(blood_pressure(), user_id="user-b")]
    )
    batch = await outbox.claim("user-a", GLUCOSE, limit=1, now=T0, lease_until=LEASE)
    assert batch is not None
    infos = {(s.user_id, s.resource): s for s in await outbox.streams(T0)}
    mine = infos["user-a", GLUCOSE]
    assert (mine.queued, mine.due, mine.claimed, mine.historical) == (2, 1, 1, 1)
    assert infos["user-b", ReadingKind.BLOOD_PRESSURE].queued == 1


async def test_holds_are_per_user_and_per_reason(outbox):
    assert await outbox.holds() == {}
    await outbox.set_hold("user-a", UserHold.PAUSED, held=True)
    await outbox.set_hold("user-a", UserHold.REAUTHENTICATION_REQUIRED, held=True)
    await outbox.set_hold("user-a", UserHold.PAUSED, held=True)
    await outbox.set_hold("user-b", UserHold.PAUSED, held=False)
    assert await outbox.holds() == {
        "user-a": frozenset({UserHold.PAUSED, UserHold.REAUTHENTICATION_REQUIRED})
    }
    await outbox.set_hold("user-a", UserHold.PAUSED, held=False)
    assert await outbox.holds() == {"user-a": frozenset({UserHold.REAUTHENTICATION_REQUIRED})}


async def test_progress_keeps_the_latest_per_stream(outbox):
    started = UploadProgress("user-b", GLUCOSE, SyncStatus.STARTED, T0, Stage.DAILY, 3)
    done = UploadProgress(
        "user-b", GLUCOSE, SyncStatus.COMPLETED, T0 + timedelta(seconds=1), Stage.DAILY, 3, 3
    )
    other = UploadProgress("user-a", ReadingKind.BODY, SyncStatus.ERROR, T0, error="HTTP 503")
    for progress in (started, done, other):
        await outbox.record_progress(progress)
    assert await outbox.progress() == [other, done]
    assert await outbox.progress("user-b") == [done]


async def test_items_round_trip_unchanged(outbox):
    original = item(glucose(meal=2, sensor_status=0x0400), stage=Stage.HISTORICAL)
    await outbox.enqueue([original])
    batch = await outbox.claim("user-a", GLUCOSE, limit=1, now=T0, lease_until=LEASE)
    assert batch is not None
    assert batch.items == (original,)
