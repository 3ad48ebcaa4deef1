"""Recorded deliveries (step 1 of `gateway.store.outbox`) against reparse, crashes, failed
commits and racing threads: cases a fresh reviewer found by trying to break store v13."""

import sqlite3
from datetime import timedelta

import pytest
from sqlmodel import select

from drivers.readings import ReadingKind
from gateway.reparse import _requeue, _withdraw
from gateway.store import claims, open_database, users
from gateway.store.models import ReadingRow
from gateway.store.outbox import SqliteOutbox
from gateway.store.readings import ReadingState, get_reading, save_transfer
from gateway.store.withdrawn import list_withdrawn
from tests.gateway.store.conftest import ZONE, commits_failing
from tests.sync.factories import T0, glucose

METER = "C0:FF:EE:00:00:01"
LEASE = T0 + timedelta(minutes=5)


def _sql(db, query: str, *args):
    with sqlite3.connect(db.path) as conn:
        return conn.execute(query, args).fetchall()


async def test_withdrawing_a_recorded_delivery_keeps_it_delivered_and_listed(db_path):
    """Gateway stopped (or crashed) mid-drain with a 2xx recorded, not settled; then
    `edge-gateway reparse` (another process) withdraws that reading. Junction HAS it, so the
    README says it must stay delivered and be listed "so someone can deal with what Junction
    already has"."""
    db = open_database(db_path)
    users.bind(db, METER, "user-a")
    save_transfer(db, [glucose(1), glucose(2)], zone=ZONE, now=T0)
    outbox = SqliteOutbox(db, zone=ZONE)
    batch = await outbox.claim("user-a", ReadingKind.GLUCOSE, limit=1, now=T0, lease_until=LEASE)
    assert batch is not None
    [sent] = batch.items
    await outbox.complete(batch.claim_id, [sent.id], T0)  # 2xx: Junction has it
    assert _sql(db, "SELECT reading_id FROM outbox_delivery") == [(sent.id,)]
    db.close()  # SIGTERM/kill mid-drain: glucose(2) still due, nothing settled
    claims._BY_FILE.clear()
    cli = open_database(db_path)  # `edge-gateway reparse` process
    with cli.write() as session:
        _withdraw(session, [sent.id], T0 + timedelta(minutes=1))
    cli.close()
    claims._BY_FILE.clear()
    gateway = SqliteOutbox(open_database(db_path), zone=ZONE)  # the gateway again
    await gateway.streams(T0)
    state = get_reading(gateway._db, sent.id).state
    listed = {w.id: w.state for w in list_withdrawn(gateway._db)}
    assert state is ReadingState.DELIVERED, f"Junction has it, gateway says {state}"
    assert listed == {sent.id: "delivered"}


async def test_a_reparse_requeue_of_a_recorded_delivery_sends_the_correction(db):
    """Reparse (another process) corrects a reading whose 2xx is recorded, not settled: it
    deletes the outbox_delivery row, but this process's Recorded counter still subtracts it."""
    users.bind(db, METER, "user-a")
    save_transfer(db, [glucose(1), glucose(2)], zone=ZONE, now=T0)
    outbox = SqliteOutbox(db, zone=ZONE)
    batch = await outbox.claim("user-a", ReadingKind.GLUCOSE, limit=1, now=T0, lease_until=LEASE)
    assert batch is not None
    [x] = batch.items
    await outbox.complete(batch.claim_id, [x.id], T0)
    with db.write() as session:  # `edge-gateway reparse` corrects x
        row = session.exec(select(ReadingRow).where(ReadingRow.id == x.id)).one()
        _requeue(session, row, T0 + timedelta(minutes=1))
    at = T0 + timedelta(minutes=2)
    await outbox.streams(at)
    again = await outbox.claim("user-a", ReadingKind.GLUCOSE, limit=5, now=at, lease_until=LEASE)
    assert again is not None
    # The correction is claimed (not skipped as recorded), and `remaining` is never negative.
    # (This process's count of what the reparse settled heals at its next settle.)
    assert {i.id for i in again.items} == {x.id, glucose(2).id}
    assert again.remaining == 0
    await outbox.complete(again.claim_id, [i.id for i in again.items], at)
    assert await outbox.streams(at) == []
    assert get_reading(db, x.id).state is ReadingState.DELIVERED
    assert _sql(db, "SELECT count(*) FROM outbox_delivery") == [(0,)]


