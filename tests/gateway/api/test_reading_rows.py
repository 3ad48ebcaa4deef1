"""The lean readings page answers byte for byte what the ORM + pydantic path answers.

`GET /v1/readings` and `GET /v1/readings/{id}` run on `gateway.api.reading_rows` (DB-API
rows straight to dicts); the reference is the path they replaced: `queries.reading_page` /
`queries.reading_count` (SQLModel rows) → `schemas.reading_out` (the driver's dataclass and
pydantic) → FastAPI's serializer (`TypeAdapter.dump_json`). Readings of every kind, unit,
flag and optional field, assigned, unassigned, local, withdrawn, with clocks that do not
rise with the change order; every filter, paged through at several sizes.
"""

import math
from datetime import timedelta

import pytest
from pydantic import TypeAdapter

from drivers.readings import (
    BloodPressureReading,
    BodyReading,
    DeviceTime,
    GlucoseReading,
    GlucoseUnit,
    KetoneReading,
    MassUnit,
    PressureUnit,
    ReadingFlag,
    ReadingKind,
)
from gateway.api import queries
from gateway.api.queries import ReadingFilter
from gateway.api.schemas import (
    PageLinks,
    PageMeta,
    Reading,
    ReadingPage,
    ReadingWindow,
    WindowSummary,
    reading_out,
)
from gateway.store import readings, users
from gateway.store.changes import mark_changed
from gateway.store.outbox import SqliteOutbox
from tests.sync.factories import T0

METER, CUFF, SCALE, OTHER = (f"C0:FF:EE:00:00:0{n}" for n in (1, 2, 3, 4))
PAGE = TypeAdapter(ReadingPage)
ONE = TypeAdapter(Reading)


def _time(minute: int, offset: int = 0) -> DeviceTime:
    return DeviceTime(2026, 11, 20, 7, minute % 60, minute % 7, offset)


def _varied() -> list[list]:
    """Transfers of readings that between them set every field the API shows."""
    g = [
        GlucoseReading(
            id=f"g{n}",
            device=METER if n % 3 else OTHER,
            provider="accuchek_ble",
            received_at=T0 + timedelta(microseconds=n * 125_000),
            device_time=_time(n, offset=60 if n == 4 else 0) if n != 5 else None,
            clock_skew_s=[None, 2.5, -7200.0, 0.0][n % 4],
            sequence=n if n != 6 else None,
            concentration=[0.00104, 0.0055, 1e-5, 0.000999999, float("nan"), 0.0123456][n % 6],
            unit=GlucoseUnit.MOL_PER_L if n % 4 == 1 else GlucoseUnit.KG_PER_L,
            sample_type=[None, 1, 10][n % 3],
            sample_location=[None, 1][n % 2],
            sensor_status=[None, 0, 0x40][n % 3],
            meal=[None, 1, 2, 3][n % 4],
            flags=frozenset(
                [
                    (),
                    (ReadingFlag.HIGH,),
                    (ReadingFlag.LOW, ReadingFlag.CONTROL_SOLUTION),
                    (ReadingFlag.HISTORICAL,),
                ][n % 4]
            ),
        )
        for n in range(1, 13)
    ]
    bp = [
        BloodPressureReading(
            id=f"bp{n}",
            device=CUFF,
            provider="omron_ble",
            received_at=T0 + timedelta(seconds=n),
            device_time=_time(20 + n),
            user_index=[None, 1, 2][n % 3],
            systolic=[120, 16.1, 141.5, float("inf")][n % 4],
            diastolic=[80, 10.2, 91.0, 70.0][n % 4],
            mean_arterial=[None, 93.3][n % 2],
            unit=PressureUnit.KPA if n % 4 == 1 else PressureUnit.MMHG,
            pulse_bpm=[None, 64.0, 101.25][n % 3],
            measurement_status=[None, 0x0001, 0x0010][n % 3],
            flags=frozenset([(), (ReadingFlag.BODY_MOVEMENT, ReadingFlag.IRREGULAR_PULSE)][n % 2]),
        )
        for n in range(1, 9)
    ]
    w = [
        BodyReading(
            id=f"w{n}",
            device=SCALE,
            provider="omron_ble",
            received_at=T0 + timedelta(minutes=n),
            device_time=_time(40 + n, offset=-30 if n == 2 else 0),
            user_index=n % 4 or None,
            weight=[None, 70.5, 154.0, 81.25][n % 4],
            unit=MassUnit.LB if n % 4 == 2 else MassUnit.KG,
            fat_percent=[None, 21.5, 18.04][n % 3],
            bmi=[None, 22.9][n % 2],
            height=[None, 1.72, 67.5][n % 3],
        )
        for n in range(1, 9)
    ]
    k = [
        KetoneReading(
            id=f"k{n}",
            device=METER,
            provider="manual",
            received_at=T0,
            device_time=_time(50 + n),
            sequence=100 + n,
            concentration_mmol_l=[1.5, 0.123456, 3.0][n % 3],
            raw_concentration=15e-5 * n,
            raw_unit=GlucoseUnit.KG_PER_L if n % 2 else GlucoseUnit.MOL_PER_L,
            meal=[None, 6][n % 2],
        )
        for n in range(1, 4)
    ]
    return [g[:6], bp[:4] + k, w[:4], g[6:] + bp[4:], w[4:]]


