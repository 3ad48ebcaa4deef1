"""`gateway.store.save`: one transfer in one transaction, nothing lost, nothing doubled."""

import math
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from drivers.readings import (
    BloodPressureReading,
    BodyReading,
    DeviceTime,
    GlucoseReading,
    GlucoseUnit,
    MassUnit,
    PressureUnit,
    ReadingFlag,
)
from gateway.store import devices, readings, users
from gateway.store.readings import CursorUpdate, ReadingState, list_readings, save_transfer
from tests.gateway.store.conftest import ZONE, count_rows
from tests.sync.factories import T0, blood_pressure, glucose

METER = "C0:FF:EE:00:00:01"


FULL_READINGS = [
    GlucoseReading(
        id="g1",
        device=METER,
        provider="accuchek_ble",
        received_at=datetime(2026, 11, 20, 12, 0, 0, 123456, tzinfo=UTC),
        device_time=DeviceTime(2026, 11, 20, 7, 30, 5, offset_minutes=-15),
        clock_skew_s=-12.5,
        sequence=42,
        user_index=None,
        flags=frozenset({ReadingFlag.HIGH, ReadingFlag.HISTORICAL}),
        concentration=0.1 + 0.2,  # not representable exactly in decimal: must round-trip
        unit=GlucoseUnit.MOL_PER_L,
        sample_type=1,
        sample_location=2,
        sensor_status=0x0400,
        meal=2,
    ),
    GlucoseReading(
        id="g2",
        device=METER,
        provider="accuchek_ble",
        received_at=T0,
        device_time=None,
        flags=frozenset({ReadingFlag.NO_DEVICE_TIME}),
        concentration=0.00104,
        unit=GlucoseUnit.KG_PER_L,
    ),
    BloodPressureReading(
        id="bp1",
        device="C0:FF:EE:00:00:02",
        provider="omron_ble",
        received_at=T0,
        device_time=DeviceTime(0, 4, 17, 20, 41, 59),  # year 0: the cuff did not know the date
        user_index=2,
        systolic=16.0,
        diastolic=10.66,
        mean_arterial=12.3,
        unit=PressureUnit.KPA,
        pulse_bpm=None,
        measurement_status=0b101,
        flags=frozenset({ReadingFlag.BODY_MOVEMENT, ReadingFlag.IRREGULAR_PULSE}),
    ),
    BodyReading(
        id="w1",
        device="C0:FF:EE:00:00:03",
        provider="omron_ble",
        received_at=T0,
        device_time=DeviceTime(2026, 11, 20, 6, 0, 0),
        weight=155.4,
        unit=MassUnit.LB,
        fat_percent=None,
        bmi=22.9,
        height=70.0,
    ),
    BodyReading(
        id="w2",
        device="C0:FF:EE:00:00:03",
        provider="omron_ble",
        received_at=T0,
        weight=None,
        unit=MassUnit.KG,
        fat_percent=math.inf,
    ),
]


def test_readings_round_trip_exactly(db):
    save_transfer(db, FULL_READINGS, zone=ZONE)
    for original in FULL_READINGS:
        stored = readings.get_reading(db, original.id)
        assert stored is not None
        assert stored.reading == original
        assert type(stored.reading) is type(original)
        assert stored.start_date == original.instant(ZONE)
        assert stored.start_date.tzinfo is UTC
        assert stored.time_zone == "Europe/Berlin"


def test_start_date_is_the_device_wall_time_in_the_configured_zone(db):
    reading = glucose(device_time=DeviceTime(2026, 7, 1, 9, 0, 0))
    save_transfer(db, [reading], zone=ZONE)
    stored = readings.get_reading(db, reading.id)
    assert stored is not None
    assert stored.start_date == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)  # CEST = UTC+2


def test_saving_the_same_record_again_changes_nothing(db):
    users.bind(db, METER, "user-a")
    first = [glucose(1), glucose(2)]
    result = save_transfer(db, first, zone=ZONE, now=T0)
    assert (result.new, result.known, result.queued) == (2, 0, 2)
    before = readings.get_reading(db, first[0].id)
    with sqlite3.connect(db.path) as conn:
        snapshot = conn.execute("SELECT * FROM reading ORDER BY pk").fetchall()
        outbox = conn.execute("SELECT * FROM outbox_item ORDER BY pk").fetchall()
    # A re-read: same records, later receive time, and the user re-bound meanwhile.
    users.bind(db, METER, "user-b")
    again = [*first, glucose(3)]
    result = save_transfer(db, again, zone=ZONE, now=T0 + timedelta(hours=1))
    assert (result.new, result.known) == (1, 2)
    with sqlite3.connect(db.path) as conn:
        assert conn.execute("SELECT * FROM reading ORDER BY pk").fetchall()[:2] == snapshot
        assert conn.execute("SELECT * FROM outbox_item ORDER BY pk").fetchall()[:2] == outbox
    assert readings.get_reading(db, first[0].id) == before
    assert count_rows(db, "reading") == 3


def test_duplicates_within_one_transfer_are_saved_once(db):
    reading = glucose(7)
    result = save_transfer(db, [reading, reading, reading], zone=ZONE)
    assert (result.new, result.known) == (1, 0)
    assert count_rows(db, "reading") == 1


