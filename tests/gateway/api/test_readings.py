"""GET /v1/readings: filters, keyset paging while inserting, values in Junction's units."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from drivers.readings import DeviceTime, GlucoseUnit, MassUnit, PressureUnit, ReadingKind
from gateway.api.queries import ReadingFilter
from gateway.api.routes.readings import _short_walk
from gateway.store import readings, users
from gateway.store.aio import call
from sync.junction import mapping
from tests.sync.factories import T0, blood_pressure, body, glucose

METER = "C0:FF:EE:00:00:01"
CUFF = "C0:FF:EE:00:00:02"


def save(services, items, now=None) -> None:
    readings.save_transfer(services.db, items, zone=services.settings.zone, now=now)


async def all_pages(client, **params) -> list[dict]:
    seen, cursor = [], None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        body_ = (await client.get("/v1/readings", params=query)).json()
        seen.extend(body_["data"])
        cursor = body_["next_cursor"]
        if cursor is None:
            return seen


async def test_contract_shape_and_junction_units(services, remote_read) -> None:
    users.bind(services.db, METER, "u1")
    users.bind(services.db, CUFF, "u1")
    save(services, [glucose(1, concentration=0.00104, unit=GlucoseUnit.KG_PER_L)])
    save(services, [blood_pressure(2, systolic=16.0, diastolic=10.0, unit=PressureUnit.KPA)])
    save(services, [body(3, weight=154.0, unit=MassUnit.LB, fat_percent=21.5)])
    response = await remote_read.get("/v1/readings")
    assert response.status_code == 200
    page = response.json()
    assert set(page) == {"data", "next_cursor", "links", "meta"}  # DESIGN's two, plus Fitbit's
    assert page["next_cursor"] is None
    assert page["links"] == {"next": None}
    assert page["meta"] == {"count": 3}
    g, bp, w = page["data"]
    for r in page["data"]:
        assert {"id", "kind", "user_id", "device", "start_date", "values", "raw"} <= set(r)
        assert r["start_date"].endswith("Z")
    assert g["kind"] == "glucose"
    assert g["user_id"] == "u1"
    assert g["device"] == METER
    assert g["values"] == {
        "glucose": {
            "value": mapping.glucose_mmol_per_l(0.00104, GlucoseUnit.KG_PER_L),
            "unit": "mmol/L",
        }
    }
    assert g["raw"]["raw_value"] == "0.00104"
    assert g["raw"]["raw_unit"] == "kg/L"
    assert g["type"] == "fingerprick"
    # Device wall time 07:01 in Europe/Berlin is 06:01 UTC.
    assert g["start_date"] == "2026-11-20T06:01:00Z"
    assert g["timezone_offset"] == 3600
    assert bp["values"]["systolic"] == {
        "value": mapping.pressure_mmhg(16.0, PressureUnit.KPA),
        "unit": "mmHg",
    }
    assert bp["values"]["pulse"]["unit"] == "bpm"
    assert bp["raw"]["raw_unit"] == "kPa"
    assert w["values"]["body_mass"] == {"value": mapping.mass_kg(154.0, MassUnit.LB), "unit": "kg"}
    assert w["values"]["body_fat_percentage"] == {"value": 21.5, "unit": "%"}


async def test_filters(services, remote_read) -> None:
    users.bind(services.db, METER, "u1")
    save(services, [glucose(1), glucose(2)], now=T0)
    save(services, [blood_pressure(3)], now=T0 + timedelta(hours=1))  # unassigned
    get = remote_read.get

    async def ids(**params) -> list[str]:
        response = await get("/v1/readings", params=params)
        assert response.status_code == 200, response.text
        return [r["kind"] + ":" + (r["user_id"] or "-") for r in response.json()["data"]]

    assert await ids(kind="glucose") == ["glucose:u1", "glucose:u1"]
    assert await ids(kind="blood_pressure") == ["blood_pressure:-"]
    assert await ids(user_id="u1") == ["glucose:u1", "glucose:u1"]
    assert await ids(unassigned="true") == ["blood_pressure:-"]
    assert await ids(device=CUFF.lower()) == ["blood_pressure:-"]
    # Glucose 1 was measured 07:01 Berlin = 06:01Z, glucose 2 at 06:02Z.
    assert await ids(start_date="2026-11-20T06:02:00Z", kind="glucose") == ["glucose:u1"]
    assert await ids(end_date="2026-11-20T07:02:00+01:00", kind="glucose") == ["glucose:u1"]
    assert await ids(start_date="2026-11-20T06:01:00Z", end_date="2026-11-20T06:01:30Z") == [
        "glucose:u1"
    ]
    assert await ids(updated_since=(T0 + timedelta(minutes=30)).isoformat()) == ["blood_pressure:-"]
    assert await ids(user_id="nobody") == []


async def test_paging_is_stable_while_readings_arrive(services, remote_read) -> None:
    """Insert between every page: nothing skipped, nothing repeated, new ones at the end."""
    first = [glucose(seq) for seq in range(1, 26)]
    save(services, first)
    seen: list[str] = []
    cursor = None
    added: list[str] = []
    seq = 100
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = (await remote_read.get("/v1/readings", params=params)).json()
        seen.extend(r["id"] for r in page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        if seq < 103:
            fresh = [glucose(seq, device="C0:FF:EE:00:00:09"), glucose(seq + 50)]
            await call(save, services, fresh)
            added.extend(r.id for r in fresh)
            seq += 1
    assert len(seen) == len(set(seen))
    assert seen == [r.id for r in first] + added


async def test_paging_with_concurrent_writer(services, remote_read) -> None:
    """A writer thread inserts while a client pages: every reading present at start is seen."""
    save(services, [glucose(seq) for seq in range(1, 201)])
    initial = {r["id"] for r in await all_pages(remote_read, limit=1000)}
    stop = asyncio.Event()

    async def writer() -> None:
        seq = 1000
        while not stop.is_set():
            await call(save, services, [glucose(seq)])
            seq += 1

    task = asyncio.create_task(writer())
    try:
        paged = await all_pages(remote_read, limit=13)
    finally:
        stop.set()
        await task
    ids = [r["id"] for r in paged]
    assert len(ids) == len(set(ids))
    assert initial <= set(ids)


async def test_latest_per_kind_and_user(services, remote_read) -> None:
    users.bind(services.db, METER, "u1")
    users.bind(services.db, CUFF, "u2")
    early = DeviceTime.from_datetime(datetime(2026, 11, 20, 6, 0))  # noqa: DTZ001
    late = DeviceTime.from_datetime(datetime(2026, 11, 20, 9, 0))  # noqa: DTZ001
    newest = glucose(5, device_time=late)
    save(services, [newest, glucose(6, device_time=early)])  # stored after, measured before
    save(services, [blood_pressure(7)])
    data = (await remote_read.get("/v1/readings/latest", params={"user_id": "u1"})).json()["data"]
    assert set(data) == {"glucose"}
    assert data["glucose"]["id"] == newest.id
    data = (await remote_read.get("/v1/readings/latest")).json()["data"]
    assert set(data) == {"glucose", "blood_pressure"}
    data = (await remote_read.get("/v1/readings/latest", params={"kind": "body"})).json()
    assert data == {"data": {}}


async def test_get_one_and_404(services, remote_read) -> None:
    reading = glucose(1)
    save(services, [reading])
    response = await remote_read.get(f"/v1/readings/{reading.id}")
    assert response.status_code == 200
    assert response.json()["id"] == reading.id
    response = await remote_read.get("/v1/readings/nope")
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


@pytest.mark.parametrize(
    ("params", "status", "needle"),
    [
        ({"cursor": "garbage"}, 400, "not valid"),
        ({"cursor": "cjE6LTE"}, 400, "not valid"),  # "r1:-1"
        ({"cursor": "x" * 65}, 422, "cursor"),
        ({"limit": "-1"}, 422, "limit"),
        ({"limit": "1001"}, 422, "limit"),
        ({"limit": "99999999999999999999999"}, 422, "limit"),
        ({"limit": "ten"}, 422, "limit"),
        ({"kind": "steps"}, 422, "kind"),
        ({"start_date": "yesterday"}, 422, "start_date"),
        ({"start_date": "0001-01-01T00:00:00+01:00"}, 422, "out of range"),
        ({"end_date": "9999-12-31T23:59:59-05:00"}, 422, "out of range"),
        ({"updated_since": "2026-13-45"}, 422, "updated_since"),
        ({"updated_since": "2026-11-20T25:00:00Z"}, 422, "updated_since"),
        ({"updated_since": "0.5"}, 422, "RFC 3339"),
        ({"start_date": "2026-11-31"}, 422, "calendar date"),
        ({"start_date": "20261120T0700Z"}, 422, "RFC 3339"),
        ({"updated_since": "20261120T250000Z"}, 422, "updated_since"),
        ({"offset": "50"}, 400, "cursor"),
        ({"page[number]": "2"}, 400, "page[after]"),
        ({"limit": "5", "page[limit]": "5"}, 400, "give one"),
        ({"start_date": "2026-11-20T06:00:00"}, 422, "RFC 3339"),
        ({"user_id": ""}, 422, "user_id"),
        ({"device": "x" * 100}, 422, "device"),
    ],
)
async def test_hostile_queries_are_4xx(services, remote_read, params, status, needle) -> None:
    save(services, [glucose(1)])
    response = await remote_read.get("/v1/readings", params=params)
    assert response.status_code == status, response.text
    assert needle in response.text
    assert len((await remote_read.get("/v1/readings")).json()["data"]) == 1


async def test_offsets_are_read_as_instants(services, remote_read) -> None:
    save(services, [glucose(1)])
    a = await remote_read.get("/v1/readings", params={"start_date": "2026-11-20T06:00:00Z"})
    b = await remote_read.get("/v1/readings", params={"start_date": "2026-11-20T07:00:00+01:00"})
    assert a.json() == b.json()
    assert len(a.json()["data"]) == 1
    assert datetime.fromisoformat(a.json()["data"][0]["start_date"]).tzinfo == UTC


async def test_values_match_what_the_uploader_sends(services, remote_read) -> None:
    """The API's values are exactly the upload samples' values (one conversion, in mapping)."""
    bp = blood_pressure(2, systolic=16.04, diastolic=10.66, unit=PressureUnit.KPA, pulse=71.25)
    scale = body(3, weight=154.33, unit=MassUnit.LB, fat_percent=21.456)
    meter = glucose(1, concentration=6.1e-3, unit=GlucoseUnit.MOL_PER_L)
    save(services, [meter, bp, scale])
    zone = services.settings.zone
    by_id = {r["id"]: r for r in (await remote_read.get("/v1/readings")).json()["data"]}
    g = mapping.glucose_sample(meter, zone)
    assert by_id[meter.id]["values"]["glucose"] == {"value": g["value"], "unit": g["unit"]}
    for part, sample in mapping.blood_pressure_sample(bp, zone).items():
        expected = {"value": sample["value"], "unit": sample["unit"]}
        assert by_id[bp.id]["values"][part] == expected
    for name, samples in mapping.body_data([scale], zone).items():
        expected = {"value": samples[0]["value"], "unit": samples[0]["unit"]}
        assert by_id[scale.id]["values"][name] == expected
    assert by_id[meter.id]["start_date"] == g["start_date"]


async def test_unknown_query_parameters_are_refused(services, remote_read) -> None:
    """A typo must not widen the answer: ?user=u1 is not ?user_id=u1."""
    save(services, [glucose(1)])
    response = await remote_read.get("/v1/readings", params={"user": "u1"})
    assert response.status_code == 400
    assert "unknown query parameter(s) user" in response.json()["detail"]
    assert "user_id" in response.json()["detail"]


async def test_repeated_query_parameters_are_refused(services, remote_read) -> None:
    """?user_id=a&user_id=b is ambiguous: refused, not answered for one of them."""
    save(services, [glucose(1)])
    response = await remote_read.get("/v1/readings?user_id=a&user_id=b")
    assert response.status_code == 400
    assert "user_id given more than once" in response.json()["detail"]


async def test_ketone_and_unusable_values_are_shown_but_kept_local(services, remote_read) -> None:
    from drivers.readings import KetoneReading, ReadingFlag

    users.bind(services.db, METER, "u1")
    ketone = KetoneReading(
        id="k1",
        device=METER,
        provider="manual",
        received_at=T0,
        device_time=DeviceTime(2026, 11, 20, 7, 31, 0),
        sequence=1,
        concentration_mmol_l=1.5,
        raw_concentration=15e-5,
        raw_unit=GlucoseUnit.KG_PER_L,
        meal=6,
    )
    nan = glucose(2, concentration=float("nan"))
    save(services, [ketone, nan])
    response = await remote_read.get("/v1/readings", params={"kind": "ketone"})
    assert response.status_code == 200
    [k] = response.json()["data"]
    assert k["values"] == {"ketone": {"value": 1.5, "unit": "mmol/L"}}
    assert (k["state"], k["user_id"], k["raw"]["meal"]) == ("local", "u1", "6")
    [g] = (await remote_read.get("/v1/readings", params={"kind": "glucose"})).json()["data"]
    assert g["values"] == {}  # NaN is no value to show; the flag says so
    assert g["state"] == "local"
    assert ReadingFlag.VALUE_UNUSABLE.value in g["flags"]
    # Junction has no ketone resource and NaN is no sample: no Junction data event for either.
    from gateway.api.reading_events import publish_readings
    from gateway.events import EventBus

    stored = [readings.get_reading(services.db, i) for i in ("k1", nan.id)]
    assert publish_readings(EventBus(), [s for s in stored if s is not None]) == []


@pytest.mark.parametrize(
    ("wanted", "from_cursor", "on_loop"),
    [
        (ReadingFilter(), True, True),
        (ReadingFilter(kind=ReadingKind.GLUCOSE), True, True),
        (ReadingFilter(device="C0:FF:EE:00:00:01", kind=ReadingKind.GLUCOSE), True, True),
        (ReadingFilter(), False, False),  # a first page counts every match
        (ReadingFilter(kind=ReadingKind.GLUCOSE, user_id="u1"), True, False),
        (ReadingFilter(updated_since=datetime(2026, 1, 1, tzinfo=UTC)), True, False),
        (ReadingFilter(start=datetime(2026, 1, 1, tzinfo=UTC)), True, False),
        (ReadingFilter(withdrawn=True), True, False),
        (ReadingFilter(unassigned=True), True, False),
    ],
)
def test_only_short_keyset_walks_skip_the_worker_thread(
    wanted: ReadingFilter, from_cursor: bool, on_loop: bool
) -> None:
    """The event loop also carries BLE notifications: a read that may walk far never runs there."""
    assert _short_walk(wanted, from_cursor) is on_loop
