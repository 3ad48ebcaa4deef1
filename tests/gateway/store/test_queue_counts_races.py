"""Kept queued counts (`gateway.store.queue_counts`) against a settle in another thread.

Store calls run in worker threads: a background settle (`SqliteOutbox._settle_later`) commits
while the uploader's `streams` and `claim` read. A reader's queue counts come from its
SQLite snapshot, the recorded deliveries it subtracts from memory: the two must describe
the same moment, or a stream looks shorter (hidden at 0) and a batch's `remaining` is wrong
(Junction's `is_final_chunk` for a historical pull, `sync.uploader`). Each test stops one
thread at the exact point of the race (a real thread, a real file) and checks what the
other sees against a plain count.
"""

import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from drivers.readings import ReadingKind
from gateway import reparse
from gateway.store import claims, migrations, open_database
from gateway.store.models import ReadingRow
from gateway.store.outbox import SqliteOutbox
from sync.outbox import Stage
from tests.gateway.store.conftest import ZONE, commits_failing
from tests.sync.factories import T0, blood_pressure, glucose, item

GLUCOSE = ReadingKind.GLUCOSE
LEASE = T0 + timedelta(minutes=5)


def _in_thread(fn: Callable[[], Any]) -> Any:
    """`fn` run in another real thread (as `gateway.store.aio` runs store calls)."""
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(fn()))
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive()
    return result[0]


async def _backlog(
    db, *, queued: int, delivered: int, stage: Stage = Stage.HISTORICAL
) -> SqliteOutbox:
    """A backlog (one group) of `queued` items, `delivered` of them 2xx'd, not settled."""
    outbox = SqliteOutbox(db, zone=ZONE)
    await outbox.enqueue([item(glucose(n), stage=stage) for n in range(queued)])
    assert [s.queued for s in await outbox.streams(T0)] == [queued]  # counted and kept
    batch = await outbox.claim("user-a", GLUCOSE, limit=delivered, now=T0, lease_until=LEASE)
    assert batch is not None
    await outbox.complete(batch.claim_id, [i.id for i in batch.items], T0)
    return outbox


def _after_commit(db, monkeypatch, then: Callable[[], None]) -> None:
    """Run `then` right after the next write transaction commits (nothing else done yet)."""
    real = db.write

    @contextmanager
    def write(**kwargs: Any) -> Iterator[Any]:
        with real(**kwargs) as session:
            yield session
        monkeypatch.setattr(db, "write", real)
        then()

    monkeypatch.setattr(db, "write", write)


@pytest.mark.parametrize("stage", [Stage.HISTORICAL, Stage.DAILY], ids=str)
async def test_a_look_right_after_a_settle_commits_hides_nothing(db, monkeypatch, stage):
    """Snapshot after the settle's commit, recorded counts before it subtracts them."""
    outbox = await _backlog(db, queued=8, delivered=4, stage=stage)
    status = SqliteOutbox(db, zone=ZONE, maintain=False)  # writes nothing of its own
    seen: dict[str, Any] = {}

    def look() -> None:
        seen["streams"] = _in_thread(lambda: status._streams(T0))
        seen["batch"] = _in_thread(
            lambda: outbox._claim("user-a", GLUCOSE, limit=1, now=T0, lease_until=LEASE)
        )

    _after_commit(db, monkeypatch, look)
    assert outbox.settle_sync() == 4
    historical = 4 if stage is Stage.HISTORICAL else 0
    assert [(s.queued, s.historical) for s in seen["streams"]] == [(4, historical)]
    assert seen["batch"].remaining == 3  # not 0: that would be is_final_chunk with 3 to go


