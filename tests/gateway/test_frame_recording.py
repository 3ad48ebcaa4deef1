"""Every GATT frame stored with the readings it gave (real Bleak against the simulated BlueZ)."""

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from drivers.bleak_link import BleakRadio
from drivers.devices.base import Advertisement
from drivers.devices.registry import default_registry
from drivers.gatt import uuids
from drivers.recording import Direction
from gateway.collector import Collector, DeviceState
from gateway.store import DATABASE_FILENAME, Database, open_database
from gateway.store.frames import list_transfers, load_frames
from tests.drivers.simulator.scenarios import CUFF, METER, cuff, meter

ZONE = ZoneInfo("UTC")


def _collector(db: Database, *, record: bool = True) -> Collector:
    return Collector(
        db=db,
        registry=default_registry(),
        radio=BleakRadio(attempts=1),
        zone=ZONE,
        record_frames=record,
    )


async def _read(collector: Collector, advert: Advertisement) -> None:
    claim = collector.registry.match(advert)
    assert claim is not None
    state = DeviceState(claim, advert, datetime.now(UTC))
    await collector.read_once(claim.driver, claim.match, state)


def _rows(db: Database, sql: str) -> list[tuple]:
    with sqlite3.connect(db.path) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def db(tmp_path: Path):
    database = open_database(tmp_path / DATABASE_FILENAME)
    yield database
    database.close()


METER_ADVERT = Advertisement(METER, "meter+00012345", service_uuids=(uuids.GLUCOSE_SERVICE,))
CUFF_ADVERT = Advertisement(
    CUFF, "BLEsmart_00000116", service_uuids=(uuids.BLOOD_PRESSURE_SERVICE,)
)


@pytest.mark.parametrize("scenario", [meter(5)])
async def test_a_meter_transfer_stores_its_frames_with_its_readings(simulator, db):
    collector = _collector(db)
    await _read(collector, METER_ADVERT)

    (transfer,) = list_transfers(db)
    assert transfer.header.device == METER
    assert transfer.header.driver == "sig_glucose"
    assert transfer.header.driver_version.endswith("/1")
    assert transfer.header.context["match"]["provider"] == "accuchek_ble"
    assert "2a18" in transfer.header.context["shape"]["services"]["1808"]
    frames = load_frames(db, transfer.pk)
    assert [f.seq for f in frames] == list(range(len(frames)))
    measurements = [
        f
        for f in frames
        if f.direction is Direction.NOTIFY and f.characteristic == uuids.GLUCOSE_MEASUREMENT
    ]
    assert len(measurements) == 5
    # The RACP request the gateway wrote is there, before the records it asked for.
    racp = [
        f
        for f in frames
        if f.direction is Direction.WRITE and f.characteristic == uuids.RECORD_ACCESS_CONTROL_POINT
    ]
    assert racp
    assert racp[-1].seq < measurements[0].seq
    assert all(f.at.tzinfo is not None for f in frames)
    assert {f.connection_id for f in [transfer.header]} == {transfer.header.connection_id}
    # Every reading names the transfer whose frames it came from.
    assert _rows(db, "SELECT DISTINCT transfer_pk FROM reading") == [(transfer.pk,)]

    # A poll with nothing new derives nothing and sends no data: no transfer is kept.
    await _read(collector, METER_ADVERT)
    assert len(list_transfers(db)) == 1


@pytest.mark.parametrize("scenario", [cuff()])
async def test_a_cuff_stream_stores_each_indication_and_the_hang_up(simulator, db):
    await _read(_collector(db), CUFF_ADVERT)
    (transfer,) = list_transfers(db)
    frames = load_frames(db, transfer.pk)
    indications = [
        f
        for f in frames
        if f.direction is Direction.NOTIFY and f.characteristic == uuids.BLOOD_PRESSURE_MEASUREMENT
    ]
    assert len(indications) == 3
    assert frames[0].direction in (Direction.READ, Direction.SUBSCRIBE)
    readings = _rows(db, "SELECT count(*), count(DISTINCT transfer_pk) FROM reading")
    assert readings == [(3, 1)]


@pytest.mark.parametrize("scenario", [meter(3)])
async def test_recording_can_be_switched_off(simulator, db):
    await _read(_collector(db, record=False), METER_ADVERT)
    assert list_transfers(db) == []
    assert _rows(db, "SELECT count(*), count(transfer_pk) FROM reading") == [(3, 0)]
