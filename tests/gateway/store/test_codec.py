import dataclasses
import itertools
import json
import math
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.readings import (
    BloodPressureReading,
    BodyReading,
    DeviceTime,
    GlucoseReading,
    GlucoseUnit,
    KetoneReading,
    MassUnit,
    PressureUnit,
    Reading,
    ReadingFlag,
)
from gateway.store import Database, codec, open_database, users
from gateway.store.codec import (
    OWN_COLUMNS,
    READING_COLUMNS_SQL,
    ReadingColumns,
    outbox_items,
    reading_columns,
    reading_from_db,
    reading_from_row,
)
from gateway.store.readings import get_reading, save_transfer
from gateway.store.types import from_utc_text
from sync.outbox import OutboxItem, Stage
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
    st.builds(
        KetoneReading,
        **common,
        concentration_mmol_l=floats,
        raw_concentration=floats,
        raw_unit=st.sampled_from(GlucoseUnit),
        meal=maybe_int,
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


# ------------------------------------------------ the trusted rebuild (issue 18 hot path)


def _db_rows(db: Database) -> dict[str, tuple[object, ...]]:
    """Every stored reading's `READING_COLUMNS_SQL` row, as the outbox's claim reads them."""
    with sqlite3.connect(db.path) as conn:
        query = f"SELECT {READING_COLUMNS_SQL} FROM reading"  # noqa: S608 - constant
        return {row[0]: tuple(row) for row in conn.execute(query)}


def _exact(reading: Reading) -> list[tuple[str, str]]:
    # Each field's type and repr: 1 == 1.0 and 0.0 == -0.0, but the wire tells them apart.
    return [
        (type(v).__name__, repr(sorted(v) if isinstance(v, frozenset) else v))
        for v in (getattr(reading, f.name) for f in dataclasses.fields(reading))
    ]


def _assert_same(fast: Reading, slow: Reading) -> None:
    """Equal, and field by field the same types and reprs (`slow` as loaded from a row)."""
    assert type(fast) is type(slow)
    assert _exact(fast) == _exact(slow)
    assert fast == slow or "nan" in repr(slow)  # NaN != NaN: the reprs above compared it


def test_the_trusted_rebuild_equals_the_validating_one_for_any_reading(tmp_path):
    db = open_database(tmp_path / "gateway.sqlite3")
    ids = itertools.count()

    @settings(max_examples=200, deadline=None)
    @given(any_reading)
    def check(reading: Reading) -> None:
        reading = dataclasses.replace(reading, id=f"r{next(ids)}")
        save_transfer(db, [reading], zone=ZONE)
        row = _db_rows(db)[reading.id]
        fast = reading_from_db(row)
        _assert_same(fast, reading_from_row(ReadingColumns.from_db(row)))
        assert fast == reading

    check()
    db.close()


METER = "C0:FF:EE:00:00:01"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _varied() -> list[Reading]:
    """Every kind, flag source and device-time case the store meets."""
    wall = DeviceTime(2026, 2, 28, 8, 30, 15)
    times: list[tuple[DeviceTime | None, float | None]] = [
        (wall, None),
        (DeviceTime(2026, 2, 28, 8, 30, 15, offset_minutes=-90), 12.5),
        (None, None),  # no device time
        (DeviceTime(0, 0, 0, 0, 0, 0), None),  # "unknown"
        (DeviceTime(2000, 1, 1, 0, 0, 0), None),  # factory year
        (DeviceTime(2026, 13, 1, 0, 0, 0), None),  # impossible month
        (DeviceTime(2037, 1, 1, 0, 0, 0), None),  # far future
        (DeviceTime(2000, 1, 1, 0, 0, 0), -826_000_000.0),  # clock corrected
        (DeviceTime(9999, 12, 31, 23, 59, 0, offset_minutes=60), None),  # off the calendar
    ]
    out: list[Reading] = []
    for i, (device_time, skew) in enumerate(times):
        common = {
            "device": METER,
            "provider": "accuchek_ble",
            "received_at": NOW + timedelta(microseconds=i),
            "device_time": device_time,
            "clock_skew_s": skew,
            "sequence": i,
        }
        out += [
            GlucoseReading(
                id=f"g{i}",
                concentration=0.00099,
                unit=GlucoseUnit.KG_PER_L,
                sample_type=1,
                **common,
            ),
            GlucoseReading(
                id=f"gm{i}",
                concentration=0.0061,
                unit=GlucoseUnit.MOL_PER_L,
                meal=2,
                flags=frozenset({ReadingFlag.HISTORICAL, ReadingFlag.HIGH}),
                **common,
            ),
            GlucoseReading(
                id=f"gn{i}", concentration=math.nan, unit=GlucoseUnit.KG_PER_L, **common
            ),
            BloodPressureReading(
                id=f"b{i}",
                systolic=120.0,
                diastolic=80,  # an int where a float is declared: kept as the device gave it
                mean_arterial=None,
                unit=PressureUnit.MMHG,
                pulse_bpm=math.inf,
                user_index=1,
                flags=frozenset({ReadingFlag.IRREGULAR_PULSE}),
                **common,
            ),
            BloodPressureReading(
                id=f"bk{i}",
                systolic=16.0,
                diastolic=10.7,
                mean_arterial=12.4,
                unit=PressureUnit.KPA,
                pulse_bpm=61.0,
                measurement_status=4,
                **common,
            ),
            BodyReading(id=f"w{i}", weight=70.25, unit=MassUnit.KG, fat_percent=None, **common),
            BodyReading(
                id=f"wl{i}", weight=None, unit=MassUnit.LB, fat_percent=-0.0, bmi=22.1, **common
            ),
            KetoneReading(
                id=f"k{i}",
                concentration_mmol_l=1.2,
                raw_concentration=0.00012,
                raw_unit=GlucoseUnit.KG_PER_L,
                meal=6,
                **common,
            ),
        ]
    return out


@pytest.fixture
def varied_store(db: Database) -> tuple[Database, list[Reading]]:
    """The varied readings stored unassigned, queued, local (ketone, NaN) and withdrawn."""
    readings = _varied()
    half = len(readings) // 2
    save_transfer(db, readings[:half], zone=ZONE, now=NOW)  # no binding yet: unassigned
    users.bind(db, METER, "user-a")
    save_transfer(db, readings[half:], zone=ZONE, now=NOW)  # queued or local
    with sqlite3.connect(db.path) as conn:
        conn.execute(
            "UPDATE reading SET withdrawn_at = ? WHERE id IN ('g1', 'b2')", ("2026-03-02",)
        )
    return db, readings


def test_the_trusted_rebuild_equals_the_validating_one_over_a_varied_store(
    varied_store, monkeypatch
):
    db, readings = varied_store
    rows = _db_rows(db)
    with sqlite3.connect(db.path) as conn:
        states = {state for (state,) in conn.execute("SELECT DISTINCT state FROM reading")}
    assert {"unassigned", "queued", "local"} <= states
    assert len(rows) == len(readings)
    fast = {}
    with monkeypatch.context() as patch:  # rows this version wrote never need the slow path
        patch.setattr(codec, "reading_from_row", None)
        for reading in readings:
            fast[reading.id] = reading_from_db(rows[reading.id])
    for reading in readings:
        _assert_same(fast[reading.id], reading_from_row(ReadingColumns.from_db(rows[reading.id])))
        _assert_same(fast[reading.id], reading)


def _altered(row: tuple[object, ...], **changes: object) -> tuple[object, ...]:
    values = dict(zip(ReadingColumns._fields, row, strict=True))
    return tuple((values | changes).values())


def test_rows_the_trusted_rebuild_does_not_recognise_take_the_validating_path(varied_store):
    db, _ = varied_store
    row = _db_rows(db)["g0"]
    values = json.loads(str(row[ReadingColumns._fields.index("values_json")]))
    # Written by another version: a key missing (its default applies), spacing, key order.
    for text in (
        json.dumps({k: v for k, v in values.items() if k != "meal"}),
        json.dumps(values, indent=1),
        json.dumps(dict(reversed(values.items()))) + " ",
    ):
        odd = _altered(row, values_json=text)
        _assert_same(reading_from_db(odd), reading_from_row(ReadingColumns.from_db(odd)))
    # What the validating path refuses, the trusted one refuses the same way.
    for bad in (
        _altered(row, kind="cholesterol"),
        _altered(row, values_json=json.dumps(values | {"unit": "mg/dL"})),
        _altered(row, values_json=json.dumps(values | {"colour": "red"})),
        _altered(row, values_json="{not json"),
        _altered(row, flags_json='["sparkly"]'),
    ):
        with pytest.raises((ValueError, TypeError)) as slow:
            reading_from_row(ReadingColumns.from_db(bad))
        with pytest.raises(type(slow.value)):
            reading_from_db(bad)


def test_outbox_items_are_the_items_built_field_by_field(varied_store):
    db, _ = varied_store
    rows = _db_rows(db)
    with sqlite3.connect(db.path) as conn:
        queued = conn.execute(
            "SELECT enqueued_at, attempts, reading_id FROM outbox_item ORDER BY pk"
        ).fetchall()
    assert queued
    start, end = NOW - timedelta(days=30), NOW
    batch = [(at, attempts, rows[rid]) for at, attempts, rid in queued]
    batch.append((NOW, 3, rows["g0"]))  # an instant already parsed is kept
    items = outbox_items(
        batch,
        user_id="user-a",
        provider="omron_kiosk",
        stage=Stage.HISTORICAL,
        window_start=start,
        window_end=end,
    )
    expected = tuple(
        OutboxItem(
            reading=reading_from_row(ReadingColumns.from_db(row)),
            user_id="user-a",
            provider="omron_kiosk",
            stage=Stage.HISTORICAL,
            enqueued_at=at if isinstance(at, datetime) else from_utc_text(at),
            window_start=start,
            window_end=end,
            attempts=attempts,
        )
        for at, attempts, row in batch
    )
    assert items == expected
    assert all(item.enqueued_at.tzinfo is UTC for item in items)