@pytest.mark.parametrize("stage", [Stage.HISTORICAL, Stage.DAILY], ids=str)
async def test_a_claim_whose_snapshot_predates_a_settle_counts_its_remaining_right(
    db, monkeypatch, stage
):
    """Snapshot before the settle's commit, recorded counts after it subtracted them."""
    outbox = await _backlog(db, queued=5, delivered=4, stage=stage)
    queue = claims.claims_of(db.path).queue
    real = queue.read

    def read(cur: sqlite3.Cursor) -> Any:
        counts = real(cur)  # this snapshot began before the settle below
        monkeypatch.setattr(queue, "read", real)
        assert _in_thread(outbox.settle_sync) == 4
        return counts

    monkeypatch.setattr(queue, "read", read)
    batch = await outbox.claim("user-a", GLUCOSE, limit=10, now=T0, lease_until=LEASE)
    assert batch is not None
    assert len(batch.items) == 1
    assert batch.remaining == 0  # the last one: is_final_chunk, or the pull never ends


async def test_a_settle_whose_commit_fails_changes_no_count(db):
    """A full disk at the settle's commit: counts and rows stay as they were, also once
    other writers have moved the queue's version past the one the settle would have made."""
    outbox = await _backlog(db, queued=6, delivered=2)
    status = SqliteOutbox(db, zone=ZONE, maintain=False)
    before = await status.streams(T0)
    assert [s.queued for s in before] == [4]
    with commits_failing(db), pytest.raises(sqlite3.OperationalError):
        outbox.settle_sync()
    with sqlite3.connect(db.path) as conn:  # moves the epoch by 6: no count changes
        conn.execute("UPDATE outbox_item SET state = state")
    assert await status.streams(T0) == before
    assert outbox.settle_sync() == 2
    assert [s.queued for s in await status.streams(T0)] == [4]


def test_every_column_the_counts_group_by_moves_the_epoch(db):
    """A later migration that rebuilds outbox_item drops its triggers: caught here."""
    with sqlite3.connect(db.path) as conn:
        triggers = dict(
            conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
                " AND tbl_name = 'outbox_item'"
            ).fetchall()
        )
    assert migrations.LATEST_VERSION >= 14
    update = triggers["tr_outbox_epoch_update"]
    for column in (
        "state",
        "user_id",
        "resource",
        "provider",
        "stage",
        "window_start",
        "window_end",
    ):
        assert column in update
    assert "AFTER DELETE ON outbox_item" in triggers["tr_outbox_epoch_delete"]


@pytest.mark.parametrize("stage", [Stage.HISTORICAL, Stage.DAILY], ids=str)
async def test_two_settles_at_once_lose_no_recorded_delivery(db, monkeypatch, stage):
    """The uploader's idle settle (`streams`) starts while a background one is between its
    commit and its bookkeeping, and 2xx keep coming: each delivery is subtracted once."""
    outbox = await _backlog(db, queued=12, delivered=4, stage=stage)

    def deliver(count: int) -> None:
        batch = outbox._claim("user-a", GLUCOSE, limit=count, now=T0, lease_until=LEASE)
        assert batch is not None
        outbox._complete(batch.claim_id, [i.id for i in batch.items], T0)

    second = threading.Thread(target=outbox.settle_sync)

    def first_committed() -> None:
        _in_thread(lambda: deliver(2))
        # The second settle's own commit is followed by three more 2xx.
        _after_commit(db, monkeypatch, lambda: _in_thread(lambda: deliver(3)))
        second.start()
        second.join(timeout=0.5)  # done at once, or waiting for the first to finish

    _after_commit(db, monkeypatch, first_committed)
    assert outbox.settle_sync() == 4
    second.join(timeout=30)
    assert not second.is_alive()
    # 12 queued: 4 + 2 settled, 3 recorded and not settled, 3 to send.
    status = SqliteOutbox(db, zone=ZONE, maintain=False)
    assert [s.queued for s in await status.streams(T0)] == [3]
    batch = await outbox.claim("user-a", GLUCOSE, limit=10, now=T0, lease_until=LEASE)
    assert batch is not None
    assert (len(batch.items), batch.remaining) == (3, 0)


