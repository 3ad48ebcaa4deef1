"""PUT /v1/users/{user_id}/sign_in_token with real Sign-In Tokens from the strict Junction stub.

Issue 16 item 4: before, a token issued for another user was accepted ("user x signed in")
and every upload then failed with 401.
"""

import httpx
import pytest

from sync.junction.client import JunctionClient
from sync.junction.regions import Environment, Region
from sync.junction.stub import JunctionStub, create_app
from sync.junction.stub_server import StubServer
from sync.uploader import Uploader

KEY = "sk_us_claims"


@pytest.fixture
async def stub():
    state = JunctionStub(api_key=KEY, region=Region.EU, environment=Environment.SANDBOX)
    async with StubServer(create_app(stub=state, users=["alice", "bob"])) as server:
        yield server


async def _token(stub, user_id):
    async with httpx.AsyncClient(base_url=stub.base_url) as http:
        answer = await http.post(
            f"/v2/user/{user_id}/sign_in_token", headers={"x-vital-api-key": KEY}
        )
    return answer.json()["sign_in_token"]


async def _route_with(services, stub, remote_admin, region):
    client = JunctionClient(
        base_url=stub.base_url, auth_url=stub.auth_url, region=region, environment="sandbox"
    )
    services.sync = Uploader(services.outbox, client, time_zone="UTC")
    for user in ("alice", "bob"):
        await remote_admin.post("/v1/users", json={"user_id": user})
    return client


async def test_uid_must_be_the_paths_user_and_used_tokens_say_so(services, stub, remote_admin):
    client = await _route_with(services, stub, remote_admin, "eu")
    url = "/v1/users/alice/sign_in_token"
    response = await remote_admin.put(url, json={"sign_in_token": await _token(stub, "bob")})
    assert response.status_code == 400
    assert "issued for user bob, not alice" in response.json()["detail"]
    token = await _token(stub, "alice")
    assert (await remote_admin.put(url, json={"sign_in_token": token})).status_code == 200
    again = await remote_admin.put(url, json={"sign_in_token": token})
    assert again.status_code == 400
    assert "already used or expired" in again.json()["detail"]
    assert "purged" not in again.json()["detail"]
    assert (await client.tokens.access_token("alice")).get_secret_value()
    await client.aclose()


async def test_an_issuer_of_another_region_is_flagged(services, stub, remote_admin):
    client = await _route_with(services, stub, remote_admin, "us")
    response = await remote_admin.put(
        "/v1/users/alice/sign_in_token", json={"sign_in_token": await _token(stub, "alice")}
    )
    assert response.status_code == 400
    assert "sandbox/eu" in response.json()["detail"]
    assert "configured for sandbox/us" in response.json()["detail"]
    assert [r for r in stub.stub.requests if r.path == "/v1/token"] == [], "nothing exchanged"
    await client.aclose()
