"""/v1/kiosk/sessions: start, current, end; events on the bus; attribution of readings."""

import dataclasses
from datetime import UTC, datetime

import pytest

from gateway.events import KIOSK_SESSION_ENDED, KIOSK_SESSION_STARTED
from gateway.store import readings, users
from tests.sync.factories import glucose


async def test_start_current_end(services, remote_admin) -> None:
    users.upsert_user(services.db, "u1", "Ada")
    before = services.events.last_id
    response = await remote_admin.post(
        "/v1/kiosk/sessions",
        json={"user_id": "u1", "device": "c0:ff:ee:00:00:01", "duration_s": 600},
    )
    assert response.status_code == 201
    session = response.json()
    assert session["user_id"] == "u1"
    assert session["name"] == "Ada"
    assert session["device"] == "C0:FF:EE:00:00:01"
    current = (await remote_admin.get("/v1/kiosk/sessions/current")).json()["data"]
    assert [s["id"] for s in current] == [session["id"]]
    events, _ = services.events.since(before)
    assert events[0].event_type == KIOSK_SESSION_STARTED
    assert events[0].user_id == "u1"
    ended = await remote_admin.delete(f"/v1/kiosk/sessions/{session['id']}")
    assert ended.json() == {"deleted": True}
    assert (await remote_admin.get("/v1/kiosk/sessions/current")).json() == {"data": []}
    assert services.events.since(before)[0][-1].event_type == KIOSK_SESSION_ENDED
    assert (await remote_admin.delete(f"/v1/kiosk/sessions/{session['id']}")).status_code == 404


async def test_session_attributes_readings(services, remote_admin) -> None:
    await remote_admin.post("/v1/kiosk/sessions", json={"user_id": "walk-in-7"})
    reading = dataclasses.replace(glucose(1), received_at=datetime.now(UTC))
    readings.save_transfer(services.db, [reading], zone=services.settings.zone)
    page = (await remote_admin.get("/v1/readings", params={"user_id": "walk-in-7"})).json()
    assert len(page["data"]) == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"user_id": "u", "duration_s": 0},
        {"user_id": "u", "duration_s": 10**9},
        {"user_id": "u", "device": "meter"},
        {"user_id": "u", "device": None, "x": 1},
    ],
)
async def test_bad_sessions_are_422(services, remote_admin, body) -> None:
    assert (await remote_admin.post("/v1/kiosk/sessions", json=body)).status_code == 422
    assert (await remote_admin.get("/v1/kiosk/sessions/current")).json() == {"data": []}


@pytest.mark.parametrize("session_id", ["0", "-1", "abc", str(2**63), "1.5"])
async def test_bad_session_ids_are_4xx(remote_admin, session_id) -> None:
    response = await remote_admin.delete(f"/v1/kiosk/sessions/{session_id}")
    assert response.status_code in {404, 422}
    assert "detail" in response.json()
