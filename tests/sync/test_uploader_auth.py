"""Sign-In Token mode end to end: the uploader, the client and the stub's /v1/token."""

import asyncio

import httpx
import pytest
from pydantic import SecretStr

from sync.junction.client import JunctionClient
from sync.outbox import SyncStatus, UserHold
from tests.sync.conftest import API_KEY
from tests.sync.factories import glucose, item


@pytest.fixture
async def bearer_client(stub_server):
    client = JunctionClient(
        base_url=stub_server.base_url,
        auth_url=stub_server.auth_url,
        api_key=None,
        read_timeout_s=2.0,
    )
    yield client
    await client.aclose()


async def _sign_in_token(server, user_id):
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.post(
            f"/v2/user/{user_id}/sign_in_token", headers={"x-vital-api-key": API_KEY}
        )
    return SecretStr(answer.json()["sign_in_token"])


async def _drain(uploader):
    await asyncio.wait_for(uploader.run(until_idle=True), 20)


async def test_bearer_upload_survives_a_401_by_refreshing(
    stub_server, outbox, bearer_client, make_uploader
):
    uploader = make_uploader(client=bearer_client)
    await uploader.sign_in("u", await _sign_in_token(stub_server, "u"))
    session = await bearer_client.tokens._store.get("u")
    stub_server.stub.access_tokens.clear()  # the server forgets the access token: 401
    await outbox.enqueue([item(glucose(), user_id="u")])
    await _drain(uploader)
    assert len(stub_server.stub.samples) == 1
    rotated = await bearer_client.tokens._store.get("u")
    assert rotated.refresh_token != session.refresh_token


async def test_not_signed_in_parks_the_user_until_sign_in(
    stub_server, outbox, bearer_client, make_uploader
):
    uploader = make_uploader(client=bearer_client)
    await outbox.enqueue([item(glucose(), user_id="u")])
    await _drain(uploader)
    assert await outbox.holds() == {"u": frozenset({UserHold.NOT_SIGNED_IN})}
    assert stub_server.stub.samples == {}
    await uploader.sign_in("u", await _sign_in_token(stub_server, "u"))
    await _drain(uploader)
    assert len(stub_server.stub.samples) == 1
    assert await outbox.holds() == {}


@pytest.mark.parametrize(
    ("error_type", "hold", "status", "purged"),
    [
        ("reauthentication_required", UserHold.REAUTHENTICATION_REQUIRED,
         SyncStatus.CONNECTION_PAUSED, False),
        ("invalid_token", UserHold.CREDENTIALS_REVOKED, SyncStatus.CONNECTION_DESTROYED, True),
    ],
)  # fmt: skip
async def test_refresh_refusals_hold_the_user_and_spare_others(
    stub_server, outbox, bearer_client, make_uploader, error_type, hold, status, purged
):
    uploader = make_uploader(client=bearer_client)
    for user in ("bad", "good"):
        await uploader.sign_in(user, await _sign_in_token(stub_server, user))
    stub = stub_server.stub
    stub.auth_errors["bad"] = error_type
    for token, session in list(stub.access_tokens.items()):
        if session.user_id == "bad":
            del stub.access_tokens[token]
    await outbox.enqueue([item(glucose(), user_id="bad"), item(glucose(), user_id="good")])
    await _drain(uploader)
    assert {d["user_id"] for d in stub.samples.values()} == {"good"}
    assert await outbox.holds() == {"bad": frozenset({hold})}
    [progress] = await outbox.progress("bad")
    assert progress.status is status
    assert (await bearer_client.tokens._store.get("bad") is None) is purged
    del stub.auth_errors["bad"]
    await uploader.sign_in("bad", await _sign_in_token(stub_server, "bad"))
    await _drain(uploader)
    assert {d["user_id"] for d in stub.samples.values()} == {"good", "bad"}
