"""Recorded transfers in the store: same transaction as the readings, retention, privacy."""

import sqlite3
import stat
from datetime import UTC, datetime, timedelta

import pytest

from drivers.recording import Direction, Frame
from gateway.store.errors import StoreError
from gateway.store.frames import (
    FrameBatch,
    TransferHeader,
    frame_count,
    list_transfers,
    load_frames,
    prune_frames,
)
from gateway.store.readings import save_transfer
from gateway.store.retention import prune_delivered
from tests.gateway.store.conftest import ZONE
from tests.sync.factories import glucose

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
GLS = "00002a18-0000-1000-8000-00805f9b34fb"


def _batch(transfer_id: str, started: datetime = T0, frames: int = 2) -> FrameBatch:
    header = TransferHeader(
        id=transfer_id,
        device="C0:FF:EE:00:00:01",
        connection_id="c1",
        driver="sig_glucose",
        driver_version="0.1.0/1",
        started_at=started,
        context={"zone": "UTC"},
    )
    return FrameBatch(
        header,
        [
            Frame(i, Direction.NOTIFY, GLS, bytes([i, 0xFF]), started + timedelta(seconds=i), i)
            for i in range(frames)
        ],
    )


def test_frames_are_stored_with_new_readings_and_read_back_exactly(db):
    result = save_transfer(db, [glucose(1), glucose(2)], zone=ZONE, frames=_batch("t1"))
    (transfer,) = list_transfers(db)
    assert result.transfer_pk == transfer.pk
    frames = load_frames(db, transfer.pk)
    assert frames == list(_batch("t1").frames)
    with sqlite3.connect(db.path) as conn:
        assert conn.execute("SELECT DISTINCT transfer_pk FROM reading").fetchall() == [
            (transfer.pk,)
        ]
        # Stored short: a SIG UUID takes 4 characters, not 36.
        assert conn.execute("SELECT DISTINCT characteristic FROM frame").fetchall() == [("2a18",)]


def test_a_re_read_of_known_readings_stores_no_frames(db):
    save_transfer(db, [glucose(1)], zone=ZONE, frames=_batch("t1"))
    again = save_transfer(db, [glucose(1)], zone=ZONE, frames=_batch("t2"))
    assert again.transfer_pk is None
    assert [t.header.id for t in list_transfers(db)] == ["t1"]


def test_a_reading_the_store_refuses_takes_its_frames_with_it(db):
    naive = glucose(3)
    object.__setattr__(naive, "received_at", naive.received_at.replace(tzinfo=None))
    with pytest.raises(ValueError, match="naive"):
        save_transfer(db, [glucose(1), naive], zone=ZONE, frames=_batch("t1"))
    assert list_transfers(db) == []
    assert frame_count(db) == 0


def test_a_locked_database_saves_neither(db):
    blocker = sqlite3.connect(db.path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError):
            save_transfer(db, [glucose(1)], zone=ZONE, frames=_batch("t1"))
    finally:
        blocker.rollback()
        blocker.close()
    assert frame_count(db) == 0


def test_frames_go_with_their_readings_or_after_their_own_window(db):
    now = T0 + timedelta(days=100)
    save_transfer(db, [glucose(1)], zone=ZONE, frames=_batch("kept"))
    save_transfer(db, [glucose(2)], zone=ZONE, frames=_batch("orphan"))
    with sqlite3.connect(db.path) as conn:  # its reading was delivered and pruned
        conn.execute(
            "UPDATE reading SET state = 'delivered', updated_at = '2026-01-01' WHERE id = ?",
            (glucose(2).id,),
        )
    assert prune_delivered(db, keep_days=90, now=now) == 1
    # The readings' window: only the transfer with no reading left goes.
    assert prune_frames(db, keep_days=90, now=now) == 1
    assert [t.header.id for t in list_transfers(db)] == ["kept"]
    # Its own window: frames go while the reading stays (and forgets the transfer).
    assert prune_frames(db, keep_days=90, frame_days=30, now=now) == 1
    assert list_transfers(db) == []
    assert frame_count(db) == 0
    with sqlite3.connect(db.path) as conn:
        assert conn.execute("SELECT count(*), count(transfer_pk) FROM reading").fetchone() == (1, 0)


def test_frames_live_in_the_private_database_file(db):
    save_transfer(db, [glucose(1)], zone=ZONE, frames=_batch("t1"))
    mode = stat.S_IMODE(db.path.stat().st_mode)
    assert mode & 0o077 == 0, oct(mode)
