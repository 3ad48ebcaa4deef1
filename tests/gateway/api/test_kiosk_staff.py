"""/v1/kiosk/staff and /v1/kiosk/checkins: PIN unlock and lockout, search, staff sessions,
check-in codes (made, redeemed once, forged or expired refused).
"""

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from gateway.config import Settings
from gateway.kiosk import checkin
from gateway.kiosk.pin import hash_pin
from gateway.services import Services, standalone_services
from gateway.store import kiosk, tokens, users
from gateway.store.tokens import Scope
from tests.gateway.api.conftest import KIOSK_HEADERS, REMOTE, client_for

PIN = "2468"
PIN_HASH = hash_pin(PIN)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    settings = Settings(
        data_dir=tmp_path / "data",
        kiosk={"staff_pin_hash": PIN_HASH, "pin_attempts": 3, "lockout_s": 60},
    )
    built = standalone_services(settings)
    users.upsert_user(built.db, "u-ada", "Ada Lovelace", "MRN-0001")
    users.upsert_user(built.db, "u-alan", "Alan Turing", "MRN-0002")
    users.upsert_user(built.db, "u-grace", "Grace Hopper", "MRN-1003")
    yield built
    built.db.close()


@pytest.fixture
async def tablet(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """A kiosk tablet on the network with a read-scoped token: staff mode is its only way in."""
    token = tokens.create_token(services.db, Scope.READ, "kiosk tablet")[0]
    async with client_for(services, REMOTE, token) as client:
        yield client


async def _unlock(client: httpx.AsyncClient, pin: str = PIN) -> httpx.Response:
    return await client.post("/v1/kiosk/staff/unlock", json={"pin": pin})


async def test_unlock_search_start_end_lock(services, tablet) -> None:
    # Locked: no search, no session.
    assert (await tablet.get("/v1/kiosk/staff/people", params={"q": "ada"})).status_code == 403
    refused = await tablet.post("/v1/kiosk/sessions", json={"user_id": "u-ada"})
    assert refused.status_code == 403
    assert kiosk.active_sessions(services.db) == []

    unlocked = await _unlock(tablet)
    assert unlocked.status_code == 200
    grant = {"X-Kiosk-Staff": unlocked.json()["staff_token"]}
    assert unlocked.json()["valid_s"] == 120

    by_name = await tablet.get("/v1/kiosk/staff/people", params={"q": "a"}, headers=grant)
    assert [p["user_id"] for p in by_name.json()["data"]] == ["u-ada", "u-alan", "u-grace"]
    by_mrn = await tablet.get("/v1/kiosk/staff/people", params={"q": "mrn-10"}, headers=grant)
    assert by_mrn.json()["data"] == [
        {"user_id": "u-grace", "name": "Grace Hopper", "client_user_id": "MRN-1003"}
    ]
    wildcard = await tablet.get("/v1/kiosk/staff/people", params={"q": "%"}, headers=grant)
    assert wildcard.json()["data"] == []

    started = await tablet.post(
        "/v1/kiosk/sessions",
        json={"user_id": "u-ada", "device": "C0:FF:EE:00:00:02"},
        headers=grant,
    )
    assert started.status_code == 201
    session = started.json()
    length = datetime.fromisoformat(session["expires_at"]) - datetime.fromisoformat(
        session["started_at"]
    )
    assert length == timedelta(seconds=900)  # [kiosk] session_s
    ended = await tablet.delete(f"/v1/kiosk/sessions/{session['id']}", headers=grant)
    assert ended.json() == {"deleted": True}

    assert (await tablet.post("/v1/kiosk/staff/lock", headers=grant)).json() == {"locked": True}
    after = await tablet.get("/v1/kiosk/staff/people", params={"q": "ada"}, headers=grant)
    assert after.status_code == 403


async def test_wrong_pins_lock_staff_mode_even_for_the_right_pin(services, tablet) -> None:
    first = await _unlock(tablet, "0000")
    assert first.status_code == 403
    assert "2 more wrong" in first.json()["detail"]
    assert (await _unlock(tablet, "1111")).status_code == 403
    locked = await _unlock(tablet, "9999")
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) == 60
    again = await _unlock(tablet, PIN)  # the right PIN waits out the lockout too
    assert again.status_code == 429
    assert "locked" in again.json()["detail"]
    assert PIN not in again.text


async def test_staff_mode_off_without_a_pin(tmp_path) -> None:
    built = standalone_services(Settings(data_dir=tmp_path / "data"))
    async with client_for(built, headers=KIOSK_HEADERS) as local:
        response = await local.post("/v1/kiosk/staff/unlock", json={"pin": "1234"})
    assert response.status_code == 409
    assert "kiosk set-pin" in response.json()["detail"]
    built.db.close()


