"""The collector's promises, with an in-package FakeLink and a scripted driver.

The real-radio path (Bleak against the simulated BlueZ) is covered in test_run_e2e.py.
"""

import asyncio
import contextlib
import dataclasses
import logging
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

import pytest

from drivers.devices.base import (
    Advertisement,
    CollectContext,
    Cursor,
    DeviceMatch,
    Driver,
    Notice,
    NoticeCode,
    Transfer,
)
from drivers.devices.registry import DriverRegistry
from drivers.errors import DisconnectedError
from drivers.link import GattLink
from drivers.readings import DeviceTime, GlucoseReading, GlucoseUnit, ReadingKind, stable_reading_id
from drivers.testing import FakeLink
from gateway.collector import Collector, TransferDone
from gateway.events import EventBus
from gateway.store import DATABASE_FILENAME, open_database
from gateway.store import devices as device_store
from gateway.store import users as user_store

METER = "C0:FF:EE:00:00:01"


def _reading(seq: int) -> GlucoseReading:
    time = DeviceTime(2026, 11, 20, 7, seq % 60, 0)
    return GlucoseReading(
        id=stable_reading_id(METER, ReadingKind.GLUCOSE, sequence=seq, device_time=time),
        device=METER,
        provider="accuchek_ble",
        received_at=datetime.now(UTC),
        device_time=time,
        sequence=seq,
        concentration=0.001,
        unit=GlucoseUnit.KG_PER_L,
    )


class ScriptedDriver(Driver):
    """Claims the meter; each collect returns the next scripted result (or raises it)."""

    name: ClassVar[str] = "scripted"
    kind: ClassVar[ReadingKind] = ReadingKind.GLUCOSE

    def __init__(self, script: list[Transfer | Exception]) -> None:
        self.script = script
        self.cursors: list[Cursor] = []

    def match(self, advertisement: Advertisement) -> DeviceMatch | None:
        if advertisement.address != METER:
            return None
        return DeviceMatch("scripted", ReadingKind.GLUCOSE, "Accu-Chek", "accuchek_ble")

    async def collect(self, link: GattLink, cursor: Cursor, context: CollectContext) -> Transfer:
        self.cursors.append(cursor)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


