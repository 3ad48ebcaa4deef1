"""The local API in its clients' vocabularies: real uvicorn, requests as those clients send them.

One test per row of README's "API conventions" table; each sends the parameters exactly as
the seed documents them (shared/seeds: Human API 003 "Patterns and Conventions", Fitbit Plus
004 "Paging", Validic v1 001 "Summary Object" / "Accessing the Latest Information").
The gateway's zone is Europe/Berlin (UTC+1 in November), so a date that meant a UTC day
would give different answers.
"""

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from drivers.readings import DeviceTime, GlucoseUnit, MassUnit, PressureUnit, ReadingFlag
from gateway.api.reading_events import publish_readings
from gateway.services import Services
from gateway.store import readings, users
from gateway.store.aio import call
from sync.junction import mapping
from tests.gateway.api.live import serve, sse_messages
from tests.sync.factories import T0, blood_pressure, body, glucose

METER = "C0:FF:EE:00:00:01"
CUFF = "C0:FF:EE:00:00:02"
SCALE = "C0:FF:EE:00:00:03"


def at(day: int, hour: int, minute: int = 0) -> DeviceTime:
    """Device wall time (Europe/Berlin) on 2026-11-`day`."""
    return DeviceTime.from_datetime(datetime(2026, 11, day, hour, minute))  # noqa: DTZ001


def save(services: Services, items, now: datetime = T0) -> None:
    readings.save_transfer(services.db, items, zone=services.settings.zone, now=now)