async def test_a_2xx_through_another_database_object_during_a_settle_is_kept(db, monkeypatch):
    """Two `Database` objects over one file in one process share the outbox's memory but
    not the in-process write lock: a settle's snapshot of the recorded deliveries must be
    taken under SQLite's write lock, or a 2xx recorded just before it is settled and still
    counted as recorded (a stream looks shorter, a batch's `remaining` too small)."""
    outbox = await _backlog(db, queued=8, delivered=2)
    other_db = open_database(db.path)
    other = SqliteOutbox(other_db, zone=ZONE)
    batch = await other.claim("user-a", GLUCOSE, limit=3, now=T0, lease_until=LEASE)
    assert batch is not None
    recorded = claims.claims_of(db.path).recorded
    real = recorded.snapshot
    late = threading.Thread(
        target=lambda: other._complete(batch.claim_id, [i.id for i in batch.items], T0)
    )

    def snapshot() -> Any:
        monkeypatch.setattr(recorded, "snapshot", real)
        taken = real()
        late.start()
        late.join(timeout=0.5)  # done at once, or waiting for SQLite's write lock
        return taken

    monkeypatch.setattr(recorded, "snapshot", snapshot)
    outbox.settle_sync()
    late.join(timeout=30)
    assert not late.is_alive()
    status = SqliteOutbox(db, zone=ZONE, maintain=False)
    assert [s.queued for s in await status.streams(T0)] == [3]  # 8 - 2 - 3 delivered
    other_db.close()


async def test_an_enqueue_rolled_back_leaves_no_count_behind(db):
    """Its pk is taken again by the next insert (the AUTOINCREMENT sequence rolls back
    too), so counts that had followed the insert before its commit would match the next
    version (a guard for following enqueues as settles are followed)."""
    outbox = SqliteOutbox(db, zone=ZONE)
    await outbox.enqueue([item(glucose(1))])
    assert [(s.resource, s.queued) for s in await outbox.streams(T0)] == [(GLUCOSE, 1)]
    with commits_failing(db), pytest.raises(sqlite3.OperationalError):
        await outbox.enqueue([item(glucose(2))])
    await outbox.enqueue([item(blood_pressure(3))])  # the same pk, another stream
    assert [(s.resource.value, s.queued) for s in await outbox.streams(T0)] == [
        ("blood_pressure", 1),
        ("glucose", 1),
    ]


@pytest.mark.parametrize("outside", [False, True], ids=["alone", "with-another-writer"])
async def test_a_drain_with_settles_and_looks_in_other_threads_counts_exactly(db, outside):
    """Free-running threads, no hooks: the uploader claims and completes one daily group
    (whose `remaining` comes from the counts in memory) batch by batch; a settle loop and a
    reader (`edge-gateway status`-like) run beside it, the interpreter switching threads
    every 10 µs. Each batch's `remaining` is exact, and no look shows more than is left or
    less than the 2xx allow. With another
    writer (`edge-gateway reparse`, say: plain SQL on its own connection) moving another
    user's rows in and out of the queue all along, so versions move between a settle's
    commit and its bookkeeping."""
    total, size = 240, 4
    outbox = SqliteOutbox(db, zone=ZONE)
    await outbox.enqueue([item(glucose(n)) for n in range(total)])
    await outbox.enqueue([item(glucose(1000 + n), user_id="user-b") for n in range(4)])
    status = SqliteOutbox(db, zone=ZONE, maintain=False)
    done = threading.Event()
    completed = started = 0  # 2xx recorded; 2xx begun
    wrong: list[str] = []

    def settle() -> None:
        while not done.is_set():
            outbox.settle_sync()

    def look() -> None:
        while not done.is_set():
            high = total - completed  # read before the look: 2xx only take away
            seen = sum(s.queued for s in status._streams(T0) if s.user_id == "user-a")
            low = total - started  # read after it
            if not low <= seen <= high:
                wrong.append(f"look: {seen} not in [{low}, {high}]")

    def write_outside() -> None:
        with sqlite3.connect(db.path, timeout=30, isolation_level=None) as conn:
            while not done.is_set():
                conn.execute(
                    "UPDATE outbox_item SET state = CASE state WHEN 'queued' THEN 'dead'"
                    " ELSE 'queued' END WHERE user_id = 'user-b'"
                    " AND pk = (SELECT pk FROM outbox_item WHERE user_id = 'user-b'"
                    " ORDER BY random() LIMIT 1)"
                )
                time.sleep(0.001)  # a writer among others, not one that starves them

    threads = [threading.Thread(target=settle), threading.Thread(target=look)]
    if outside:
        threads.append(threading.Thread(target=write_outside))
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        for t in threads:
            t.start()
        while completed < total:
            batch = outbox._claim("user-a", GLUCOSE, limit=size, now=T0, lease_until=LEASE)
            assert batch is not None
            left = total - completed - len(batch.items)
            if batch.remaining != left:
                wrong.append(f"remaining {batch.remaining} != {left}")
            started += len(batch.items)
            outbox._complete(batch.claim_id, [i.id for i in batch.items], T0)
            completed += len(batch.items)
    finally:
        done.set()
        for t in threads:
            t.join(timeout=30)
        sys.setswitchinterval(switch)
    assert wrong == []
    outbox.settle_sync()
    assert "user-a" not in {s.user_id for s in await status.streams(T0)}


