import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from drivers.readings import (
    DeviceTime,
    ReadingKind,
)
from gateway.store import InvalidCursorError, readings, users
from gateway.store.aio import call
from gateway.store.readings import ReadingState, list_readings, save_transfer
from tests.gateway.store.conftest import ZONE, count_rows
from tests.sync.factories import T0, blood_pressure, body, glucose

METER = "C0:FF:EE:00:00:01"


def test_list_readings_filters(db):
    users.bind(db, METER, "user-a")
    early = glucose(1, device_time=DeviceTime(2026, 11, 1, 8, 0, 0))
    late = glucose(2, device_time=DeviceTime(2026, 11, 21, 8, 0, 0))
    save_transfer(db, [early, late, blood_pressure(), body()], zone=ZONE, now=T0)
    ids = lambda page: {r.reading.id for r in page[0]}  # noqa: E731
    assert ids(list_readings(db, kind=ReadingKind.GLUCOSE)) == {early.id, late.id}
    assert ids(list_readings(db, user_id="user-a")) == {early.id, late.id}
    assert ids(list_readings(db, device=METER.lower())) == {early.id, late.id}
    cut = datetime(2026, 11, 10, tzinfo=UTC)
    assert ids(list_readings(db, kind=ReadingKind.GLUCOSE, start=cut)) == {late.id}
    assert ids(list_readings(db, kind=ReadingKind.GLUCOSE, end=cut)) == {early.id}
    assert ids(list_readings(db, updated_since=T0 + timedelta(seconds=1))) == set()
    assert len(list_readings(db, updated_since=T0)[0]) == 4


def test_paging_while_inserting_never_skips_or_repeats(db):
    save_transfer(db, [glucose(i) for i in range(1, 31)], zone=ZONE)
    seen: list[str] = []
    cursor = None
    inserted = 30
    for _ in range(100):
        page, cursor = list_readings(db, limit=7, cursor=cursor)
        seen.extend(r.reading.id for r in page)
        if cursor is None:
            break
        # The collector keeps writing between pages.
        save_transfer(db, [glucose(i) for i in range(inserted + 1, inserted + 4)], zone=ZONE)
        inserted += 3
    all_ids = [r.reading.id for r in list_readings(db, limit=1000)[0]]
    assert len(all_ids) == inserted > 30
    assert seen == all_ids


def test_a_changed_reading_moves_to_the_end_for_updated_since_consumers(db):
    a, b = glucose(1), glucose(2)
    save_transfer(db, [a, b], zone=ZONE)
    page, cursor = list_readings(db, limit=2)
    assert [r.reading.id for r in page] == [a.id, b.id]
    assert cursor is None
    readings.assign_readings(db, [a.id], "user-a", zone=ZONE)
    assert [r.reading.id for r in list_readings(db)[0]] == [b.id, a.id]


@pytest.mark.parametrize("cursor", ["nonsense", "", "cjE6LTE", "eDo1"])
def test_foreign_cursors_are_refused(db, cursor):
    with pytest.raises(InvalidCursorError, match="not valid"):
        list_readings(db, cursor=cursor)


def test_limit_out_of_range(db):
    with pytest.raises(ValueError, match="out of range"):
        list_readings(db, limit=0)


def test_binding_later_and_assigning_a_devices_backlog(db):
    cuff = "C0:FF:EE:00:00:02"
    one, two = blood_pressure(user_index=1), blood_pressure(user_index=2)
    save_transfer(db, [one, two, glucose(1)], zone=ZONE)
    users.bind(db, cuff, "user-a", device_user=1)
    assigned = readings.assign_device_readings(db, cuff, "user-a", zone=ZONE, device_user=1)
    assert assigned == 1
    assert readings.get_reading(db, one.id).user_id == "user-a"
    assert readings.get_reading(db, two.id).state is ReadingState.UNASSIGNED
    assert count_rows(db, "outbox_item") == 1
    assert readings.assign_device_readings(db, cuff, "user-b", zone=ZONE) == 1
    assert readings.assign_device_readings(db, cuff, "user-b", zone=ZONE) == 0


async def test_the_async_wrapper_runs_store_calls_off_the_loop(db):
    result = await call(save_transfer, db, [glucose(1)], zone=ZONE)
    assert result.new == 1
    assert (await call(readings.get_reading, db, glucose(1).id)) is not None


async def test_concurrent_transfers_and_queries_from_worker_threads(db):
    users.bind(db, METER, "user-a")
    batches = [[glucose(i * 10 + j) for j in range(10)] for i in range(8)]
    saves = [call(save_transfer, db, batch, zone=ZONE) for batch in batches]
    queries = [call(list_readings, db, limit=5) for _ in range(8)]
    results = await asyncio.gather(*saves, *queries)
    assert sum(r.new for r in results[:8]) == 80
    assert count_rows(db, "reading") == 80
    assert count_rows(db, "outbox_item") == 80
