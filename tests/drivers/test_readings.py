from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.readings import (
    EARLIEST_DEVICE_YEAR,
    DeviceTime,
    GlucoseReading,
    GlucoseUnit,
    ReadingFlag,
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


# ---------------------------------------------------------------- field-hardened time and values
_ZONES = ["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/Berlin"]


@given(
    fields=st.tuples(
        st.integers(0, 0xFFFF),
        st.integers(0, 0xFF),
        st.integers(0, 0xFF),
        st.integers(0, 0xFF),
        st.integers(0, 0xFF),
        st.integers(0, 0xFF),
        st.integers(-0x8000, 0x7FFF),
    ),
    skew=st.none() | st.floats(allow_nan=True, allow_infinity=True),
    zone=st.sampled_from(_ZONES),
)
@settings(deadline=None)  # the first example loads zone data
def test_any_device_time_gives_a_reading_or_a_flagged_one_never_an_exception(fields, skew, zone):
    from gateway.store.codec import reading_columns

    received = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    t = DeviceTime(*fields)
    reading = GlucoseReading(
        id="x",
        device="AA:BB:CC:DD:EE:FF",
        provider="manual",
        received_at=received,
        device_time=t,
        clock_skew_s=skew,
        concentration=0.001,
        unit=GlucoseUnit.KG_PER_L,
    )
    tz = ZoneInfo(zone)
    instant = reading.instant(tz)  # never raises
    assert instant.tzinfo is not None
    reading_columns(reading, tz)  # the store's side of the boundary does not raise either
    assert reading.device_time == t  # the raw fields are kept, whatever they say
    time_flags = reading.flags & {ReadingFlag.NO_DEVICE_TIME, ReadingFlag.CLOCK_CORRECTED}
    assert len(time_flags) <= 1
    if ReadingFlag.NO_DEVICE_TIME in reading.flags:
        assert instant == received
    elif not time_flags:
        wall = t.wall_clock()
        assert wall is not None
        assert wall.year >= EARLIEST_DEVICE_YEAR
        assert instant == wall.replace(tzinfo=tz).astimezone(UTC)


def test_a_clock_far_off_is_corrected_by_its_measured_skew():
    received = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    reading = GlucoseReading(
        id="x",
        device="AA:BB:CC:DD:EE:FF",
        provider="manual",
        received_at=received,
        device_time=DeviceTime(2021, 1, 1, 0, 5, 0),  # clock reset to its factory year
        clock_skew_s=(datetime(2021, 1, 1, 0, 10, tzinfo=UTC) - received).total_seconds(),
        concentration=0.001,
        unit=GlucoseUnit.KG_PER_L,
    )
    assert ReadingFlag.CLOCK_CORRECTED in reading.flags
    assert reading.instant(UTC) == received - timedelta(minutes=5)
    drifted = GlucoseReading(
        id="y",
        device="AA:BB:CC:DD:EE:FF",
        provider="manual",
        received_at=received,
        device_time=DeviceTime(2026, 11, 20, 7, 0, 0),
        clock_skew_s=-300.0,  # five minutes slow: left alone
        concentration=0.001,
        unit=GlucoseUnit.KG_PER_L,
    )
    assert not drifted.flags
    assert drifted.instant(UTC) == datetime(2026, 11, 20, 7, 0, tzinfo=UTC)


@given(raw=st.integers(0, 0xFFFF), mol=st.booleans())
def test_any_sfloat_glucose_is_a_sample_or_flagged_unusable(raw, mol):
    from drivers.gatt.ieee11073 import sfloat_from_raw
    from sync.junction.mapping import build_upload
    from sync.outbox import Stage, uploadable

    reading = GlucoseReading(
        id="x",
        device="AA:BB:CC:DD:EE:FF",
        provider="manual",
        received_at=datetime(2026, 11, 20, 8, 0, tzinfo=UTC),
        device_time=DeviceTime(2026, 11, 20, 7, 0, 0),
        concentration=sfloat_from_raw(raw),
        unit=GlucoseUnit.MOL_PER_L if mol else GlucoseUnit.KG_PER_L,
    )
    if uploadable(reading):
        build_upload(
            [reading],
            user_id="u",
            resource=reading.kind,
            provider="manual",
            stage=Stage.DAILY,
            zone=ZoneInfo("UTC"),
            time_zone="UTC",
        )
    else:
        assert ReadingFlag.VALUE_UNUSABLE in reading.flags


@given(
    weight=st.none() | st.floats(allow_nan=True, allow_infinity=True),
    fat=st.none() | st.floats(allow_nan=True, allow_infinity=True),
)
def test_any_body_value_is_a_sample_or_flagged_unusable(weight, fat):
    from drivers.readings import BodyReading, MassUnit
    from sync.junction.mapping import build_upload
    from sync.outbox import Stage, uploadable

    reading = BodyReading(
        id="x",
        device="AA:BB:CC:DD:EE:FF",
        provider="manual",
        received_at=datetime(2026, 11, 20, 8, 0, tzinfo=UTC),
        device_time=DeviceTime(2026, 11, 20, 7, 0, 0),
        weight=weight,
        unit=MassUnit.KG,
        fat_percent=fat,
    )
    if not uploadable(reading):
        assert ReadingFlag.VALUE_UNUSABLE in reading.flags
        return
    upload = build_upload(
        [reading],
        user_id="u",
        resource=reading.kind,
        provider="manual",
        stage=Stage.DAILY,
        zone=ZoneInfo("UTC"),
        time_zone="UTC",
    )
    data = upload.body["data"]
    assert all(0 < s["value"] <= 1000 for s in data["body_mass"] + data["body_fat_percentage"])