async def test_a_reparse_requeue_of_the_last_recorded_item_keeps_its_stream(db):
    users.bind(db, METER, "user-a")
    save_transfer(db, [glucose(1)], zone=ZONE, now=T0)
    outbox = SqliteOutbox(db, zone=ZONE)
    batch = await outbox.claim("user-a", ReadingKind.GLUCOSE, limit=1, now=T0, lease_until=LEASE)
    assert batch is not None
    [x] = batch.items
    await outbox.complete(batch.claim_id, [x.id], T0)
    with db.write() as session:
        row = session.exec(select(ReadingRow).where(ReadingRow.id == x.id)).one()
        _requeue(session, row, T0 + timedelta(minutes=1))
    streams = await outbox.streams(T0 + timedelta(minutes=2))
    assert [s.queued for s in streams] == [1], "uploader(until_idle) returns; run sleeps 5 s"


async def test_a_catch_up_racing_a_settle_keeps_the_wake_up(db, monkeypatch):
    """catch_up_sync (timer thread) commits a short chunk; before it calls settled(more=False)
    a settle in another worker thread commits and note()s (a no-op: _since still set)."""
    users.bind(db, METER, "user-a")
    save_transfer(db, [glucose(1), glucose(2)], zone=ZONE, now=T0)
    outbox = SqliteOutbox(db, zone=ZONE)
    await outbox.streams(T0)
    ids = []
    for _ in range(2):
        b = await outbox.claim("user-a", ReadingKind.GLUCOSE, limit=1, now=T0, lease_until=LEASE)
        assert b is not None
        await outbox.complete(b.claim_id, [b.items[0].id], T0)
        ids.append(b.items[0].id)
        if len(ids) == 1:
            outbox.settle_sync()  # first one settled, waiting for the change order
    real = outbox._catch_up.settled

    def racing(*, more: bool, generation: int | None = None) -> None:
        outbox.settle_sync()  # the other thread's settle lands here
        real(more=more, generation=generation)

    monkeypatch.setattr(outbox._catch_up, "settled", racing)
    outbox.catch_up_sync(T0)
    monkeypatch.undo()
    assert _sql(db, "SELECT reading_id FROM change_catch_up") == [(ids[1],)]
    await outbox.catch_up(T0)  # run's 1 s timer
    assert await outbox.streams(T0) == []  # idle uploader
    await outbox.catch_up(T0)
    left = _sql(db, "SELECT reading_id FROM change_catch_up")
    assert left == [], "updated_since never sees this delivery (until another one comes)"


async def test_streams_racing_a_settle_never_hides_a_stream(db, monkeypatch):
    """Another thread (API GET /v1/sync, or a completing stream) settles between streams()'s
    SQL snapshot and its read of the counters."""
    users.bind(db, METER, "user-a")
    save_transfer(db, [glucose(1), glucose(2)], zone=ZONE, now=T0)
    outbox = SqliteOutbox(db, zone=ZONE)
    await outbox.streams(T0)
    b = await outbox.claim("user-a", ReadingKind.GLUCOSE, limit=1, now=T0, lease_until=LEASE)
    assert b is not None
    await outbox.complete(b.claim_id, [b.items[0].id], T0)
    real = outbox._queue.read

    def racing(cur):
        got = real(cur)
        monkeypatch.setattr(outbox._queue, "read", real)
        assert outbox.settle_sync() == 1
        return got

    monkeypatch.setattr(outbox._queue, "read", racing)
    streams = await outbox.streams(T0)
    assert [s.queued for s in streams] == [1], "glucose(2) is due"


async def test_a_settle_whose_commit_fails_keeps_the_counts_with_the_rows(db):
    """settle_sync clears the in-memory counts inside its transaction; if the commit then
    fails (disk full, I/O error), the rows stay recorded but nothing counts them any more."""

    users.bind(db, METER, "user-a")
    save_transfer(db, [glucose(1)], zone=ZONE, now=T0)
    outbox = SqliteOutbox(db, zone=ZONE)
    b = await outbox.claim("user-a", ReadingKind.GLUCOSE, limit=1, now=T0, lease_until=LEASE)
    assert b is not None
    await outbox.complete(b.claim_id, [b.items[0].id], T0)
    with commits_failing(db), pytest.raises(sqlite3.OperationalError):
        outbox.settle_sync()
    rounds = []
    for _ in range(3):  # the uploader's loop
        streams = await outbox.streams(T0)
        got = await outbox.claim("user-a", ReadingKind.GLUCOSE, limit=5, now=T0, lease_until=LEASE)
        rounds.append(([(s.queued, s.due) for s in streams], got is not None))
    state = get_reading(db, b.items[0].id).state
    assert (rounds[-1], state) == (([], False), ReadingState.DELIVERED), (rounds, state)
