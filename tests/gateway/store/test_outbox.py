import sqlite3
from datetime import timedelta

from drivers.readings import ReadingFlag, ReadingKind
from gateway.store import claims, open_database, users
from gateway.store.outbox import SqliteOutbox
from gateway.store.readings import ReadingState, get_reading, save_transfer
from sync.outbox import Stage
from tests.gateway.store.conftest import ZONE
from tests.sync.factories import T0, blood_pressure, glucose

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


async def test_while_the_uploader_drains_deliveries_are_settled_together(db):
    """A 2xx is recorded at once (the item leaves the queue); the reading's state and change
    order follow at the settle, which waits while other batches are in flight."""
    users.bind(db, METER, "user-a")
    users.bind(db, "C0:FF:EE:00:00:02", "user-a")
    save_transfer(db, [glucose(1), glucose(2)], zone=ZONE, now=T0)
    save_transfer(db, [blood_pressure(3)], zone=ZONE, now=T0)
    outbox = SqliteOutbox(db, zone=ZONE)
    sugar = await outbox.claim("user-a", ReadingKind.GLUCOSE, limit=1, now=T0, lease_until=LEASE)
    cuff = await outbox.claim(
        "user-a", ReadingKind.BLOOD_PRESSURE, limit=5, now=T0, lease_until=LEASE
    )
    assert sugar is not None
    assert cuff is not None
    [delivered] = sugar.items
    before = _change_seq(db, delivered.id)
    await outbox.complete(sugar.claim_id, [delivered.id], T0)  # the cuff's batch is in flight
    glucose_stream = next(s for s in await outbox.streams(T0) if s.resource.value == "glucose")
    assert (glucose_stream.queued, glucose_stream.claimed) == (1, 0)
    again = await outbox.claim("user-a", ReadingKind.GLUCOSE, limit=5, now=T0, lease_until=LEASE)
    assert again is not None
    assert delivered.id not in {i.id for i in again.items}
    assert get_reading(db, delivered.id).state is ReadingState.QUEUED  # not settled yet
    assert await outbox.enqueue([delivered]) == 0, "a recorded delivery stays known"
    await outbox.release(again.claim_id, [i.id for i in again.items])
    await outbox.complete(cuff.claim_id, [i.id for i in cuff.items], T0)  # nothing in flight
    after = get_reading(db, delivered.id)
    assert after.state is ReadingState.DELIVERED
    assert _change_seq(db, delivered.id) > before, "updated_since sees the delivery"
    assert get_reading(db, cuff.items[0].id).state is ReadingState.DELIVERED
    with sqlite3.connect(db.path) as conn:
        assert conn.execute("SELECT count(*) FROM outbox_delivery").fetchone() == (0,)


async def test_a_recorded_delivery_a_crash_left_unsettled_is_settled_on_restart(db_path):
    db = open_database(db_path)
    users.bind(db, METER, "user-a")
    users.bind(db, "C0:FF:EE:00:00:02", "user-a")
    save_transfer(db, [glucose(1)], zone=ZONE, now=T0)
    save_transfer(db, [blood_pressure(2)], zone=ZONE, now=T0)
    outbox = SqliteOutbox(db, zone=ZONE)
    sugar = await outbox.claim("user-a", ReadingKind.GLUCOSE, limit=1, now=T0, lease_until=LEASE)
    cuff = await outbox.claim(
        "user-a", ReadingKind.BLOOD_PRESSURE, limit=1, now=T0, lease_until=LEASE
    )
    assert sugar is not None
    assert cuff is not None
    await outbox.complete(sugar.claim_id, [sugar.items[0].id], T0)
    db.close()
    claims._BY_FILE.clear()  # what a new process starts with: nothing in memory
    reopened = SqliteOutbox(open_database(db_path), zone=ZONE)
    [stream] = await reopened.streams(T0)
    assert stream.resource is ReadingKind.BLOOD_PRESSURE
    assert get_reading(reopened._db, sugar.items[0].id).state is ReadingState.DELIVERED


def _change_seq(db, reading_id: str) -> int:
    with sqlite3.connect(db.path) as conn:
        return conn.execute(
            "SELECT change_seq FROM reading WHERE id = ?", (reading_id,)
        ).fetchone()[0]
