import dataclasses
import itertools
import json
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.readings import (
    BloodPressureReading,
    BodyReading,
    DeviceTime,
    GlucoseReading,
    GlucoseUnit,
    MassUnit,
    PressureUnit,
    Reading,
    ReadingFlag,
)
from gateway.store import open_database
from gateway.store.codec import OWN_COLUMNS, reading_columns
from gateway.store.readings import get_reading, save_transfer
from tests.gateway.store.conftest import ZONE

floats = st.floats(allow_nan=False)  # NaN != NaN, so no value could ever compare equal
maybe_int = st.none() | st.integers(0, 2**16)
device_times = st.none() | st.builds(
    DeviceTime,
    year=st.sampled_from([0]) | st.integers(1900, 2100),
    month=st.integers(0, 13),  # raw fields: a device may send nonsense, which is kept
    day=st.integers(0, 32),
    hour=st.integers(0, 24),
    minute=st.integers(0, 60),
    second=st.integers(0, 60),
    offset_minutes=st.integers(-(2**15), 2**15 - 1),
)
common = {
    "id": st.just("x"),
    "device": st.just("C0:FF:EE:00:00:01"),
    "provider": st.text(min_size=1, max_size=12),
    "received_at": st.datetimes(
        datetime(1971, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive; the zone is UTC
        datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    "device_time": device_times,
    "clock_skew_s": st.none() | floats,
    "sequence": st.none() | st.integers(0, 2**32),
    "user_index": st.none() | st.integers(0, 255),
    "flags": st.frozensets(st.sampled_from(ReadingFlag)),
}
any_reading = st.one_of(
    st.builds(
        GlucoseReading,
        **common,
        concentration=floats,
        unit=st.sampled_from(GlucoseUnit),
        sample_type=maybe_int,
        sample_location=maybe_int,
        sensor_status=maybe_int,
        meal=maybe_int,
    ),
    st.builds(
        BloodPressureReading,
        **common,
        systolic=floats,
        diastolic=floats,
        mean_arterial=st.none() | floats,
        unit=st.sampled_from(PressureUnit),
        pulse_bpm=st.none() | floats,
        measurement_status=maybe_int,
    ),
    st.builds(
        BodyReading,
        **common,
        weight=st.none() | floats,
        unit=st.sampled_from(MassUnit),
        fat_percent=st.none() | floats,
        bmi=st.none() | floats,
        height=st.none() | floats,
    ),
)


def test_any_reading_round_trips_through_the_file(tmp_path):
    db = open_database(tmp_path / "gateway.sqlite3")
    ids = itertools.count()

    @settings(max_examples=150, deadline=None)
    @given(any_reading)
    def check(reading: Reading) -> None:
        reading = dataclasses.replace(reading, id=f"r{next(ids)}")
        save_transfer(db, [reading], zone=ZONE)
        stored = get_reading(db, reading.id)
        assert stored is not None
        assert stored.reading == reading
        assert stored.start_date == reading.instant(ZONE)

    check()
    db.close()


@settings(max_examples=150, deadline=None)
@given(any_reading)
def test_stored_json_is_byte_for_byte_what_sorted_json_dumps_writes(reading: Reading) -> None:
    # The save path builds values_json/flags_json its fast way (issue 18); reparse compares
    # columns to decide whether a reading changed, so the text itself must not change.
    values = {
        f.name: getattr(reading, f.name)
        for f in dataclasses.fields(reading)
        if f.name not in {g.name for g in dataclasses.fields(Reading)}
    }
    columns = reading_columns(reading, ZONE)
    assert columns["values_json"] == json.dumps(values, sort_keys=True)
    assert columns["flags_json"] == json.dumps(sorted(flag.value for flag in reading.flags))
    assert tuple(columns) == OWN_COLUMNS
