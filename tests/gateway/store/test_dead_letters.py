"""`gateway.store.dead_letters`: items Junction refused for good, listed oldest first per user,
and put back in the queue as new (attempts, retry time and refusal cleared)."""

from datetime import timedelta

from drivers.readings import ReadingKind
from gateway.store import dead_letters, users
from gateway.store.outbox import SqliteOutbox
from gateway.store.readings import ReadingState, get_reading, save_transfer
from tests.gateway.store.conftest import ZONE
from tests.sync.factories import T0, glucose

METER, CUFF = "C0:FF:EE:00:00:01", "C0:FF:EE:00:00:02"
LEASE = T0 + timedelta(minutes=5)


async def _refuse(outbox, user: str, count: int, at) -> list[str]:
    batch = await outbox.claim(user, ReadingKind.GLUCOSE, limit=count, now=at, lease_until=LEASE)
    assert batch is not None
    ids = [i.id for i in batch.items]
    await outbox.dead_letter(
        batch.claim_id, ids, status_code=400, body='{"detail":"bad"}', reason="refused", now=at
    )
    return ids


async def _setup(db):
    users.bind(db, METER, "alice")
    save_transfer(db, [glucose(1), glucose(2)], zone=ZONE, now=T0)
    users.bind(db, CUFF, "bob")
    save_transfer(db, [glucose(3, device=CUFF)], zone=ZONE, now=T0)
    outbox = SqliteOutbox(db, zone=ZONE)
    later = await _refuse(outbox, "alice", 2, T0 + timedelta(minutes=2))
    earlier = await _refuse(outbox, "bob", 1, T0 + timedelta(minutes=1))
    return later, earlier


async def test_listed_oldest_first_and_per_user(db):
    alice, bob = await _setup(db)
    every = dead_letters.listed(db)
    assert [d.item.id for d in every] == [*bob, *alice]
    first = every[0]
    assert (first.status_code, first.body, first.reason) == (400, '{"detail":"bad"}', "refused")
    assert first.at == T0 + timedelta(minutes=1)
    assert first.item.user_id == "bob"
    assert [d.item.id for d in dead_letters.listed(db, "alice")] == alice
    assert dead_letters.listed(db, "nobody") == []


async def test_requeued_items_are_queued_afresh_and_the_rest_stay_dead(db):
    alice, bob = await _setup(db)
    assert get_reading(db, alice[0]).state is ReadingState.DEAD
    assert dead_letters.requeue(db, [alice[0], "no-such-id"]) == 1
    assert dead_letters.requeue(db, [alice[0]]) == 0  # not dead any more
    assert get_reading(db, alice[0]).state is ReadingState.QUEUED
    assert [d.item.id for d in dead_letters.listed(db)] == [*bob, alice[1]]
    outbox = SqliteOutbox(db, zone=ZONE)
    at = T0 + timedelta(minutes=3)
    batch = await outbox.claim("alice", ReadingKind.GLUCOSE, limit=5, now=at, lease_until=LEASE)
    assert batch is not None
    assert [(i.id, i.attempts) for i in batch.items] == [(alice[0], 0)]
