from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from drivers.readings import DeviceTime, ReadingFlag, ReadingKind
from sync.outbox import Stage, SyncStatus, items_for_read
from tests.sync.factories import T0, blood_pressure, glucose

HISTORICAL = frozenset({ReadingFlag.HISTORICAL})
TOKYO = ZoneInfo("Asia/Tokyo")


def test_first_read_is_historical_with_one_window_per_resource():
    early = glucose(device_time=DeviceTime(2026, 9, 1, 9, 0, 0), flags=HISTORICAL)
    late = glucose(device_time=DeviceTime(2026, 11, 20, 9, 0, 0), flags=HISTORICAL)
    bp = blood_pressure(flags=HISTORICAL)
    new = glucose()
    items = items_for_read(
        [early, late, bp, new], user_id="u", zone=TOKYO, enqueued_at=T0, provider="contour_ble"
    )
    a, b, c, d = items
    assert (a.stage, b.stage, c.stage, d.stage) == (Stage.HISTORICAL,) * 3 + (Stage.DAILY,)
    assert a.window_start == b.window_start == datetime(2026, 9, 1, 0, 0, tzinfo=UTC)
    assert a.window_end == b.window_end == T0
    assert c.window_start == bp.instant(TOKYO)
    assert (d.window_start, d.window_end) == (None, None)
    assert {i.provider for i in items} == {"contour_ble"}
    assert a.group == b.group != c.group
    assert (a.resource, c.resource) == (ReadingKind.GLUCOSE, ReadingKind.BLOOD_PRESSURE)


def test_window_never_ends_before_it_starts():
    future = glucose(device_time=DeviceTime(2027, 1, 1, 0, 0, 0), flags=HISTORICAL)
    [item] = items_for_read([future], user_id="u", zone=TOKYO, enqueued_at=T0)
    assert item.window_end >= item.window_start
    assert item.window_end - item.window_start == timedelta(0)


def test_status_codes_follow_the_sdk():
    assert SyncStatus.DEPRIORITIZED.code == 0
    assert SyncStatus.UPLOADED_CHUNK.code == 3
    assert SyncStatus.COMPLETED.code == 5
    assert SyncStatus.CONNECTION_DESTROYED.code == 12


def test_readings_junction_cannot_take_are_never_queued():
    from drivers.readings import GlucoseUnit, KetoneReading
    from sync.outbox import uploadable

    ketone = KetoneReading(
        id="k1",
        device="C0:FF:EE:00:00:01",
        provider="manual",
        received_at=T0,
        concentration_mmol_l=1.5,
        raw_concentration=15e-5,
        raw_unit=GlucoseUnit.KG_PER_L,
    )
    nan = glucose(concentration=float("nan"))
    negative = glucose(concentration=-0.001)
    good = glucose()
    assert ReadingFlag.VALUE_UNUSABLE in nan.flags
    assert ReadingFlag.VALUE_UNUSABLE in negative.flags
    assert [uploadable(r) for r in (ketone, nan, negative, good)] == [False, False, False, True]
    items = items_for_read([ketone, nan, good, negative], user_id="u", zone=TOKYO, enqueued_at=T0)
    assert [i.id for i in items] == [good.id]
