"""`StreamInfo.head` (issue 18), held to the same implementations as the outbox contract.

The head is the stage of a stream's oldest queued item that is due or claimed: what the
stream sends now or next. `sync.priority` gates on heads, so a few historical items queued
behind a daily backlog do not hold other resources back.
"""

from datetime import timedelta

from sync.outbox import Stage
from tests.contracts.test_outbox_contract import GLUCOSE, LEASE, factory, outbox  # noqa: F401
from tests.sync.factories import T0, blood_pressure, glucose, item


async def _info(outbox, now=T0):  # noqa: F811
    return {s.resource: s for s in await outbox.streams(now)}


async def test_the_head_is_the_oldest_item_and_counts_stay_whole(outbox):  # noqa: F811
    daily = [item(glucose(), enqueued_at=T0 + timedelta(seconds=n)) for n in range(3)]
    late = [item(glucose(), stage=Stage.HISTORICAL, enqueued_at=T0 + timedelta(minutes=1))]
    bp = [item(blood_pressure(), stage=Stage.HISTORICAL)]
    await outbox.enqueue(daily + late + bp)
    info = await _info(outbox)
    assert info[GLUCOSE].head is Stage.DAILY
    assert info[GLUCOSE].historical == 1
    assert info[GLUCOSE].queued == info[GLUCOSE].due == 4
    assert info[bp[0].resource].head is Stage.HISTORICAL


async def test_the_head_moves_on_as_items_are_delivered(outbox):  # noqa: F811
    daily = [item(glucose(), enqueued_at=T0 + timedelta(seconds=n)) for n in range(2)]
    late = item(glucose(), stage=Stage.HISTORICAL, enqueued_at=T0 + timedelta(minutes=1))
    await outbox.enqueue([*daily, late])
    batch = await outbox.claim("user-a", GLUCOSE, limit=5, now=T0, lease_until=LEASE)
    assert batch is not None
    assert [i.id for i in batch.items] == [d.id for d in daily]  # one group: the daily one
    assert batch.remaining == 0
    assert (await _info(outbox))[GLUCOSE].head is Stage.DAILY  # claimed items are the head
    await outbox.complete(batch.claim_id, [i.id for i in batch.items], T0)
    assert (await _info(outbox))[GLUCOSE].head is Stage.HISTORICAL


async def test_items_waiting_for_a_retry_are_not_the_head(outbox):  # noqa: F811
    first = item(glucose(), stage=Stage.HISTORICAL)
    second = item(glucose(), enqueued_at=T0 + timedelta(seconds=1))
    await outbox.enqueue([first, second])
    batch = await outbox.claim("user-a", GLUCOSE, limit=1, now=T0, lease_until=LEASE)
    assert batch is not None
    assert [i.id for i in batch.items] == [first.id]
    later = T0 + timedelta(minutes=1)
    await outbox.retry_later(batch.claim_id, [first.id], not_before=later, error="503")
    info = (await _info(outbox))[GLUCOSE]
    assert (info.head, info.due, info.next_due_at) == (Stage.DAILY, 1, later)
    assert (await _info(outbox, later))[GLUCOSE].head is Stage.HISTORICAL
    retried = await outbox.claim("user-a", GLUCOSE, limit=5, now=later, lease_until=LEASE)
    assert retried is not None
    assert [(i.id, i.attempts) for i in retried.items] == [(first.id, 1)]
    assert retried.remaining == 0  # the daily item is another group


async def test_a_daily_only_stream_has_a_daily_head_unless_every_item_waits(outbox):  # noqa: F811
    # No historical item queued: the SQLite outbox answers without walking the queue.
    items = [item(glucose(), enqueued_at=T0 + timedelta(seconds=n)) for n in range(2)]
    await outbox.enqueue(items)
    batch = await outbox.claim("user-a", GLUCOSE, limit=5, now=T0, lease_until=LEASE)
    assert batch is not None
    info = (await _info(outbox))[GLUCOSE]
    assert (info.head, info.historical, info.due, info.claimed) == (Stage.DAILY, 0, 0, 2)
    later = T0 + timedelta(minutes=1)
    await outbox.retry_later(batch.claim_id, [i.id for i in items], not_before=later, error="503")
    info = (await _info(outbox))[GLUCOSE]
    assert (info.head, info.queued, info.due) == (None, 2, 0)
    assert (await _info(outbox, later))[GLUCOSE].head is Stage.DAILY
