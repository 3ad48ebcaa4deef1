"""Kept queued counts (`gateway.store.queue_counts`): followed through settles, counted again
after any other change by any writer, never those of another file at the same path."""

import random
import shutil
import sqlite3
from collections import Counter
from datetime import timedelta

import pytest

from drivers.readings import ReadingKind
from gateway.store import claims, open_database
from gateway.store.outbox import SqliteOutbox
from gateway.store.queue_counts import GROUP_COUNTS_SQL
from gateway.store.types import utc_text
from sync.outbox import Stage
from tests.gateway.store.conftest import ZONE
from tests.sync.factories import T0, blood_pressure, glucose, item

GLUCOSE = ReadingKind.GLUCOSE
LEASE = T0 + timedelta(minutes=5)


def _truth(path) -> dict[tuple[str, str], tuple[int, int]]:
    """Per stream: queued items, and how many are historical, counted by a plain query."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT user_id, resource, count(*), sum(stage = 'historical') FROM outbox_item"
            " WHERE state = 'queued' AND reading_id NOT IN (SELECT reading_id FROM outbox_delivery)"
            " GROUP BY 1, 2"
        ).fetchall()
    return {(u, r): (n, h) for u, r, n, h in rows}


def _in_group(path, one) -> int:
    """Queued, unrecorded items of `one`'s stream and group."""
    start = None if one.window_start is None else utc_text(one.window_start)
    end = None if one.window_end is None else utc_text(one.window_end)
    with sqlite3.connect(path) as conn:
        return int(
            conn.execute(
                "SELECT count(*) FROM outbox_item WHERE state = 'queued' AND user_id = ?"
                " AND resource = ? AND provider = ? AND stage = ? AND window_start IS ?"
                " AND window_end IS ?"
                " AND reading_id NOT IN (SELECT reading_id FROM outbox_delivery)",
                (one.user_id, one.reading.kind.value, one.provider, one.stage.value, start, end),
            ).fetchone()[0]
        )


async def _seen(outbox) -> dict[tuple[str, str], tuple[int, int]]:
    return {
        (s.user_id, s.resource.value): (s.queued, s.historical) for s in await outbox.streams(T0)
    }


def _counted(path, queue) -> list[str]:
    """The statements `queue.read` runs on a fresh connection (to see whether it counts)."""
    statements: list[str] = []
    with sqlite3.connect(path) as conn:
        conn.set_trace_callback(statements.append)
        queue.read(conn.cursor())
    return [s for s in statements if s == GROUP_COUNTS_SQL]


async def test_a_settle_is_followed_without_counting_the_queue_again(db):
    outbox = SqliteOutbox(db, zone=ZONE)
    await outbox.enqueue([item(glucose(n)) for n in range(5)])
    assert await _seen(outbox) == {("user-a", "glucose"): (5, 0)}
    batch = await outbox.claim("user-a", GLUCOSE, limit=3, now=T0, lease_until=LEASE)
    assert batch is not None
    assert batch.remaining == 2
    await outbox.complete(batch.claim_id, [i.id for i in batch.items], T0)
    assert outbox.settle_sync() == 3
    queue = claims.claims_of(db.path).queue
    assert _counted(db.path, queue) == []  # followed: no count of the queue
    assert await _seen(outbox) == _truth(db.path) == {("user-a", "glucose"): (2, 0)}


async def test_a_new_item_is_counted(db):
    outbox = SqliteOutbox(db, zone=ZONE)
    await outbox.enqueue([item(glucose(1))])
    assert await _seen(outbox) == {("user-a", "glucose"): (1, 0)}
    other = SqliteOutbox(open_database(db.path), zone=ZONE)  # e.g. the saver's connection
    await other.enqueue([item(blood_pressure(2), stage=Stage.HISTORICAL)])
    assert await _seen(outbox) == _truth(db.path)
    assert _truth(db.path) == {("user-a", "glucose"): (1, 0), ("user-a", "blood_pressure"): (1, 1)}


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE outbox_item SET state = 'dead' WHERE pk = 5",  # a dead letter
        "UPDATE outbox_item SET state = 'withdrawn' WHERE pk = 2",  # a reparse
        "UPDATE outbox_item SET state = 'queued' WHERE state = 'delivered'",  # requeued
        "UPDATE outbox_item SET stage = 'historical', window_start = 'a' WHERE pk = 3",
        "UPDATE outbox_item SET user_id = 'user-b' WHERE pk = 3",
        "DELETE FROM outbox_item WHERE pk = 4",
        # A replace deletes without the delete trigger (recursive_triggers is off), but its
        # row takes a new pk (AUTOINCREMENT).
        "INSERT OR REPLACE INTO outbox_item"
        " (reading_id, user_id, resource, provider, stage, enqueued_at, state)"
        " SELECT reading_id, 'user-b', resource, provider, stage, enqueued_at, state"
        " FROM outbox_item WHERE pk = 3",
    ],
)
async def test_any_other_change_by_another_process_is_counted_again(db, change):
    outbox = SqliteOutbox(db, zone=ZONE)
    await outbox.enqueue([item(glucose(n)) for n in range(5)])
    batch = await outbox.claim("user-a", GLUCOSE, limit=1, now=T0, lease_until=LEASE)
    assert batch is not None
    await outbox.complete(batch.claim_id, [i.id for i in batch.items], T0)
    outbox.settle_sync()
    before = await _seen(outbox)
    with sqlite3.connect(db.path) as conn:  # `edge-gateway reparse`, say: plain SQL
        conn.execute("PRAGMA foreign_keys = OFF")
        assert conn.execute(change).rowcount >= 1
    assert await _seen(outbox) == _truth(db.path) != before


