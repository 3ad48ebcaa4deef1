"""`gateway.store.delivery.settle_recorded`: recorded 2xx become delivered rows and readings,
in the caller's transaction, with what moved per stream and group."""

import sqlite3
from collections import Counter

import pytest

from gateway.store import users
from gateway.store.delivery import settle_recorded
from gateway.store.readings import ReadingState, get_reading, save_transfer
from tests.gateway.store.conftest import ZONE, commits_failing
from tests.sync.factories import T0, glucose

METER = "C0:FF:EE:00:00:01"
DELIVERED_AT = "2026-11-20T12:00:05.000000+00:00"


def _record(db, *readings) -> None:
    with sqlite3.connect(db.path) as conn:  # what `complete` writes for a 2xx
        conn.executemany(
            "INSERT INTO outbox_delivery (reading_id, delivered_at) VALUES (?, ?)",
            [(r.id, DELIVERED_AT) for r in readings],
        )


def _rows(db, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db.path) as conn:
        return conn.execute(sql).fetchall()


def _stored(db):
    users.bind(db, METER, "user-a")
    readings = [glucose(n) for n in range(1, 4)]
    save_transfer(db, readings, zone=ZONE, now=T0)
    return readings


def test_every_recorded_delivery_is_settled_and_waits_for_the_change_order(db):
    first, second, third = _stored(db)
    _record(db, first, third)
    with db.write() as session:
        moved = settle_recorded(session)
    [(group, count)] = moved.items()
    assert group[0] == ("user-a", "glucose")
    assert count == 2
    assert dict(_rows(db, "SELECT reading_id, state FROM outbox_item")) == {
        first.id: "delivered",
        second.id: "queued",
        third.id: "delivered",
    }
    assert _rows(db, "SELECT DISTINCT delivered_at FROM outbox_item WHERE state = 'delivered'") == [
        (DELIVERED_AT,)  # the 2xx's time, not the settle's
    ]
    assert get_reading(db, first.id).state is ReadingState.DELIVERED
    assert get_reading(db, second.id).state is ReadingState.QUEUED
    assert _rows(db, "SELECT reading_id FROM change_catch_up ORDER BY pk") == [
        (first.id,),
        (third.id,),
    ]
    assert _rows(db, "SELECT count(*) FROM outbox_delivery") == [(0,)]


def test_only_the_given_readings_are_settled(db):
    first, second, _ = _stored(db)
    _record(db, first, second)
    with db.write() as session:
        moved = settle_recorded(session, [second.id])
    assert sum(moved.values()) == 1
    assert get_reading(db, first.id).state is ReadingState.QUEUED
    assert get_reading(db, second.id).state is ReadingState.DELIVERED
    assert _rows(db, "SELECT reading_id FROM outbox_delivery") == [(first.id,)]


def test_a_row_no_longer_queued_is_left_alone_and_its_record_goes(db):
    first, *_ = _stored(db)
    _record(db, first)
    with sqlite3.connect(db.path) as conn:  # dead-lettered since (another claim's 4xx)
        conn.execute("UPDATE outbox_item SET state = 'dead' WHERE reading_id = ?", (first.id,))
    with db.write() as session:
        assert settle_recorded(session) == Counter()
    assert _rows(
        db, "SELECT state FROM outbox_item WHERE reading_id = ?".replace("?", f"'{first.id}'")
    ) == [("dead",)]
    assert _rows(db, "SELECT count(*) FROM outbox_delivery") == [(0,)]
    assert _rows(db, "SELECT count(*) FROM change_catch_up") == [(0,)]


def test_a_failed_transaction_settles_nothing(db):
    first, *_ = _stored(db)
    _record(db, first)
    with commits_failing(db), pytest.raises(sqlite3.OperationalError), db.write() as session:
        settle_recorded(session)
    assert get_reading(db, first.id).state is ReadingState.QUEUED
    assert _rows(db, "SELECT reading_id FROM outbox_delivery") == [(first.id,)]