@pytest.fixture
async def stored(services):
    """The varied readings, saved with clocks out of change order; some assigned, one withdrawn,
    some delivered and one dead-lettered through the real outbox.

    Change order: transfers 0..4 as saved, then the assignment of the scale's unassigned
    readings (they move to the end), then the withdrawal of g3, then the outbox's changes.
    """
    db, zone = services.db, services.settings.zone
    users.bind(db, METER, "u1")
    users.bind(db, CUFF, "u2", provider="omron_connect")
    # Saved 'now's deliberately not rising: updated_at and change_seq disagree.
    nows = [T0 + timedelta(hours=h) for h in (3, 1, 5, 2, 4)]
    for transfer, now in zip(_varied(), nows, strict=True):
        readings.save_transfer(db, transfer, zone=zone, now=now)
    readings.assign_readings(db, ["w1", "w5"], "u3", zone=zone, now=T0 + timedelta(hours=6))
    with db.write() as session:
        mark_changed(session, ["g3"], T0 + timedelta(hours=7), withdrawn_at=T0 + timedelta(hours=7))
    outbox = SqliteOutbox(db, zone=zone)
    now, lease = T0 + timedelta(hours=8), T0 + timedelta(hours=9)
    sent = await outbox.claim("u1", ReadingKind.GLUCOSE, limit=2, now=now, lease_until=lease)
    assert sent is not None
    await outbox.complete(sent.claim_id, [i.id for i in sent.items], now)
    outbox.settle_sync()  # what the uploader does once idle (other streams are due here)
    refused = await outbox.claim(
        "u2", ReadingKind.BLOOD_PRESSURE, limit=1, now=now, lease_until=lease
    )
    assert refused is not None
    await outbox.dead_letter(
        refused.claim_id,
        [i.id for i in refused.items],
        status_code=422,
        body="{}",
        reason="refused",
        now=now,
    )
    return services


def _reference(db, wanted: ReadingFilter, *, limit: int, cursor: str | None, url) -> bytes:
    rows, next_cursor = queries.reading_page(db, wanted, limit=limit, cursor=cursor)
    count = queries.reading_count(db, wanted) if cursor is None or limit == 0 else None
    page = ReadingPage(
        data=[reading_out(r) for r in rows],
        next_cursor=next_cursor,
        links=PageLinks(next=url),
        meta=PageMeta(count=count),
    )
    return PAGE.dump_json(page)


def _query(wanted: ReadingFilter, limit: int) -> dict[str, str | int]:
    params: dict[str, str | int] = {"limit": limit}
    for name in ("user_id", "device", "source"):
        if getattr(wanted, name) is not None:
            params[name] = getattr(wanted, name)
    if wanted.kind is not None:
        params["kind"] = wanted.kind.value
    if wanted.unassigned:
        params["unassigned"] = "true"
    if wanted.withdrawn is not None:
        params["withdrawn"] = str(wanted.withdrawn).lower()
    for name, key in (
        ("start", "start_date"),
        ("end", "end_date"),
        ("updated_since", "updated_since"),
        ("updated_before", "updated_before"),
    ):
        if getattr(wanted, name) is not None:
            params[key] = getattr(wanted, name).isoformat()
    return params