async def test_unlock_still_needs_the_apis_own_authentication(services) -> None:
    async with client_for(services, REMOTE) as stranger:  # no token, not loopback
        assert (await _unlock(stranger)).status_code == 401
    async with client_for(services) as unmarked:  # loopback, tokenless, not JSON-marked
        response = await unmarked.post(
            "/v1/kiosk/staff/unlock", content=f'{{"pin": "{PIN}"}}'.encode()
        )
        assert response.status_code == 403


@pytest.mark.parametrize("body", [{}, {"pin": 1234}, {"pin": "1" * 65}, {"pin": "1", "x": 1}])
async def test_bad_unlock_bodies_are_422_and_cost_no_try(services, tablet, body) -> None:
    response = await tablet.post("/v1/kiosk/staff/unlock", json=body)
    assert response.status_code == 422
    assert (await _unlock(tablet)).status_code == 200


async def test_checkin_code_starts_one_session(services, tablet) -> None:
    grant = {"X-Kiosk-Staff": (await _unlock(tablet)).json()["staff_token"]}
    made = await tablet.post("/v1/kiosk/checkins", json={"user_id": "u-alan"}, headers=grant)
    assert made.status_code == 201
    code = made.json()["code"]
    assert made.json()["path"].startswith("/?checkin=")
    key_file = services.settings.data_dir / checkin.KEY_FILENAME
    assert key_file.stat().st_mode & 0o777 == 0o600

    redeemed = await tablet.post("/v1/kiosk/checkins/redeem", json={"code": code})
    assert redeemed.status_code == 201
    assert redeemed.json()["user_id"] == "u-alan"
    assert [s.user_id for s in kiosk.active_sessions(services.db)] == ["u-alan"]
    replay = await tablet.post("/v1/kiosk/checkins/redeem", json={"code": code})
    assert replay.status_code == 400
    assert "already used" in replay.json()["detail"]


async def test_forged_and_expired_codes_start_nothing(services, tablet) -> None:
    key = checkin.load_key(services.settings.data_dir)
    expired, _ = checkin.make_code(
        key,
        "u-ada",
        ttl=timedelta(seconds=60),
        session_s=600,
        now=datetime.now(UTC) - timedelta(minutes=5),
    )
    forged, _ = checkin.make_code(b"k" * 32, "u-ada", ttl=timedelta(minutes=5), session_s=600)
    genuine, _ = checkin.make_code(key, "u-ada", ttl=timedelta(minutes=5), session_s=600)
    signature = genuine.partition(".")[2]
    other_user, _ = checkin.make_code(key, "u-grace", ttl=timedelta(minutes=5), session_s=600)
    swapped = f"{other_user.partition('.')[0]}.{signature}"
    for code, why in [
        (expired, "expired"),
        (forged, "not signed"),
        (swapped, "not signed"),
        ("nonsense", "not a check-in code"),
    ]:
        response = await tablet.post("/v1/kiosk/checkins/redeem", json={"code": code})
        assert response.status_code == 400, code
        assert why in response.json()["detail"]
    assert kiosk.active_sessions(services.db) == []


async def test_checkins_need_admin_or_staff(services, tablet) -> None:
    refused = await tablet.post("/v1/kiosk/checkins", json={"user_id": "u-ada"})
    assert refused.status_code == 403
    admin = tokens.create_token(services.db, Scope.ADMIN, "app")[0]
    async with client_for(services, REMOTE, admin) as app:
        unknown = await app.post("/v1/kiosk/checkins", json={"user_id": "nobody"})
        assert unknown.status_code == 404
        made = await app.post("/v1/kiosk/checkins", json={"user_id": "u-ada"})
        assert made.status_code == 201


async def test_client_user_id_is_unique(services) -> None:
    admin = tokens.create_token(services.db, Scope.ADMIN, "app")[0]
    async with client_for(services, REMOTE, admin) as app:
        clash = await app.post("/v1/users", json={"user_id": "u-new", "client_user_id": "MRN-0001"})
        assert clash.status_code == 409
        assert "u-ada" in clash.json()["detail"]
        assert (await app.get("/v1/users/u-new")).status_code == 404
        fine = await app.post("/v1/users", json={"user_id": "u-new", "client_user_id": "MRN-9"})
        assert fine.json()["client_user_id"] == "MRN-9"
        renamed = await app.post("/v1/users", json={"user_id": "u-new", "name": "Nova"})
        assert renamed.json()["client_user_id"] == "MRN-9"  # unchanged by a rename
