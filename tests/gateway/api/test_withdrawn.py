"""Readings `reparse` withdrew: a field on /v1/readings items and a filter (read scope)."""

import sqlite3

from gateway.store import readings
from tests.sync.factories import glucose


async def test_withdrawn_readings_are_marked_and_filterable(services, remote_read) -> None:
    zone = services.settings.zone
    readings.save_transfer(services.db, [glucose(1), glucose(2)], zone=zone)
    with sqlite3.connect(services.db.path) as conn:
        conn.execute(
            "UPDATE reading SET withdrawn_at = '2026-11-25T10:00:00.000000+00:00' WHERE id = ?",
            (glucose(2).id,),
        )
    everything = (await remote_read.get("/v1/readings")).json()["data"]
    marks = {item["id"]: item["withdrawn_at"] for item in everything}
    assert marks == {glucose(1).id: None, glucose(2).id: "2026-11-25T10:00:00Z"}
    only = (await remote_read.get("/v1/readings", params={"withdrawn": "true"})).json()["data"]
    assert [item["id"] for item in only] == [glucose(2).id]
    rest = (await remote_read.get("/v1/readings", params={"withdrawn": "false"})).json()["data"]
    assert [item["id"] for item in rest] == [glucose(1).id]


async def test_the_withdrawn_list_needs_a_token_off_loopback(services) -> None:
    from tests.gateway.api.conftest import REMOTE, client_for

    async with client_for(services, REMOTE) as anonymous:
        response = await anonymous.get("/v1/readings", params={"withdrawn": "true"})
    assert response.status_code == 401
