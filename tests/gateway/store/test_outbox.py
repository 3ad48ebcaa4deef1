import sqlite3
from datetime import timedelta

from sqlmodel import select

from drivers.readings import ReadingFlag, ReadingKind
from gateway.reparse import _requeue
from gateway.store import claims, open_database, users
from gateway.store import outbox as outbox_module
from gateway.store.models import ReadingRow
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
    assert await outbox.streams(T0) == []  # the uploader, idle, settles what it delivered
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


async def _two_streams(db) -> tuple[SqliteOutbox, object, object]:
    users.bind(db, METER, "user-a")
    users.bind(db, "C0:FF:EE:00:00:02", "user-a")
    save_transfer(db, [glucose(1), glucose(2)], zone=ZONE, now=T0)
    save_transfer(db, [blood_pressure(3)], zone=ZONE, now=T0)
    outbox = SqliteOutbox(db, zone=ZONE)
    await outbox.streams(T0)  # a new process first catches up whatever an earlier one left
    sugar = await outbox.claim("user-a", ReadingKind.GLUCOSE, limit=1, now=T0, lease_until=LEASE)
    cuff = await outbox.claim(
        "user-a", ReadingKind.BLOOD_PRESSURE, limit=5, now=T0, lease_until=LEASE
    )
    assert sugar is not None
    assert cuff is not None
    return outbox, sugar, cuff


async def test_a_delivery_is_recorded_at_once_and_settled_when_the_uploader_is_idle(db):
    """A 2xx takes the item out of the queue at once (recorded); its rows, state and change
    order follow once the uploader finds nothing to claim and nothing in flight."""
    outbox, sugar, cuff = await _two_streams(db)
    [delivered] = sugar.items
    before = _change_seq(db, delivered.id)
    await outbox.complete(sugar.claim_id, [delivered.id], T0)  # the cuff's batch is in flight
    assert _recorded(db) == [delivered.id]
    assert get_reading(db, delivered.id).state is ReadingState.QUEUED  # not settled yet
    glucose_stream = next(s for s in await outbox.streams(T0) if s.resource.value == "glucose")
    assert (glucose_stream.queued, glucose_stream.claimed) == (1, 0)
    again = await outbox.claim("user-a", ReadingKind.GLUCOSE, limit=5, now=T0, lease_until=LEASE)
    assert again is not None
    assert delivered.id not in {i.id for i in again.items}
    assert await outbox.enqueue([delivered]) == 0, "a recorded delivery stays known"
    await outbox.complete(again.claim_id, [delivered.id], T0)  # a second 2xx: nothing new
    assert _recorded(db) == [delivered.id]
    await outbox.release(again.claim_id, [i.id for i in again.items])
    await outbox.complete(cuff.claim_id, [i.id for i in cuff.items], T0)
    assert get_reading(db, delivered.id).state is ReadingState.QUEUED, "glucose(2) is due"
    assert _recorded(db) != []
    later = await outbox.claim("user-a", ReadingKind.GLUCOSE, limit=5, now=T0, lease_until=LEASE)
    assert later is not None
    await outbox.complete(later.claim_id, [i.id for i in later.items], T0)
    assert await outbox.streams(T0) == []  # the uploader finds nothing to do: idle
    assert get_reading(db, delivered.id).state is ReadingState.DELIVERED
    assert _change_seq(db, delivered.id) > before, "updated_since sees the delivery"
    assert get_reading(db, cuff.items[0].id).state is ReadingState.DELIVERED
    assert _recorded(db) == []
    assert _waiting(db) == []


async def test_while_draining_deliveries_settle_once_overdue_and_the_change_order_waits(
    db, monkeypatch
):
    outbox, sugar, _cuff = await _two_streams(db)
    monkeypatch.setattr(outbox_module, "SETTLE_AFTER_S", 0.0)
    [delivered] = sugar.items
    before = _change_seq(db, delivered.id)
    await outbox.complete(sugar.claim_id, [delivered.id], T0)  # the cuff is in flight
    await outbox.settled()  # the settle it started in the background
    assert _recorded(db) == []
    assert get_reading(db, delivered.id).state is ReadingState.DELIVERED
    assert _change_seq(db, delivered.id) == before, "the change order waits for idle"
    assert _waiting(db) == [delivered.id]
    monkeypatch.setattr(outbox_module, "CATCH_UP_AFTER_S", 0.0)
    await outbox.catch_up(T0)  # run's timer: still busy, but now overdue
    await outbox.settled()
    assert _change_seq(db, delivered.id) > before
    assert _waiting(db) == []


async def test_the_change_order_catches_up_in_chunks_oldest_delivery_first(db, monkeypatch):
    users.bind(db, METER, "user-a")
    save_transfer(db, [glucose(i) for i in range(1, 6)], zone=ZONE, now=T0)
    outbox = SqliteOutbox(db, zone=ZONE)
    await outbox.streams(T0)
    monkeypatch.setattr(outbox_module, "SETTLE_AFTER_S", 0.0)
    order: list[str] = []
    for _ in range(5):  # one item per batch, another stream's claim in flight throughout
        batch = await outbox.claim(
            "user-a", ReadingKind.GLUCOSE, limit=1, now=T0, lease_until=LEASE
        )
        assert batch is not None
        outbox._claims.reserve(("other", "glucose"), T0, LEASE)  # the uploader stays busy
        await outbox.complete(batch.claim_id, [batch.items[0].id], T0)
        await outbox.settled()
        order.append(batch.items[0].id)
    assert _waiting(db) == order
    assert outbox.catch_up_sync(T0, limit=2) == 2
    assert _waiting(db) == order[2:]
    assert outbox.catch_up_sync(T0, limit=2) == 2
    assert outbox.catch_up_sync(T0, limit=2) == 1
    assert _waiting(db) == []
    seqs = [_change_seq(db, rid) for rid in order]
    assert seqs == sorted(seqs), "the change order follows the delivery order"