async def test_a_reparse_that_queues_a_recorded_delivery_again_leaves_remaining_exact(db):
    """`edge-gateway reparse` (another process, its own connection) corrects a reading
    whose 2xx is recorded but not settled: it settles that delivery and queues the
    corrected reading again. This process still counts the delivery as recorded."""
    outbox = SqliteOutbox(db, zone=ZONE)
    await outbox.enqueue([item(glucose(n), stage=Stage.HISTORICAL) for n in range(6)])
    batch = await outbox.claim("user-a", GLUCOSE, limit=2, now=T0, lease_until=LEASE)
    assert batch is not None
    await outbox.complete(batch.claim_id, [i.id for i in batch.items], T0)
    other = open_database(db.path)
    with other.write() as session:
        row = session.exec(select(ReadingRow).where(ReadingRow.id == batch.items[0].id)).one()
        reparse._requeue(session, row, T0)
    other.close()
    # Due: the 4 never sent and the corrected one; one 2xx recorded.
    batch = await outbox.claim("user-a", GLUCOSE, limit=4, now=T0, lease_until=LEASE)
    assert batch is not None
    assert (len(batch.items), batch.remaining) == (4, 1)  # not 0: is_final_chunk, 1 to go


async def test_a_reparse_that_queues_a_recorded_backfill_item_again_keeps_the_head(db):
    """The head of a stream whose only historical item was 2xx'd, then queued again by a
    reparse (another process) before this one settled: historical, as stored (the stage
    gate, `sync.priority`), though the counts in memory still count it as recorded."""
    outbox = SqliteOutbox(db, zone=ZONE)
    backfill = item(glucose(0), stage=Stage.HISTORICAL, enqueued_at=T0 - timedelta(hours=2))
    daily = [item(glucose(n), enqueued_at=T0 - timedelta(hours=1)) for n in range(1, 4)]
    await outbox.enqueue([backfill, *daily])
    batch = await outbox.claim("user-a", GLUCOSE, limit=5, now=T0, lease_until=LEASE)
    assert batch is not None
    assert [i.id for i in batch.items] == [backfill.id]
    await outbox.complete(batch.claim_id, [backfill.id], T0)
    other = open_database(db.path)
    with other.write() as session:
        row = session.exec(select(ReadingRow).where(ReadingRow.id == backfill.id)).one()
        reparse._requeue(session, row, T0 - timedelta(hours=3))
    other.close()
    [stream] = await SqliteOutbox(db, zone=ZONE, maintain=False).streams(T0)
    assert stream.head is Stage.HISTORICAL