async def test_a_new_file_at_the_same_path_is_not_taken_for_the_old_one(db_path):
    first = open_database(db_path)
    outbox = SqliteOutbox(first, zone=ZONE)
    await outbox.enqueue([item(glucose(1)), item(glucose(2))])
    assert await _seen(outbox) == {("user-a", "glucose"): (2, 0)}
    first.close()
    for leftover in db_path.parent.glob(db_path.name + "*"):
        leftover.unlink()  # restored from elsewhere, or deleted and begun again
    second = open_database(db_path)  # same path, same in-memory state, same max(pk)
    outbox = SqliteOutbox(second, zone=ZONE)
    await outbox.enqueue([item(glucose(3)), item(blood_pressure(4))])
    assert await _seen(outbox) == _truth(db_path)
    second.close()


async def test_counts_and_remaining_stay_true_through_random_work(db):
    """Enqueues, claims, 2xx, retries, dead letters, settles and outside writes, in a random
    order: what `streams` and `claim` say always matches a plain count."""
    rng = random.Random(18)
    outbox = SqliteOutbox(db, zone=ZONE)
    made = 0
    for step in range(120):
        op = rng.choice(["enqueue", "deliver", "retry", "dead", "settle", "outside", "look"])
        if op == "enqueue":
            stage = rng.choice([Stage.DAILY, Stage.HISTORICAL])
            reads = [rng.choice([glucose, blood_pressure])(made + n) for n in range(3)]
            made += 3
            user = rng.choice(["user-a", "user-b"])
            await outbox.enqueue([item(r, stage=stage, user_id=user) for r in reads])
        elif op in {"deliver", "retry", "dead"}:
            infos = [s for s in await outbox.streams(T0) if s.due]
            if not infos:
                continue
            s = rng.choice(infos)
            batch = await outbox.claim(
                s.user_id, s.resource, limit=rng.randint(1, 4), now=T0, lease_until=LEASE
            )
            if batch is None:
                continue
            ids = [i.id for i in batch.items]
            group = Counter(
                (i.provider, i.stage, i.window_start, i.window_end) for i in batch.items
            )
            assert len(group) == 1  # one group per batch
            assert batch.remaining == _in_group(db.path, batch.items[0]) - len(ids), (step, op)
            if op == "deliver":
                await outbox.complete(batch.claim_id, ids, T0)
            elif op == "retry":  # due again at once: T0 is "now" throughout
                await outbox.retry_later(batch.claim_id, ids, not_before=T0, error="503")
            else:
                await outbox.dead_letter(
                    batch.claim_id, ids, status_code=400, body="", reason="x", now=T0
                )
        elif op == "settle":
            outbox.settle_sync()
        elif op == "outside":
            with sqlite3.connect(db.path) as conn:
                conn.execute(
                    "UPDATE outbox_item SET state = 'withdrawn' WHERE pk = ? AND state = 'queued'",
                    (rng.randint(1, max(1, made)),),
                )
        assert await _seen(outbox) == _truth(db.path), (step, op)


async def test_a_backup_restored_at_the_same_path_is_counted_again(db_path, tmp_path):
    """The copy has the epoch of the day it was made; the counts followed settles since.
    After as many changes to the copy, the versions would match (in-process reopen)."""
    first = open_database(db_path)
    outbox = SqliteOutbox(first, zone=ZONE)
    await outbox.enqueue(
        [item(glucose(n)) for n in range(5)] + [item(blood_pressure(10 + n)) for n in range(2)]
    )
    await outbox.streams(T0)
    backup = tmp_path / "backup.sqlite3"
    with sqlite3.connect(db_path) as live, sqlite3.connect(backup) as copy:
        live.backup(copy)
    batch = await outbox.claim("user-a", GLUCOSE, limit=2, now=T0, lease_until=LEASE)
    assert batch is not None
    await outbox.complete(batch.claim_id, [i.id for i in batch.items], T0)
    assert outbox.settle_sync() == 2  # followed: the epoch moved by 2
    first.close()
    for leftover in db_path.parent.glob(db_path.name + "*"):
        leftover.unlink()
    shutil.copy(backup, db_path)
    with sqlite3.connect(db_path) as conn:  # two changes: the epoch moves by 2 again
        conn.execute("UPDATE outbox_item SET state = 'dead' WHERE resource = 'blood_pressure'")
    second = open_database(db_path)
    outbox = SqliteOutbox(second, zone=ZONE)
    assert await _seen(outbox) == _truth(db_path) == {("user-a", "glucose"): (5, 0)}
    second.close()
