import sqlite3
from datetime import timedelta

from drivers.readings import ReadingFlag, ReadingKind
from gateway.store import open_database, users
from gateway.store.outbox import SqliteOutbox
from gateway.store.readings import ReadingState, get_reading, save_transfer
from sync.outbox import Stage
from tests.gateway.store.conftest import ZONE
from tests.sync.factories import T0, glucose

METER = "C0:FF:EE:00:00:01"
LEASE = T0 + timedelta(minutes=5)


async def test_saved_readings_flow_through_the_outbox_and_back_into_reading_state(db):
    users.bind(db, METER, "user-a", provider="contour_ble")
    first, bad = glucose(1), glucose(2)
    save_transfer(db, [first, bad], zone=ZONE, now=T0)
    outbox = SqliteOutbox(db, zone=ZONE)
    batch = await outbox.claim("user-a", ReadingKind.GLUCOSE, limit=10, now=T0, lease_until=LEASE)
    assert batch is not None
    assert [i.id for i in batch.items] == [first.id, bad.id]
    assert {i.provider for i in batch.items} == {"contour_ble"}
    await outbox.complete(batch.claim_id, [first.id], T0)
    await outbox.dead_letter(
        batch.claim_id, [bad.id], status_code=422, body="{}", reason="refused; fix it", now=T0
    )
    assert get_reading(db, first.id).state is ReadingState.DELIVERED
    assert get_reading(db, bad.id).state is ReadingState.DEAD
    assert await outbox.requeue_dead([bad.id]) == 1
    assert get_reading(db, bad.id).state is ReadingState.QUEUED
    with sqlite3.connect(db.path) as conn:
        outcomes = conn.execute("SELECT outcome, count FROM upload_attempt ORDER BY id").fetchall()
    assert outcomes == [("delivered", 1), ("dead", 1)]


async def test_a_first_full_read_is_queued_as_one_historical_window(db):
    users.bind(db, METER, "user-a")
    backlog = [glucose(i, flags=frozenset({ReadingFlag.HISTORICAL})) for i in range(1, 4)]
    save_transfer(db, [*backlog, glucose(9)], zone=ZONE, now=T0)
    outbox = SqliteOutbox(db, zone=ZONE)
    [stream] = await outbox.streams(T0)
    assert (stream.queued, stream.historical) == (4, 3)
    batch = await outbox.claim("user-a", ReadingKind.GLUCOSE, limit=2, now=T0, lease_until=LEASE)
    assert batch is not None
    assert {i.stage for i in batch.items} == {Stage.HISTORICAL}
    assert batch.remaining == 1
    window = {(i.window_start, i.window_end) for i in batch.items}
    assert window == {(backlog[0].instant(ZONE), T0)}


async def test_claims_survive_a_restart_and_are_released(db_path):
    db = open_database(db_path)
    users.bind(db, METER, "user-a")
    save_transfer(db, [glucose(1), glucose(2)], zone=ZONE, now=T0)
    batch = await SqliteOutbox(db, zone=ZONE).claim(
        "user-a", ReadingKind.GLUCOSE, limit=5, now=T0, lease_until=LEASE
    )
    assert batch is not None
    db.close()
    reopened = SqliteOutbox(open_database(db_path), zone=ZONE)
    assert (
        await reopened.claim("user-a", ReadingKind.GLUCOSE, limit=5, now=T0, lease_until=LEASE)
        is None
    )
    assert await reopened.release_all() == 2
    again = await reopened.claim("user-a", ReadingKind.GLUCOSE, limit=5, now=T0, lease_until=LEASE)
    assert again is not None
    assert [i.id for i in again.items] == [i.id for i in batch.items]