FILTERS = [
    ReadingFilter(),
    *(ReadingFilter(kind=kind) for kind in ReadingKind),
    ReadingFilter(user_id="u1"),
    ReadingFilter(user_id="u1", kind=ReadingKind.KETONE),
    ReadingFilter(unassigned=True),
    ReadingFilter(unassigned=True, kind=ReadingKind.BODY),
    ReadingFilter(device=METER.lower()),
    ReadingFilter(device=METER, kind=ReadingKind.GLUCOSE),
    ReadingFilter(device=CUFF, user_id="u2", kind=ReadingKind.BLOOD_PRESSURE),
    ReadingFilter(source="omron_connect"),
    ReadingFilter(source="omron_ble", device=SCALE),
    ReadingFilter(withdrawn=True),
    ReadingFilter(withdrawn=False, kind=ReadingKind.GLUCOSE),
    ReadingFilter(start=T0 - timedelta(hours=6), end=T0 - timedelta(hours=5, minutes=30)),
    *(ReadingFilter(updated_since=T0 + timedelta(hours=h, minutes=30)) for h in range(-1, 8)),
    ReadingFilter(updated_since=T0 + timedelta(hours=1), updated_before=T0 + timedelta(hours=4)),
    ReadingFilter(updated_since=T0 + timedelta(hours=2), kind=ReadingKind.GLUCOSE),
    ReadingFilter(user_id="nobody"),
]


@pytest.mark.parametrize("limit", [1, 3, 100])
@pytest.mark.parametrize("wanted", FILTERS, ids=repr)
async def test_every_page_equals_the_orm_path(stored, remote_read, wanted, limit) -> None:
    params, cursor, pages = _query(wanted, limit), None, 0
    while True:
        sent = params if cursor is None else {**params, "cursor": cursor}
        response = await remote_read.get("/v1/readings", params=sent)
        assert response.status_code == 200, response.text
        body = response.json()
        url = body["links"]["next"]
        assert response.content == _reference(
            stored.db, wanted, limit=limit, cursor=cursor, url=url
        )
        cursor, pages = body["next_cursor"], pages + 1
        if cursor is None:
            break
    assert pages >= 1


async def test_the_count_alone_and_a_foreign_cursor_too(stored, remote_read) -> None:
    """limit=0 (the count), and an updated_since run resumed from any position."""
    response = await remote_read.get("/v1/readings", params={"limit": 0, "kind": "glucose"})
    wanted = ReadingFilter(kind=ReadingKind.GLUCOSE)
    assert response.content == _reference(stored.db, wanted, limit=0, cursor=None, url=None)
    since = T0 + timedelta(hours=1, minutes=30)
    wanted = ReadingFilter(updated_since=since)
    for after in range(40):
        cursor = readings.encode_cursor(after)
        sent = {"updated_since": since.isoformat(), "limit": 2, "cursor": cursor}
        response = await remote_read.get("/v1/readings", params=sent)
        url = response.json()["links"]["next"]
        assert response.content == _reference(stored.db, wanted, limit=2, cursor=cursor, url=url)


async def test_one_reading_equals_the_orm_path(stored, remote_read) -> None:
    ids = [r.id for transfer in _varied() for r in transfer]
    for reading_id in ids:
        response = await remote_read.get(f"/v1/readings/{reading_id}")
        assert response.status_code == 200
        expected = readings.get_reading(stored.db, reading_id)
        assert expected is not None
        assert response.content == ONE.dump_json(reading_out(expected))


async def test_the_varied_readings_cover_what_they_claim(stored, remote_read) -> None:
    """Guards the fixture: a comparison over readings without these would prove little."""
    page = (await remote_read.get("/v1/readings", params={"limit": 1000})).json()["data"]
    states = {r["state"] for r in page}
    assert {"queued", "unassigned", "local", "delivered", "dead"} <= states
    assert any(r["withdrawn_at"] for r in page)
    assert any(r["user_id"] is None for r in page)
    assert {r["kind"] for r in page} == {k.value for k in ReadingKind}
    raw_keys = set().union(*(r["raw"] for r in page))
    assert {"device_time_offset_minutes", "raw_mean_arterial", "bmi", "raw_height"} <= raw_keys
    assert any(r["values"] == {} or len(r["values"]) == 1 for r in page if r["kind"] == "body")
    assert any(not math.isfinite(r["clock_skew_s"] or 0) or r["clock_skew_s"] for r in page)
    assert any("value_unusable" in r["flags"] for r in page)
    assert any("clock_corrected" in r["flags"] or "no_device_time" in r["flags"] for r in page)