def test_a_failure_mid_transfer_leaves_nothing_of_it(db):
    users.bind(db, METER, "user-a")
    good = [glucose(1), glucose(2)]
    naive = GlucoseReading(
        id="naive",
        device=METER,
        provider="accuchek_ble",
        received_at=datetime(2026, 11, 20, 12, 0),  # noqa: DTZ001 - the bug under test
        concentration=0.001,
        unit=GlucoseUnit.KG_PER_L,
    )
    with pytest.raises(ValueError, match="naive"):
        save_transfer(
            db,
            [*good, naive],
            zone=ZONE,
            advance=CursorUpdate(METER, last_sequence=3),
        )
    assert count_rows(db, "reading") == 0
    assert count_rows(db, "outbox_item") == 0
    device = devices.get_device(db, METER)
    assert device is None or device.last_sequence is None


def test_a_failure_after_the_inserts_rolls_them_back(db, monkeypatch):
    def boom(*args, **kwargs):
        msg = "disk I/O error"
        raise sqlite3.OperationalError(msg)

    monkeypatch.setattr(devices, "advance_cursor", boom)
    with pytest.raises(sqlite3.OperationalError):
        save_transfer(db, [glucose(1)], zone=ZONE, advance=CursorUpdate(METER, last_sequence=1))
    assert count_rows(db, "reading") == 0


def test_the_cursor_moves_with_the_transfer(db):
    save_transfer(
        db,
        [glucose(1), glucose(2)],
        zone=ZONE,
        now=T0,
        advance=CursorUpdate(METER, last_sequence=2, cursor={"racp": 2, "epoch": "a"}),
    )
    device = devices.get_device(db, METER)
    assert device is not None
    assert device.last_sequence == 2
    assert device.cursor == {"racp": 2, "epoch": "a"}
    assert device.last_seen_at == T0


def test_unassigned_readings_are_kept_but_not_queued_until_assigned(db):
    reading = glucose(1)
    result = save_transfer(db, [reading], zone=ZONE)
    assert result.unassigned_ids == (reading.id,)
    assert result.queued == 0
    assert count_rows(db, "outbox_item") == 0
    page, _ = list_readings(db, unassigned=True)
    assert [r.reading.id for r in page] == [reading.id]
    assert page[0].state is ReadingState.UNASSIGNED

    assert readings.assign_readings(db, [reading.id], "user-a", zone=ZONE) == 1
    assert readings.assign_readings(db, [reading.id], "user-b", zone=ZONE) == 0
    stored = readings.get_reading(db, reading.id)
    assert stored is not None
    assert (stored.user_id, stored.state) == ("user-a", ReadingState.QUEUED)
    assert count_rows(db, "outbox_item") == 1


def test_binding_attributes_and_overrides_the_provider(db):
    users.bind(db, "C0:FF:EE:00:00:02", "user-a", device_user=1, provider="omron_kiosk")
    users.bind(db, "C0:FF:EE:00:00:02", "user-b", device_user=2)
    mine, theirs, nobody = (
        blood_pressure(user_index=1),
        blood_pressure(user_index=2),
        blood_pressure(user_index=3),
    )
    result = save_transfer(db, [mine, theirs, nobody], zone=ZONE)
    assert result.queued == 2
    assert result.unassigned_ids == (nobody.id,)
    stored = {r.reading.id: r for r in list_readings(db)[0]}
    assert (stored[mine.id].user_id, stored[mine.id].provider) == ("user-a", "omron_kiosk")
    assert (stored[theirs.id].user_id, stored[theirs.id].provider) == ("user-b", "omron_ble")
    assert stored[mine.id].reading.provider == "omron_ble", "the driver's choice is kept"


def test_no_measured_value_is_logged_above_debug(db, caplog):
    users.bind(db, METER, "user-a")
    reading = glucose(1, concentration=0.00987654)
    with caplog.at_level("DEBUG"):
        save_transfer(db, [reading], zone=ZONE)
    for record in caplog.records:
        if record.levelname != "DEBUG":
            assert "987654" not in record.getMessage()


def test_a_ketone_or_an_unusable_value_is_stored_locally_and_never_queued(db):
    from drivers.readings import KetoneReading

    users.bind(db, METER, "u1")
    ketone = KetoneReading(
        id="k1",
        device=METER,
        provider="manual",
        received_at=T0,
        device_time=DeviceTime(2026, 11, 20, 7, 31, 0),
        concentration_mmol_l=1.5,
        raw_concentration=15e-5,
        raw_unit=GlucoseUnit.KG_PER_L,
    )
    hi = glucose(concentration=math.inf, device=METER)
    good = glucose(device=METER)
    result = save_transfer(db, [ketone, hi, good], zone=ZONE)
    assert (result.new, result.queued) == (3, 1)
    assert count_rows(db, "outbox_item") == 1
    states = {s.reading.id: s.state for s in list_readings(db)[0]}
    assert states == {
        "k1": ReadingState.LOCAL,
        hi.id: ReadingState.LOCAL,
        good.id: ReadingState.QUEUED,
    }
    assert readings.get_reading(db, "k1").reading == ketone  # type: ignore[union-attr]


def test_a_record_dated_9999_with_an_offset_is_saved_with_the_others(db):
    bad = glucose(device=METER, device_time=DeviceTime(9999, 12, 31, 23, 59, 0, 60))
    good = [glucose(device=METER), glucose(device=METER)]
    result = save_transfer(db, [good[0], bad, good[1]], zone=ZONE)
    assert result.new == 3
    stored = readings.get_reading(db, bad.id)
    assert stored is not None
    assert ReadingFlag.NO_DEVICE_TIME in stored.reading.flags
    assert stored.start_date == bad.received_at
    assert stored.reading.device_time == DeviceTime(9999, 12, 31, 23, 59, 0, 60)