class FakeRadio:
    """Connects to FakeLinks; records what the database held when each link was closed."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.rows_at_disconnect: list[int] = []
        self.adverts: asyncio.Queue[Advertisement] = asyncio.Queue()

    @contextlib.asynccontextmanager
    async def advertisements(self) -> AsyncIterator[AsyncIterator[Advertisement]]:
        async def stream() -> AsyncIterator[Advertisement]:
            while True:
                yield await self.adverts.get()

        yield stream()

    async def release_stale(self, addresses) -> list[str]:
        return []

    @contextlib.asynccontextmanager
    async def connect(self, advertisement: Advertisement) -> AsyncIterator[GattLink]:
        link = FakeLink(advertisement.address)
        try:
            yield link
        finally:
            # A separate connection sees only what was committed.
            with sqlite3.connect(self.db_path) as conn:
                count = conn.execute("select count(*) from reading").fetchone()[0]
            self.rows_at_disconnect.append(count)
            await link.disconnect()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / DATABASE_FILENAME


def _collector(db_path: Path, driver: ScriptedDriver, radio: FakeRadio, **kw: object) -> Collector:
    db = open_database(db_path)
    return Collector(
        db=db,
        registry=DriverRegistry([driver]),
        radio=radio,
        zone=ZoneInfo("UTC"),
        events=EventBus(),
        **kw,  # type: ignore[arg-type]
    )


async def test_transfer_is_committed_before_the_link_closes(db_path: Path):
    driver = ScriptedDriver([Transfer(tuple(_reading(i) for i in (1, 2, 3)), Cursor(3))])
    radio = FakeRadio(db_path)
    collector = _collector(db_path, driver, radio)
    collector.on_advertisement(Advertisement(METER, "meter+1"))
    await collector.idle()
    assert radio.rows_at_disconnect == [3]
    stored = device_store.get_device(collector.db, METER)
    assert stored is not None
    assert stored.last_sequence == 3
    assert stored.provider == "accuchek_ble"


async def test_next_read_starts_from_the_stored_cursor_and_is_debounced(db_path: Path):
    first = Transfer((_reading(1),), Cursor(1, "x"))
    second = Transfer((_reading(1), _reading(2)), Cursor(2))
    driver = ScriptedDriver([first, second])
    radio = FakeRadio(db_path)
    collector = _collector(db_path, driver, radio, poll_interval_s=0.05)
    advert = Advertisement(METER, "meter+1")
    collector.on_advertisement(advert)
    collector.on_advertisement(advert)  # already reading: ignored
    await collector.idle()
    collector.on_advertisement(advert)  # too soon: ignored
    assert len(driver.cursors) == 1
    await asyncio.sleep(0.06)
    collector.on_advertisement(advert)
    await collector.idle()
    assert driver.cursors == [Cursor(), Cursor(1, "x")]
    assert radio.rows_at_disconnect == [1, 2]  # the re-read record was not stored twice


async def test_new_readings_are_attributed_and_published(db_path: Path):
    driver = ScriptedDriver([Transfer((_reading(1),), Cursor(1))])
    radio = FakeRadio(db_path)
    collector = _collector(db_path, driver, radio)
    user_store.bind(collector.db, METER, "user-1")
    assert collector.events is not None
    collector.on_advertisement(Advertisement(METER, "meter+1"))
    await collector.idle()
    events, _ = collector.events.since(0)
    created = [e for e in events if e.event_type == "daily.data.glucose.created"]
    assert len(created) == 1
    assert created[0].user_id == "user-1"
    assert created[0].data["reading_ids"] == [_reading(1).id]
    [sample] = created[0].data["data"]
    assert set(sample) == {"timestamp", "timezone_offset", "type", "unit", "value"}


async def test_failing_device_warns_once_until_it_recovers(
    db_path: Path, caplog: pytest.LogCaptureFixture
):
    boom = DisconnectedError(f"{METER}: link dropped; bring the device closer")
    driver = ScriptedDriver([boom, boom, Transfer((_reading(1),), Cursor(1))])
    radio = FakeRadio(db_path)
    collector = _collector(db_path, driver, radio, failure_backoff_s=0.0)
    advert = Advertisement(METER, "meter+1")
    with caplog.at_level(logging.DEBUG, logger="gateway.collector"):
        for _ in range(3):
            collector.on_advertisement(advert)
            await collector.idle()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [w.getMessage() for w in warnings] == [
        str(boom),  # it names the device already: no "ADDR: ADDR: ..."
        f"{METER}: reading again after earlier failures",
    ]
    assert radio.rows_at_disconnect[-1] == 1


async def test_unclaimed_devices_are_ignored(db_path: Path):
    driver = ScriptedDriver([])
    radio = FakeRadio(db_path)
    collector = _collector(db_path, driver, radio)
    collector.on_advertisement(Advertisement("11:22:33:44:55:66", "toothbrush"))
    await collector.idle()
    assert collector.devices == {}
    assert radio.rows_at_disconnect == []


async def test_the_transfer_line_counts_a_reading_set_aside(
    db_path: Path, caplog: pytest.LogCaptureFixture
):
    """A reading the store cannot take (a sequence past SQLite's INTEGER) costs only itself."""
    bad = dataclasses.replace(_reading(2), sequence=2**64)
    driver = ScriptedDriver([Transfer((_reading(1), bad), Cursor(1))])
    radio = FakeRadio(db_path)
    collector = _collector(db_path, driver, radio)
    with caplog.at_level(logging.INFO, logger="gateway"):
        collector.on_advertisement(Advertisement(METER, "meter+1"))
        await collector.idle()
    assert radio.rows_at_disconnect == [1]
    assert "transfer complete: 1 new, 0 known, 1 set aside (cannot be stored)" in caplog.text


async def test_a_notice_a_person_must_act_on_is_logged_once_and_flagged(
    db_path: Path, caplog: pytest.LogCaptureFixture
):
    """A UDS scale with no consent code stored: read every poll, told once, flagged each time."""
    missing = Notice(NoticeCode.CONSENT_MISSING, f"{METER}: store the consent code")
    polls = [Transfer((), Cursor(), notices=(missing,)) for _ in range(2)]
    driver = ScriptedDriver([*polls, Transfer((_reading(1),), Cursor(1))])
    radio = FakeRadio(db_path)
    done: list[TransferDone] = []
    collector = _collector(db_path, driver, radio, poll_interval_s=0.01)
    collector.hooks.on_transfer = done.append
    advert = Advertisement(METER, "meter+1")
    with caplog.at_level(logging.WARNING, logger="gateway.collector"):
        for _ in range(3):
            collector.on_advertisement(advert)
            await collector.idle()
            await asyncio.sleep(0.02)
    assert caplog.text.count("store the consent code") == 1
    assert [d.needs_attention is not None for d in done] == [True, True, False]


class StuckRadio(FakeRadio):
    """A radio whose scan fails on demand and whose connect never completes (BlueZ gone)."""

    def __init__(self, db_path: Path) -> None:
        super().__init__(db_path)
        self.connecting = asyncio.Event()
        self.cancelled = asyncio.Event()

    @contextlib.asynccontextmanager
    async def advertisements(self) -> AsyncIterator[AsyncIterator[Advertisement]]:
        async def stream() -> AsyncIterator[Advertisement]:
            while True:
                advert = await self.adverts.get()
                if advert.address == "GONE":
                    msg = "BlueZ: bluetoothd left the system bus"
                    raise DisconnectedError(msg)
                yield advert

        yield stream()

    @contextlib.asynccontextmanager
    async def connect(self, advertisement: Advertisement) -> AsyncIterator[GattLink]:
        self.connecting.set()
        try:
            await asyncio.Event().wait()  # as Bleak retrying Connect against a gone BlueZ
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        yield FakeLink(advertisement.address)  # pragma: no cover - never connects


async def test_a_failed_scan_cancels_transfers_after_the_short_grace(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """BlueZ gone: `stop` does not give a transfer that cannot progress the full stop grace.

    With the full grace (an hour here) this test would hang until pytest-timeout.
    """
    monkeypatch.setattr("gateway.collector.STOP_GRACE_S", 3600.0)
    monkeypatch.setattr("gateway.collector.RADIO_GONE_GRACE_S", 0.01)
    radio = StuckRadio(db_path)
    collector = _collector(db_path, ScriptedDriver([]), radio)
    run = asyncio.create_task(collector.run())
    radio.adverts.put_nowait(Advertisement(METER, "meter+1"))
    await radio.connecting.wait()
    radio.adverts.put_nowait(Advertisement("GONE", None))
    with pytest.raises(DisconnectedError):
        await run
    await collector.stop()
    assert radio.cancelled.is_set()
    await collector.idle()


async def test_a_failed_scan_leaves_the_stop_grace_of_a_signal_alone(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Stopped by SIGTERM with the radio up, a transfer gets the full grace to finish."""
    monkeypatch.setattr("gateway.collector.STOP_GRACE_S", 0.05)
    monkeypatch.setattr("gateway.collector.RADIO_GONE_GRACE_S", 3600.0)
    radio = StuckRadio(db_path)
    collector = _collector(db_path, ScriptedDriver([]), radio)
    collector.on_advertisement(Advertisement(METER, "meter+1"))
    await radio.connecting.wait()
    await collector.stop()
    assert radio.cancelled.is_set()


class DeafDriver(ScriptedDriver):
    """Hands one reading over, then waits on a link that ignores its first cancellation."""

    def __init__(self) -> None:
        super().__init__([])
        self.release = asyncio.Event()

    async def collect(self, link: GattLink, cursor: Cursor, context: CollectContext) -> Transfer:
        context.sink([_reading(1)])
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await self.release.wait()  # as a D-Bus call whose cleanup waits on a dead peer
            raise
        return Transfer((), cursor)  # pragma: no cover


async def test_a_transfer_that_ignores_its_cancellation_does_not_hold_stop(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    """`stop` returns after CANCEL_WAIT_S, saying so; what the transfer received is kept."""
    monkeypatch.setattr("gateway.collector.STOP_GRACE_S", 0.01)
    monkeypatch.setattr("gateway.collector.CANCEL_WAIT_S", 0.05)
    driver = DeafDriver()
    collector = _collector(db_path, driver, FakeRadio(db_path))
    collector.on_advertisement(Advertisement(METER, "meter+1"))
    while collector.unsaved or not _stored_readings(db_path):
        await asyncio.sleep(0.01)
    with caplog.at_level(logging.WARNING, logger="gateway.collector"):
        await collector.stop()
    assert "1 transfer(s) did not end when cancelled" in caplog.text
    assert _stored_readings(db_path) == 1
    driver.release.set()
    await collector.idle()


def _stored_readings(db_path: Path) -> int:
    with sqlite3.connect(db_path) as conn:
        return int(conn.execute("select count(*) from reading").fetchone()[0])
