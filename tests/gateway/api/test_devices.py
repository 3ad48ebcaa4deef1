"""/v1/devices: state, pairing with a passkey, forget, bindings."""

from datetime import UTC, datetime

import pytest

from gateway.events import DEVICE_FORGOTTEN, PAIRING_FINISHED, PAIRING_STARTED
from gateway.services import MemoryRadar, NoPairing, RadarDevice
from gateway.store import devices, readings, users
from gateway.store.devices import BondState
from tests.gateway.api.conftest import client_for
from tests.sync.factories import blood_pressure, glucose

METER = "C0:FF:EE:00:00:01"
CUFF = "C0:FF:EE:00:00:02"
SCALE = "C0:FF:EE:00:00:03"


def save(services, items) -> None:
    readings.save_transfer(services.db, items, zone=services.settings.zone)


async def test_list_joins_store_radar_and_stats(services, remote_read) -> None:
    users.bind(services.db, METER, "u1")
    save(services, [glucose(1), glucose(2)])
    save(services, [blood_pressure(3)])
    devices.upsert_device(
        services.db, METER, kind="glucose", name="meter", battery_percent=80, clock_skew_s=-3.5
    )
    radar = MemoryRadar()
    radar.update(RadarDevice(METER, name="meter", kind="glucose", rssi=-60))
    radar.update(RadarDevice(SCALE, name="scale", kind="body", rssi=-70, needs_passkey=False))
    radar.update(
        RadarDevice(
            CUFF,
            kind="blood_pressure",
            needs_passkey=True,
            seen_at=datetime(2026, 11, 20, tzinfo=UTC),
        )
    )
    services.radar = radar
    data = (await remote_read.get("/v1/devices")).json()["data"]
    by = {d["address"]: d for d in data}
    assert list(by) == [METER, CUFF, SCALE]
    meter = by[METER]
    assert meter["in_range"] is True
    assert meter["rssi"] == -60
    assert meter["readings"] == 2
    assert meter["pending_uploads"] == 2
    assert meter["battery_percent"] == 80
    assert meter["clock_skew_s"] == -3.5
    assert meter["next_step"] == "press_button"
    assert meter["last_reading_at"] == "2026-11-20T06:02:00Z"
    assert meter["bindings"] == [
        {"device": METER, "device_user": None, "user_id": "u1", "provider": None}
    ]
    assert by[CUFF]["next_step"] == "pair"
    assert by[CUFF]["unassigned_readings"] == 1
    assert by[SCALE]["next_step"] == "step_on"
    one = await remote_read.get(f"/v1/devices/{METER.lower()}")
    assert one.json() == meter
    assert (await remote_read.get("/v1/devices/AA:BB:CC:DD:EE:FF")).status_code == 404


async def test_pair_with_passkey(services, remote_admin) -> None:
    before = services.events.last_id
    wrong = await remote_admin.post(f"/v1/devices/{CUFF}/pair", json={"passkey": 111111})
    assert wrong.status_code == 200
    assert wrong.json()["paired"] is False
    assert wrong.json()["bond_state"] == "failed"
    ok = await remote_admin.post(f"/v1/devices/{CUFF}/pair", json={"passkey": 123456})
    assert ok.json() == {
        "address": CUFF,
        "paired": True,
        "bond_state": "bonded",
        "message": f"{CUFF} paired",
    }
    assert devices.get_device(services.db, CUFF).bond_state is BondState.BONDED
    events, _ = services.events.since(before)
    assert [e.event_type for e in events] == [PAIRING_STARTED, PAIRING_FINISHED] * 2
    listed = (await remote_admin.get(f"/v1/devices/{CUFF}")).json()
    assert listed["bonded"] is True


