from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from drivers.readings import (
    DeviceTime,
    GlucoseReading,
    GlucoseUnit,
    ReadingKind,
    stable_reading_id,
)

RECEIVED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _glucose(device_time: DeviceTime | None) -> GlucoseReading:
    return GlucoseReading(
        id="x",
        device="C0:FF:EE:00:00:01",
        provider="accuchek_ble",
        received_at=RECEIVED,
        device_time=device_time,
        concentration=0.00104,
        unit=GlucoseUnit.KG_PER_L,
    )


def test_device_wall_time_is_read_in_the_configured_zone():
    reading = _glucose(DeviceTime(2026, 11, 20, 7, 30, 0))
    assert reading.instant(ZoneInfo("America/New_York")) == datetime(
        2026, 11, 20, 12, 30, tzinfo=UTC
    )


def test_time_offset_is_applied_once():
    reading = _glucose(DeviceTime(2026, 11, 20, 7, 30, 0, offset_minutes=-5))
    assert reading.instant(ZoneInfo("UTC")) == datetime(2026, 11, 20, 7, 25, tzinfo=UTC)


def test_unknown_year_falls_back_to_receive_time():
    reading = _glucose(DeviceTime(0, 4, 17, 20, 41, 59))
    assert reading.instant(ZoneInfo("Europe/Berlin")) == RECEIVED


def test_impossible_date_falls_back_to_receive_time():
    reading = _glucose(DeviceTime(2026, 13, 40, 7, 30, 0))
    assert reading.instant(ZoneInfo("UTC")) == RECEIVED


def test_stable_id_is_stable_and_distinguishes_records():
    time = DeviceTime(2026, 11, 20, 7, 30, 0)
    first = stable_reading_id(
        "c0:ff:ee:00:00:01", ReadingKind.GLUCOSE, sequence=1, device_time=time
    )
    again = stable_reading_id(
        "C0:FF:EE:00:00:01", ReadingKind.GLUCOSE, sequence=1, device_time=time
    )
    after_reset = stable_reading_id(
        "C0:FF:EE:00:00:01",
        ReadingKind.GLUCOSE,
        sequence=1,
        device_time=DeviceTime(2026, 11, 21, 8, 0, 0),
    )
    assert first == again
    assert first != after_reset
    assert len(first) == 32
