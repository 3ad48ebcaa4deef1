"""/v1/users: add, list, sync state, Sign-In Token, remove."""

from datetime import timedelta

import pytest
from pydantic import SecretStr

from gateway.store import kiosk, users
from sync.errors import InvalidTokenError, OfflineError
from sync.outbox import UserHold

CUFF = "C0:FF:EE:00:00:02"


class RecordingSync:
    """A SyncControl that records sign-ins and fails on demand."""

    def __init__(self, outbox, error: Exception | None = None) -> None:
        self.outbox = outbox
        self.error = error
        self.tokens: dict[str, str] = {}
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1

    async def pause(self, user_id: str) -> None:
        await self.outbox.set_hold(user_id, UserHold.PAUSED, held=True)

    async def resume(self, user_id: str) -> None:
        await self.outbox.set_hold(user_id, UserHold.PAUSED, held=False)

    async def sign_in(self, user_id: str, sign_in_token: SecretStr) -> None:
        if self.error is not None:
            raise self.error
        self.tokens[user_id] = sign_in_token.get_secret_value()


async def test_add_list_get(remote_admin) -> None:
    response = await remote_admin.post("/v1/users", json={"user_id": "u1", "name": "Ada"})
    assert response.status_code == 201
    created = response.json()
    assert created["user_id"] == "u1"
    assert created["name"] == "Ada"
    assert created["sync"] == {"holds": [], "paused": False, "streams": [], "dead_letters": 0}
    await remote_admin.post(f"/v1/devices/{CUFF}/bindings", json={"user_id": "u1"})
    listed = (await remote_admin.get("/v1/users")).json()["data"]
    assert [u["user_id"] for u in listed] == ["u1"]
    assert listed[0]["bindings"][0]["device"] == CUFF
    assert (await remote_admin.get("/v1/users/u1")).json() == listed[0]
    assert (await remote_admin.get("/v1/users/u1/sync")).json() == listed[0]["sync"]
    assert (await remote_admin.get("/v1/users/nobody")).status_code == 404
    assert (await remote_admin.get("/v1/users/nobody/sync")).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"user_id": ""},
        {"user_id": "x" * 200},
        {"user_id": "../etc"[0:0] + "a/b"},
        {"user_id": "u", "name": "n" * 500},
        {"user_id": 5},
    ],
)
async def test_bad_users_are_422(services, remote_admin, body) -> None:
    assert (await remote_admin.post("/v1/users", json=body)).status_code == 422
    assert users.list_users(services.db) == []


async def test_sign_in_token(services, remote_admin) -> None:
    fake = RecordingSync(services.outbox)
    services.sync = fake
    await remote_admin.post("/v1/users", json={"user_id": "u1"})
    body = {"sign_in_token": "sit_0123456789"}
    response = await remote_admin.put("/v1/users/u1/sign_in_token", json=body)
    assert response.status_code == 200
    assert fake.tokens == {"u1": "sit_0123456789"}
    response = await remote_admin.put("/v1/users/u2/sign_in_token", json=body)
    assert response.status_code == 404
    assert (
        await remote_admin.put("/v1/users/u1/sign_in_token", json={"sign_in_token": "x"})
    ).status_code == 422


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidTokenError("u1: revoked; ask for a new token", user_id="u1"), 400),
        (ValueError("not a sign-in token"), 400),
        (OfflineError("junction unreachable"), 503),
    ],
)
async def test_sign_in_errors(services, remote_admin, error, status) -> None:
    services.sync = RecordingSync(services.outbox, error)
    await remote_admin.post("/v1/users", json={"user_id": "u1"})
    response = await remote_admin.put(
        "/v1/users/u1/sign_in_token", json={"sign_in_token": "sit_0123456789"}
    )
    assert response.status_code == status
    assert "sit_0123456789" not in response.text


async def test_sign_in_without_uploader_is_409(remote_admin) -> None:
    await remote_admin.post("/v1/users", json={"user_id": "u1"})
    response = await remote_admin.put(
        "/v1/users/u1/sign_in_token", json={"sign_in_token": "sit_0123456789"}
    )
    assert response.status_code == 409
    assert "edge-gateway run" in response.json()["detail"]


async def test_remove_user(services, remote_admin) -> None:
    await remote_admin.post(f"/v1/devices/{CUFF}/bindings", json={"user_id": "u1"})
    await remote_admin.post(
        f"/v1/devices/{CUFF}/bindings", json={"user_id": "u1", "device_user": 1}
    )
    await remote_admin.post(
        f"/v1/devices/{CUFF}/bindings", json={"user_id": "u2", "device_user": 2}
    )
    kiosk.start_session(services.db, "u1", duration=timedelta(minutes=5))
    response = await remote_admin.delete("/v1/users/u1")
    assert response.json() == {
        "user_id": "u1",
        "bindings_removed": 2,
        "kiosk_sessions_ended": 1,
        "paused": True,
    }
    assert [b.user_id for b in users.list_bindings(services.db)] == ["u2"]
    assert kiosk.active_sessions(services.db) == []
    assert (await remote_admin.get("/v1/users/u1/sync")).json()["paused"] is True
    assert (await remote_admin.delete("/v1/users/nobody")).status_code == 404