@contextlib.asynccontextmanager
async def app_client(
    services: Services, token: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A nearby app off the box: loopback exemption off, token in the header if given."""
    services.settings.api.trust_loopback = False
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with serve(services) as url, httpx.AsyncClient(base_url=url, headers=headers) as client:
        yield client


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    body_ = response.json()
    return [r["id"] for r in body_["data"]]


# ---------------------------------------------------------------- Human API


async def test_human_api_dates_are_whole_days_in_the_gateway_zone(services, read_token) -> None:
    late_19 = glucose(1, device_time=at(19, 23, 30))  # 22:30Z on the 19th
    early_20 = glucose(2, device_time=at(20, 0, 30))  # 23:30Z on the 19th: the 20th in Berlin
    late_20 = glucose(3, device_time=at(20, 23, 59))  # 22:59Z on the 20th
    early_21 = glucose(4, device_time=at(21, 0, 10))  # 23:10Z on the 20th: the 21st in Berlin
    save(services, [late_19, early_20, late_20, early_21])
    async with app_client(services, read_token) as client:
        # Human API "Date Ranges": start_date and end_date together, Format YYYY-MM-DD.
        one_day = await client.get(
            "/v1/readings", params={"start_date": "2026-11-20", "end_date": "2026-11-20"}
        )
        two_days = await client.get("/v1/readings?start_date=2026-11-19&end_date=2026-11-20")
        rfc3339 = await client.get(
            "/v1/readings",
            params={"start_date": "2026-11-20T00:00:00+01:00", "end_date": "2026-11-20T23:00:00Z"},
        )
    assert ids(one_day) == [early_20.id, late_20.id]
    assert ids(two_days) == [late_19.id, early_20.id, late_20.id]
    assert ids(rfc3339) == [early_20.id, late_20.id]


async def test_human_api_updated_since_in_basic_format(services, read_token) -> None:
    old, new = glucose(1), glucose(2)
    save(services, [old], now=datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
    save(services, [new], now=datetime(2026, 11, 20, 10, 0, 1, tzinfo=UTC))
    async with app_client(services, read_token) as client:
        # "All dates are in UTC date format: YYYYMMDDTHHmmssZ"
        basic = await client.get("/v1/readings?updated_since=20261120T100001Z")
        rfc = await client.get(
            "/v1/readings", params={"updated_since": "2026-11-20T11:00:01+01:00"}
        )
        before = await client.get("/v1/readings?updated_before=20261120T100001Z")
        bad = await client.get("/v1/readings?updated_since=20261120T1000Z")
    assert ids(basic) == ids(rfc) == [new.id]
    assert ids(before) == [old.id]
    assert bad.status_code == 422
    assert "YYYY" in bad.text or "20261120T073000Z" in bad.text  # names the accepted forms


async def test_human_api_source_is_the_provider_slug(services, read_token) -> None:
    g, bp = glucose(1), blood_pressure(2)
    save(services, [g, bp])
    async with app_client(services, read_token) as client:
        omron = await client.get("/v1/readings?source=omron_ble")
        accuchek = await client.get("/v1/readings?source=accuchek_ble")
        nothing = await client.get("/v1/readings?source=googlefit")
        bad = await client.get("/v1/readings?source=Omron BLE")
    assert ids(omron) == [bp.id]
    assert ids(accuchek) == [g.id]
    assert ids(nothing) == []
    assert bad.status_code == 422


async def test_human_api_link_and_total_count_headers(services, read_token) -> None:
    first = [glucose(seq) for seq in range(1, 8)]
    save(services, first)
    seen: list[str] = []
    async with app_client(services, read_token) as client:
        # "/activities?start_date=2013-01-01&limit=50&offset=0", then follow Link rel="next".
        response = await client.get("/v1/readings?start_date=2026-11-20&limit=3&offset=0")
        assert response.headers["X-Total-Count"] == "7"  # counted once, on the first page
        while True:
            seen.extend(ids(response))
            link = response.links.get("next")
            if link is None:
                break
            assert link["url"].startswith(str(client.base_url))
            response = await client.get(link["url"])
        offset = await client.get("/v1/readings?start_date=2026-11-20&limit=3&offset=3")
    assert seen == [r.id for r in first]
    assert offset.status_code == 400
    assert "cursor" in offset.json()["detail"]
    assert "Link" in offset.json()["detail"]


async def test_human_api_access_token_query_parameter(services, read_token, admin_token) -> None:
    save(services, [glucose(1)])
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    async with app_client(services) as client:
        access = logging.getLogger("uvicorn.access")
        access.addHandler(handler)
        access.setLevel(logging.INFO)
        try:
            ok = await client.get(f"/v1/readings?access_token={read_token}")
            # Same scopes as the header: a read token cannot change anything.
            refused = await client.post(
                f"/v1/users?access_token={read_token}", json={"user_id": "u9"}
            )
            admin = await client.post(
                f"/v1/users?access_token={admin_token}", json={"user_id": "u9"}
            )
            wrong = await client.get("/v1/readings?access_token=not-a-token")
            twice = await client.get(
                f"/v1/readings?access_token={read_token}",
                headers={"Authorization": f"Bearer {read_token}"},
            )
            paged = await client.get(f"/v1/readings?limit=0&access_token={read_token}")
        finally:
            access.removeHandler(handler)
    assert ok.status_code == 200
    assert len(ids(ok)) == 1
    assert refused.status_code == 403
    assert admin.status_code in {200, 201}
    assert wrong.status_code == 401
    assert "not-a-token" not in wrong.text
    assert twice.status_code == 401
    assert paged.json()["meta"]["count"] == 1
    # Never echoed, never logged.
    for response in (ok, refused, admin, wrong, twice, paged):
        assert read_token not in response.text
        assert read_token not in str(response.headers)
    assert "access_token=***" in lines.getvalue()  # the access log ran, redacted
    assert read_token not in lines.getvalue()
    assert admin_token not in lines.getvalue()


# ---------------------------------------------------------------- Fitbit Plus


async def test_fitbit_plus_cursor_paging_links_meta_and_count_alone(services, read_token) -> None:
    first = [glucose(seq) for seq in range(1, 6)]
    save(services, first)
    seen: list[str] = []
    async with app_client(services, read_token) as client:
        count = await client.get("/v1/readings", params={"page[limit]": "0"})
        size_zero = await client.get("/v1/readings", params={"page[size]": "0"})
        response = await client.get("/v1/readings", params={"page[limit]": "2"})
        assert response.json()["meta"] == {"count": 5}
        added = False
        while True:
            page = response.json()
            seen.extend(ids(response))
            nxt = page["links"]["next"]
            if nxt is None:
                break
            assert "page%5Bafter%5D=" in nxt or "page[after]=" in nxt
            if not added:  # inserted while paging: seen once, at the end
                await call(save, services, [glucose(50)])
                added = True
            response = await client.get(nxt)
        assert response.json()["meta"] == {"count": None}  # a later page: not recounted
        skip = await client.get("/v1/readings", params={"page[size]": "2", "page[number]": "2"})
        mixed = await client.get("/v1/readings", params={"page[size]": "2", "page[limit]": "2"})
    assert count.status_code == 200
    assert count.json()["data"] == []
    assert count.json()["meta"] == {"count": 5}
    assert size_zero.json()["meta"] == {"count": 5}
    assert seen == [r.id for r in first] + [glucose(50).id]
    assert len(seen) == len(set(seen))
    assert skip.status_code == 400
    assert "page[after]" in skip.json()["detail"]
    assert mixed.status_code == 400


async def test_reading_updated_while_paging_reappears_later(services, read_token) -> None:
    """README: a reading that changes during paging shows up again later; dedupe by id."""
    first = [glucose(seq) for seq in range(1, 5)]
    save(services, first)  # unassigned
    seen: list[str] = []
    async with app_client(services, read_token) as client:
        response = await client.get("/v1/readings", params={"page[limit]": "2"})
        seen.extend(ids(response))
        await call(
            readings.assign_readings, services.db, [first[0].id], "u1", zone=services.settings.zone
        )
        while (nxt := response.json()["links"]["next"]) is not None:
            response = await client.get(nxt)
            seen.extend(ids(response))
    assert seen == [r.id for r in first] + [first[0].id]
    assert set(seen) == {r.id for r in first}


# ---------------------------------------------------------------- Validic


async def test_validic_latest_window_with_summary(services, read_token) -> None:
    users.bind(services.db, METER, "u1")
    # Measured long ago, stored in the window: latest is about when data arrived.
    stored_0400 = datetime(2026, 11, 20, 4, 0, 30, tzinfo=UTC)
    in_window = [glucose(seq, device_time=at(1, 7, seq)) for seq in range(1, 4)]
    save(services, [glucose(9)], now=stored_0400 - timedelta(minutes=10))
    save(services, in_window, now=stored_0400)
    save(services, [blood_pressure(10)], now=stored_0400 + timedelta(minutes=5))
    async with app_client(services, read_token) as client:
        # Validic: "latest.json?start_date=2014-03-09T10:00:00Z&end_date=2014-03-09T10:04:59Z"
        window = await client.get(
            "/v1/readings/latest?start_date=2026-11-20T04:00:00Z&end_date=2026-11-20T04:04:59Z"
            "&limit=2"
        )
        # The documented "+00:00" arrives form-decoded as a space when sent unencoded.
        raw_plus = await client.get(
            "/v1/readings/latest?start_date=2026-11-20T05:00:00+01:00&end_date=2026-11-20T04:04:59Z"
        )
        updated = await client.get(
            "/v1/readings/latest",
            params={"updated_since": "20261120T040000Z", "updated_before": "20261120T040500Z"},
        )
        per_kind = await client.get("/v1/readings/latest")
        twice = await client.get(
            "/v1/readings/latest?start_date=2026-11-20&updated_since=2026-11-20"
        )
        summary = window.json()["summary"]
        rest = await client.get(summary["next"])
        later_page_headers = rest.headers
    assert ids(window) == [r.id for r in in_window[:2]]
    assert summary["results"] == 3
    assert summary["limit"] == 2
    assert summary["status"] == 200
    assert summary["start_date"] == "2026-11-20T04:00:00Z"
    assert summary["end_date"] == "2026-11-20T04:05:00Z"  # inclusive to the second
    assert summary["params"]["end_date"] == "2026-11-20T04:04:59Z"
    assert ids(rest) == [in_window[2].id]
    assert rest.json()["summary"]["next"] is None
    assert rest.json()["summary"]["results"] is None  # counted on the first page only
    assert "X-Total-Count" not in later_page_headers
    assert window.headers["X-Total-Count"] == "3"
    assert ids(raw_plus) == [r.id for r in in_window]
    assert ids(updated) == [r.id for r in in_window]
    # Without a window, latest keeps its meaning: the newest reading per kind.
    assert set(per_kind.json()["data"]) == {"glucose", "blood_pressure"}
    assert per_kind.json()["data"]["glucose"]["id"] == glucose(9).id  # measured last
    assert twice.status_code == 400


@pytest.mark.parametrize(
    "query",
    [
        "start_date=2026-11-20T04:00:00Z&offset=100",
        "end_date=2026-13-01",
        "updated_since=yesterday",
        "limit=5000",
    ],
)
async def test_validic_window_bad_input_is_4xx(services, read_token, query) -> None:
    async with app_client(services, read_token) as client:
        response = await client.get(f"/v1/readings/latest?{query}")
    assert response.status_code in {400, 422}
    assert "detail" in response.json()


async def test_openapi_documents_every_parameter_and_header(services) -> None:
    async with app_client(services) as client:
        schema = (await client.get("/openapi.json")).json()
    listing = schema["paths"]["/v1/readings"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert {
        "start_date",
        "end_date",
        "updated_since",
        "updated_before",
        "source",
        "limit",
        "offset",
        "cursor",
        "page[limit]",
        "page[after]",
        "page[size]",
        "page[number]",
        "access_token",
    } <= names
    assert {"Link", "X-Total-Count"} <= set(listing["responses"]["200"]["headers"])
    latest = {p["name"] for p in schema["paths"]["/v1/readings/latest"]["get"]["parameters"]}
    assert {"updated_since", "updated_before", "start_date", "end_date", "limit"} <= latest
    events = {p["name"] for p in schema["paths"]["/v1/events"]["get"]["parameters"]}
    assert "access_token" in events


# ---------------------------------------------------------------- Junction events


async def stream(client: httpx.AsyncClient, n: int, path: str) -> list[dict]:
    """The first `n` SSE messages' envelopes, as a browser EventSource would get them."""
    out: list[dict] = []
    async with asyncio.timeout(5), client.stream("GET", path) as response:
        assert response.status_code == 200, await response.aread()
        async for message in sse_messages(response):
            out.append(message["data"])
            if len(out) == n:
                break
    return out


async def attached(services: Services) -> None:
    async with asyncio.timeout(5):
        while services.events.subscribers < 1:
            await asyncio.sleep(0.01)


def save_and_publish(services: Services, items) -> None:
    """What the collector does after a transfer: commit, then publish the new readings."""
    saved = readings.save_transfer(services.db, items, zone=services.settings.zone)
    publish_readings(services.events, [readings.get_reading(services.db, i) for i in saved.new_ids])


async def test_junction_daily_events_carry_junction_samples(services, read_token) -> None:
    users.bind(services.db, METER, "u1")
    users.bind(services.db, CUFF, "u1")
    users.bind(services.db, SCALE, "u1")
    g = glucose(1, concentration=0.00104, unit=GlucoseUnit.KG_PER_L)
    bp = blood_pressure(2, systolic=16.0, diastolic=10.0, unit=PressureUnit.KPA, pulse=64.0)
    w = body(3, device=SCALE, weight=154.0, unit=MassUnit.LB, fat_percent=21.5)
    async with app_client(services) as client:
        # A page off the box: EventSource cannot send headers, so the token rides in the query.
        task = asyncio.create_task(stream(client, 5, f"/v1/events?access_token={read_token}"))
        await attached(services)
        await call(save_and_publish, services, [g])
        await call(save_and_publish, services, [bp])
        await call(save_and_publish, services, [w])
        events = await task
    by_type = {e["event_type"]: e for e in events}
    assert list(by_type) == [
        "daily.data.glucose.created",
        "daily.data.blood_pressure.created",
        "daily.data.heartrate.created",
        "daily.data.weight.created",
        "daily.data.fat.created",
    ]
    glucose_event = by_type["daily.data.glucose.created"]
    assert glucose_event["user_id"] == "u1"
    assert glucose_event["data"]["source"] == {
        "provider": "accuchek_ble",
        "type": "fingerprick",
        "app_id": None,
        "device_id": METER,
    }
    assert glucose_event["data"]["data"] == [
        {
            "timestamp": "2026-11-20T06:01:00+00:00",  # 07:01 Berlin
            "timezone_offset": 3600,
            "type": None,
            "unit": "mmol/L",
            "value": mapping.glucose_mmol_per_l(0.00104, GlucoseUnit.KG_PER_L),
        }
    ]
    assert glucose_event["data"]["reading_ids"] == [g.id]
    [pressure] = by_type["daily.data.blood_pressure.created"]["data"]["data"]
    assert pressure["unit"] == "mmHg"
    assert pressure["systolic"] == mapping.pressure_mmhg(16.0, PressureUnit.KPA)
    assert pressure["diastolic"] == mapping.pressure_mmhg(10.0, PressureUnit.KPA)
    assert "value" not in pressure
    [pulse] = by_type["daily.data.heartrate.created"]["data"]["data"]
    assert (pulse["unit"], pulse["value"]) == ("bpm", 64.0)
    assert by_type["daily.data.heartrate.created"]["data"]["source"]["type"] == "cuff"
    [weight] = by_type["daily.data.weight.created"]["data"]["data"]
    assert (weight["unit"], weight["value"]) == ("kg", mapping.mass_kg(154.0, MassUnit.LB))
    [fat] = by_type["daily.data.fat.created"]["data"]["data"]
    assert (fat["unit"], fat["value"]) == ("%", 21.5)
    assert by_type["daily.data.fat.created"]["data"]["source"]["type"] == "scale"


async def test_junction_historical_event_for_a_first_read(services, read_token) -> None:
    users.bind(services.db, METER, "u1")
    backlog = [
        glucose(seq, device_time=at(1 + seq, 9), flags=frozenset({ReadingFlag.HISTORICAL}))
        for seq in range(1, 4)
    ]
    async with app_client(services, read_token) as client:
        task = asyncio.create_task(stream(client, 1, "/v1/events"))
        await attached(services)
        await call(save_and_publish, services, backlog)
        [event] = await task
        # Junction: a historical event carries no samples; fetch the range afterwards.
        window = event["data"]
        back = await client.get(
            "/v1/readings",
            params={
                "user_id": window["user_id"],
                "start_date": window["start_date"],
                "end_date": window["end_date"],
            },
        )
    assert event["event_type"] == "historical.data.glucose.created"
    assert set(window) == {"user_id", "start_date", "end_date", "provider"}
    assert window["provider"] == "accuchek_ble"
    assert window["start_date"] == "2026-11-02T08:00:00+00:00"  # 09:00 Berlin, earliest
    assert ids(back) == [r.id for r in backlog]


async def test_junction_updated_event_when_a_reading_changes(services, admin_token) -> None:
    unassigned = [glucose(1), glucose(2)]
    save(services, unassigned)
    async with app_client(services) as client:
        task = asyncio.create_task(stream(client, 1, f"/v1/events?access_token={admin_token}"))
        await attached(services)
        bound = await client.post(
            f"/v1/devices/{METER}/bindings",
            json={"user_id": "u1"},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        [event] = await task
    assert bound.status_code == 201
    assert bound.json()["assigned_readings"] == 2
    assert event["event_type"] == "daily.data.glucose.updated"
    assert event["user_id"] == event["data"]["user_id"] == "u1"
    assert event["data"]["reading_ids"] == [r.id for r in unassigned]
    assert [s["unit"] for s in event["data"]["data"]] == ["mmol/L", "mmol/L"]
