"""TransferSaver: readings durable as they arrive; a refused commit is retried, never dropped.

Real SQLite files throughout; the full disk is a real 2 MiB tmpfs (skipped where the machine
cannot mount one).
"""

import asyncio
import contextlib
import dataclasses
import logging
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.readings import DeviceTime, ReadingFlag
from gateway.saver import Finish, TransferSaver
from gateway.store import Database, open_database
from gateway.store.readings import CursorUpdate, list_readings
from gateway.store.spool import import_spool, spool_dir
from tests.gateway.store.conftest import ZONE
from tests.sync.factories import blood_pressure

CUFF = "C0:FF:EE:00:00:02"


def _stored(db: Database) -> list[str]:
    page, _ = list_readings(db, limit=1000)
    return [s.reading.id for s in page]


@contextlib.contextmanager
def _write_lock(path: Path) -> Iterator[None]:
    """Another process's write transaction (an sqlite3 shell, a backup)."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


async def test_each_reading_is_committed_as_it_arrives(tmp_path: Path):
    db = open_database(tmp_path / "gateway.sqlite3")
    saver = TransferSaver(db, ZONE, CUFF)
    first, second = blood_pressure(1, device=CUFF), blood_pressure(2, device=CUFF)
    saver.add([first])
    assert await saver.wait(5)
    # A separate connection sees it: committed, not merely queued.
    with sqlite3.connect(db.path) as conn:
        assert conn.execute("select count(*) from reading").fetchone()[0] == 1
    saver.add([second])
    assert await saver.finish(Finish(CursorUpdate(CUFF)), timeout_s=5)
    assert saver.totals.result().new == 2
    saver.add([first, second])  # a device that resends: nothing doubled
    assert saver.pending == 0  # taken before: not even a second commit
    assert saver.settled
    assert await saver.wait(5)
    assert sorted(_stored(db)) == sorted([first.id, second.id])
    db.close()


async def test_a_lock_held_past_the_busy_timeout_delays_but_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    path = tmp_path / "gateway.sqlite3"
    db = open_database(path, busy_timeout_s=0.2)
    saver = TransferSaver(db, ZONE, CUFF)
    readings = [blood_pressure(i, device=CUFF) for i in range(1, 21)]
    with caplog.at_level(logging.WARNING), _write_lock(path):
        for reading in readings:
            saver.add([reading])
        assert not await saver.finish(Finish(CursorUpdate(CUFF)), timeout_s=1.5)
        assert saver.pending == 20
    assert "not saved yet" in caplog.text
    assert "database is locked" in caplog.text
    assert "keep the gateway running" in caplog.text  # the truth: the device may have erased
    assert await saver.wait(10)
    assert sorted(_stored(db)) == sorted(r.id for r in readings)
    db.close()


async def test_a_record_whose_time_cannot_be_placed_is_stored_flagged_beside_the_good_one(
    tmp_path: Path,
):
    """Zone Europe/Berlin, a cuff record dated 0001-01-01T00:30: before UTC's year 1."""
    db = open_database(tmp_path / "gateway.sqlite3")
    saver = TransferSaver(db, ZONE, CUFF)
    good = blood_pressure(1, device=CUFF)
    bad = dataclasses.replace(
        blood_pressure(2, device=CUFF), device_time=DeviceTime(1, 1, 1, 0, 30, 0)
    )
    far = dataclasses.replace(
        blood_pressure(3, device=CUFF), device_time=DeviceTime(9999, 12, 31, 23, 59, 0, 60)
    )
    saver.add([good, bad, far])
    assert await saver.finish(Finish(CursorUpdate(CUFF)), timeout_s=5)
    page, _ = list_readings(db, limit=10)
    by_id = {s.reading.id: s for s in page}
    assert set(by_id) == {good.id, bad.id, far.id}
    assert ReadingFlag.NO_DEVICE_TIME not in by_id[good.id].reading.flags
    for odd in (bad, far):
        stored = by_id[odd.id]
        assert ReadingFlag.NO_DEVICE_TIME in stored.reading.flags
        assert stored.start_date == odd.received_at  # the receive time stands in
        assert stored.reading.device_time == odd.device_time  # raw fields kept
    db.close()


async def test_stopping_while_the_store_refuses_spools_and_the_next_start_saves(tmp_path: Path):
    path = tmp_path / "gateway.sqlite3"
    db = open_database(path, busy_timeout_s=0.1)
    saver = TransferSaver(db, ZONE, CUFF)
    readings = [blood_pressure(i, device=CUFF) for i in range(1, 6)]
    with _write_lock(path):
        saver.add(readings)
        assert not await saver.wait(0.5)
        saver.spool()  # the process is stopping
    files = list(spool_dir(db).iterdir())
    assert len(files) == 1
    assert files[0].stat().st_mode & 0o777 == 0o600  # health data
    assert _stored(db) == []
    # The next start.
    assert import_spool(db, zone=ZONE) == 5
    assert sorted(_stored(db)) == sorted(r.id for r in readings)
    assert list(spool_dir(db).iterdir()) == []
    db.close()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB filesystem (tmpfs) that the test can fill."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(directory: Path) -> Path:
    filler = directory / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as out:
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    return filler


async def test_a_full_disk_delays_the_commit_and_loses_nothing(
    tiny_disk: Path, caplog: pytest.LogCaptureFixture
):
    db = open_database(tiny_disk / "gateway.sqlite3")
    saver = TransferSaver(db, ZONE, CUFF)
    readings = [blood_pressure(i, device=CUFF) for i in range(1, 21)]
    filler = _fill(tiny_disk)
    with caplog.at_level(logging.WARNING):
        saver.add(readings)
        assert not await saver.finish(Finish(CursorUpdate(CUFF)), timeout_s=1.5)
    assert "storage failed" in caplog.text
    assert "keeps its records" not in caplog.text  # a cuff that erased does not
    filler.unlink()  # someone frees space
    assert await saver.wait(15)
    assert sorted(_stored(db)) == sorted(r.id for r in readings)
    db.close()


async def test_wait_reports_progress_while_commits_keep_failing(tmp_path: Path):
    path = tmp_path / "gateway.sqlite3"
    db = open_database(path, busy_timeout_s=0.05)
    saver = TransferSaver(db, ZONE, CUFF)
    with _write_lock(path):
        saver.add([blood_pressure(1, device=CUFF)])
        await asyncio.sleep(0.3)
        assert saver.pending == 1
        assert not saver.settled
    assert await saver.wait(10)
    assert saver.settled
    db.close()


async def test_a_reading_the_store_cannot_take_is_set_aside_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """A sequence number past SQLite's 64-bit INTEGER: that reading alone is refused."""
    db = open_database(tmp_path / "gateway.sqlite3")
    saver = TransferSaver(db, ZONE, CUFF)
    good = blood_pressure(1, device=CUFF)
    bad = dataclasses.replace(blood_pressure(2, device=CUFF), sequence=2**64)
    with caplog.at_level(logging.ERROR):
        saver.add([good, bad])
        assert await saver.finish(Finish(CursorUpdate(CUFF)), timeout_s=5)
    assert _stored(db) == [good.id]
    assert saver.totals.rejected == 1
    assert saver.totals.result().new == 1
    assert f"reading {bad.id} cannot be stored" in caplog.text
    db.close()