@pytest.mark.parametrize(
    "body", [{"passkey": -1}, {"passkey": 1_000_000}, {"passkey": "abc"}, {"pin": 1}, []]
)
async def test_pair_rejects_bad_passkeys(services, remote_admin, body) -> None:
    response = await remote_admin.post(f"/v1/devices/{CUFF}/pair", json=body)
    assert response.status_code == 422
    assert devices.get_device(services.db, CUFF) is None


async def test_pair_without_radio_is_409(services, remote_admin) -> None:
    services.pairing = NoPairing()
    response = await remote_admin.post(f"/v1/devices/{CUFF}/pair", json={"passkey": 123456})
    assert response.status_code == 409
    assert "edge-gateway run" in response.json()["detail"]


async def test_forget(services, remote_admin) -> None:
    devices.upsert_device(services.db, METER, kind="glucose")
    response = await remote_admin.delete(f"/v1/devices/{METER}")
    assert response.json() == {"deleted": True}
    assert devices.get_device(services.db, METER) is None
    assert services.events.since(services.events.last_id - 1)[0][0].event_type == DEVICE_FORGOTTEN
    assert (await remote_admin.delete(f"/v1/devices/{METER}")).status_code == 404


async def test_bind_assigns_backlog_and_unbind(services, remote_admin) -> None:
    save(services, [blood_pressure(1, user_index=1), blood_pressure(2, user_index=2)])
    response = await remote_admin.post(
        f"/v1/devices/{CUFF}/bindings", json={"user_id": "u7", "device_user": 2}
    )
    assert response.status_code == 201
    assert response.json() == {
        "binding": {"device": CUFF, "device_user": 2, "user_id": "u7", "provider": None},
        "assigned_readings": 1,
    }
    page = (await remote_admin.get("/v1/readings", params={"user_id": "u7"})).json()
    assert [r["user_index"] for r in page["data"]] == [2]
    assert (
        await remote_admin.delete(f"/v1/devices/{CUFF}/bindings?device_user=1")
    ).status_code == 404
    assert (await remote_admin.delete(f"/v1/devices/{CUFF}/bindings?device_user=2")).json() == {
        "deleted": True
    }
    assert users.list_bindings(services.db) == []


async def test_binding_a_scale_slot_stores_its_consent_code(services, remote_admin) -> None:
    body = {"user_id": "u8", "device_user": 1, "consent_code": 1234}
    response = await remote_admin.post(f"/v1/devices/{CUFF}/bindings", json=body)
    assert response.status_code == 201
    stored = devices.get_device(services.db, CUFF)
    assert stored is not None
    assert dict(stored.consent_codes) == {1: 1234}


@pytest.mark.parametrize(
    "path",
    ["/v1/devices/not-an-address", "/v1/devices/C0:FF:EE:00:00", "/v1/devices/..%2F..%2Fetc"],
)
async def test_bad_addresses_are_4xx(remote_admin, path) -> None:
    assert (await remote_admin.get(path)).status_code in {404, 422}
    assert (await remote_admin.delete(path)).status_code in {404, 405, 422}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"user_id": ""},
        {"user_id": "a b"},
        {"user_id": "u", "device_user": 999},
        {"user_id": "u", "provider": "Bad Slug"},
        {"user_id": "u", "extra": 1},
        {"user_id": "u", "consent_code": 1234},
        {"user_id": "u", "device_user": 1, "consent_code": 10000},
    ],
)
async def test_bad_bindings_are_422_and_change_nothing(services, remote_admin, body) -> None:
    response = await remote_admin.post(f"/v1/devices/{CUFF}/bindings", json=body)
    assert response.status_code == 422
    assert users.list_bindings(services.db) == []


async def test_read_token_cannot_pair_or_forget(services, read_token) -> None:
    devices.upsert_device(services.db, METER)
    async with client_for(services, ("192.0.2.1", 1), read_token) as client:
        assert (await client.post(f"/v1/devices/{CUFF}/pair", json={})).status_code == 403
        assert (await client.delete(f"/v1/devices/{METER}")).status_code == 403
    assert devices.get_device(services.db, METER) is not None