def _statements(db, wanted: ReadingFilter, after: int | None) -> tuple[list[str], int]:
    """The SQL `reading_rows` runs for one page, and the rows it got."""
    import sqlite3

    from gateway.api import reading_rows

    seen: list[str] = []
    with sqlite3.connect(db.path) as conn:
        conn.set_trace_callback(seen.append)
        rows = reading_rows._page_rows(conn.cursor(), wanted, limit=5, after=after)
    return seen, len(rows)


def test_an_updated_since_page_walks_every_match_only_when_that_is_shorter(services) -> None:
    """Long ago (every reading matches): start at the cursor or the beginning, no walk of the
    matches (issue 18: 43 ms a page at 1,000,000). Recently (few match): seek the first."""
    db, zone = services.db, services.settings.zone
    for hour in range(10):
        transfer = [
            GlucoseReading(
                id=f"s{hour}-{n}",
                device=METER,
                provider="accuchek_ble",
                received_at=T0,
                device_time=_time(n),
                sequence=hour * 100 + n,
                concentration=0.001,
                unit=GlucoseUnit.KG_PER_L,
            )
            for n in range(20)
        ]
        readings.save_transfer(db, transfer, zone=zone, now=T0 + timedelta(hours=hour))
    long_ago = ReadingFilter(updated_since=T0 - timedelta(days=1))
    recent = ReadingFilter(updated_since=T0 + timedelta(hours=9))
    for wanted, after, seeks, rows in [
        (long_ago, None, False, 6),  # a page of 5, and one more: there is a next page
        (long_ago, 100, False, 6),
        (recent, None, True, 6),
        (recent, 3, True, 6),
        (recent, 195, False, 5),  # past the earliest match: the cursor is the start
    ]:
        seen, got = _statements(db, wanted, after)
        seek = "SELECT min(change_seq) FROM reading INDEXED BY"
        assert any(seek in sql for sql in seen) is seeks, (wanted, after, seen)
        assert got == rows


WINDOW = TypeAdapter(ReadingWindow)


@pytest.mark.parametrize(
    ("params", "wanted"),
    [
        (
            {"updated_since": (T0 + timedelta(hours=2)).isoformat()},
            ReadingFilter(updated_since=T0 + timedelta(hours=2)),
        ),
        (
            {"start_date": T0.isoformat(), "end_date": (T0 + timedelta(hours=3)).isoformat()},
            ReadingFilter(updated_since=T0, updated_before=T0 + timedelta(hours=3, seconds=1)),
        ),
        (
            {"source": "omron_ble", "kind": "body"},
            ReadingFilter(source="omron_ble", kind=ReadingKind.BODY),
        ),
        ({"user_id": "u1", "limit": 2}, ReadingFilter(user_id="u1")),
    ],
)
async def test_every_latest_window_page_equals_the_orm_path(stored, remote_read, params, wanted):
    """`/v1/readings/latest` with a window (Validic's latest): same page, same summary."""
    limit, cursor = params.get("limit", 100), None
    while True:
        sent = params if cursor is None else {**params, "cursor": cursor}
        response = await remote_read.get("/v1/readings/latest", params=sent)
        assert response.status_code == 200, response.text
        body = response.json()
        rows, next_cursor = queries.reading_page(stored.db, wanted, limit=limit, cursor=cursor)
        count = queries.reading_count(stored.db, wanted) if cursor is None else None
        assert body["summary"]["results"] == count
        expected = ReadingWindow(
            summary=WindowSummary(**body["summary"]),
            data=[reading_out(r) for r in rows],
            next_cursor=next_cursor,
        )
        assert response.content == WINDOW.dump_json(expected)
        cursor = body["next_cursor"]
        if cursor is None:
            break