async def test_deliveries_a_crash_left_recorded_are_settled_on_restart(db_path):
    db = open_database(db_path)
    outbox, sugar, _cuff = await _two_streams(db)
    before = _change_seq(db, sugar.items[0].id)
    await outbox.complete(sugar.claim_id, [sugar.items[0].id], T0)
    assert _recorded(db) == [sugar.items[0].id]
    db.close()
    claims._BY_FILE.clear()  # what a new process starts with: nothing in memory
    reopened = SqliteOutbox(open_database(db_path), zone=ZONE)
    queued = {s.resource: s.queued for s in await reopened.streams(T0)}
    assert queued == {ReadingKind.GLUCOSE: 1, ReadingKind.BLOOD_PRESSURE: 1}
    await reopened.settled()  # overdue: the look at the queue settled it in the background
    assert get_reading(reopened._db, sugar.items[0].id).state is ReadingState.DELIVERED
    assert _recorded(reopened._db) == []
    assert _waiting(reopened._db) == [sugar.items[0].id]  # its change order: when idle
    assert _change_seq(reopened._db, sugar.items[0].id) == before


async def test_a_reader_beside_the_gateway_counts_recorded_deliveries_and_writes_nothing(
    db_path,
):
    db = open_database(db_path)
    outbox, sugar, _cuff = await _two_streams(db)
    await outbox.complete(sugar.claim_id, [sugar.items[0].id], T0)
    db.close()
    claims._BY_FILE.clear()  # another process: `edge-gateway status`
    with sqlite3.connect(db_path) as conn:
        before = list(conn.iterdump())
    reader = SqliteOutbox(open_database(db_path), zone=ZONE, maintain=False)
    queued = {s.resource: s.queued for s in await reader.streams(T0)}
    assert queued == {ReadingKind.GLUCOSE: 1, ReadingKind.BLOOD_PRESSURE: 1}
    with sqlite3.connect(db_path) as conn:
        assert list(conn.iterdump()) == before


def _recorded(db) -> list[str]:
    with sqlite3.connect(db.path) as conn:
        return [r[0] for r in conn.execute("SELECT reading_id FROM outbox_delivery")]


def _waiting(db) -> list[str]:
    with sqlite3.connect(db.path) as conn:
        return [r[0] for r in conn.execute("SELECT reading_id FROM change_catch_up ORDER BY pk")]


def _change_seq(db, reading_id: str) -> int:
    with sqlite3.connect(db.path) as conn:
        return conn.execute(
            "SELECT change_seq FROM reading WHERE id = ?", (reading_id,)
        ).fetchone()[0]


async def test_the_timer_catches_up_only_while_the_uploader_is_idle(db, monkeypatch):
    users.bind(db, METER, "user-a")
    save_transfer(db, [glucose(i) for i in range(1, 4)], zone=ZONE, now=T0)
    outbox = SqliteOutbox(db, zone=ZONE)
    monkeypatch.setattr(outbox_module, "SETTLE_AFTER_S", 0.0)
    monkeypatch.setattr(outbox_module, "CATCH_UP_CHUNK", 1)
    batch = await outbox.claim("user-a", ReadingKind.GLUCOSE, limit=3, now=T0, lease_until=LEASE)
    assert batch is not None
    await outbox.complete(batch.claim_id, [i.id for i in batch.items], T0)
    await outbox.settled()
    assert len(_waiting(db)) == 3
    assert await outbox.catch_up(T0) == 0, "not seen idle yet: the uploader may go on"
    assert await outbox.streams(T0) == []  # idle: one chunk at once
    assert len(_waiting(db)) == 2
    assert await outbox.catch_up(T0) == 1
    assert await outbox.catch_up(T0) == 1
    assert await outbox.catch_up(T0) == 0
    assert _waiting(db) == []


async def test_a_2xx_for_values_a_reparse_has_since_corrected_leaves_the_item_queued(db):
    """The claim sent the old values: the corrected reading must still go up."""
    users.bind(db, METER, "user-a")
    save_transfer(db, [glucose(1)], zone=ZONE, now=T0)
    outbox = SqliteOutbox(db, zone=ZONE)
    batch = await outbox.claim("user-a", ReadingKind.GLUCOSE, limit=5, now=T0, lease_until=LEASE)
    assert batch is not None
    [item] = batch.items
    with db.write() as session:  # `gateway.reparse` queues the corrected reading again
        row = session.exec(select(ReadingRow).where(ReadingRow.id == item.id)).one()
        _requeue(session, row, T0 + timedelta(minutes=1))
    await outbox.complete(batch.claim_id, [item.id], T0 + timedelta(minutes=2))
    assert get_reading(db, item.id).state is ReadingState.QUEUED
    again = await outbox.claim(
        "user-a", ReadingKind.GLUCOSE, limit=5, now=T0 + timedelta(minutes=3), lease_until=LEASE
    )
    assert again is not None
    assert [i.id for i in again.items] == [item.id]
    await outbox.complete(again.claim_id, [item.id], T0 + timedelta(minutes=3))
    assert await outbox.streams(T0 + timedelta(minutes=3)) == []
    assert get_reading(db, item.id).state is ReadingState.DELIVERED
