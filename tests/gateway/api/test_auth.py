"""Every auth case: loopback exemption, missing/malformed/unknown/revoked tokens, scopes."""

import asyncio

import pytest

from gateway.api.auth import is_loopback
from gateway.store import tokens
from gateway.store.tokens import Scope
from tests.gateway.api.conftest import LOOPBACK, REMOTE, client_for, make_services
from tests.gateway.test_cli_token import cli

READ_ROUTE = "/v1/readings"
ADMIN_ROUTE = "/v1/sync/trigger"


async def test_loopback_without_token_is_admin(local) -> None:
    assert (await local.get(READ_ROUTE)).status_code == 200
    assert (await local.post(ADMIN_ROUTE)).status_code == 202


async def test_loopback_trust_can_be_switched_off(tmp_path) -> None:
    services = make_services(tmp_path, trust_loopback=False)
    async with client_for(services, LOOPBACK) as client:
        response = await client.get(READ_ROUTE)
    assert response.status_code == 401
    services.db.close()


async def test_remote_without_token_gets_401_with_remedy(services) -> None:
    async with client_for(services, REMOTE) as client:
        response = await client.get(READ_ROUTE)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "edge-gateway token create" in response.json()["detail"]


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "token abc"])
async def test_malformed_header_gets_401(services, header) -> None:
    async with client_for(services, REMOTE) as client:
        response = await client.get(READ_ROUTE, headers={"Authorization": header})
    assert response.status_code == 401
    assert "Bearer <token>" in response.json()["detail"]


@pytest.mark.parametrize("token", ["egw_nope", "x" * 5000])
async def test_unknown_token_gets_401(services, token) -> None:
    async with client_for(services, REMOTE, token) as client:
        response = await client.get(READ_ROUTE)
    assert response.status_code == 401
    assert "unknown or revoked" in response.json()["detail"]


async def test_bad_token_from_loopback_is_still_refused(services) -> None:
    async with client_for(services, LOOPBACK, "egw_nope") as client:
        assert (await client.get(READ_ROUTE)).status_code == 401


async def test_revoked_token_gets_401(services) -> None:
    token, info = tokens.create_token(services.db, Scope.ADMIN)
    async with client_for(services, REMOTE, token) as client:
        assert (await client.get(READ_ROUTE)).status_code == 200
        tokens.revoke_token(services.db, info.id)
        assert (await client.get(READ_ROUTE)).status_code == 401


async def test_a_token_revoked_by_the_cli_in_another_process_fails_its_next_request(
    services, tmp_path
) -> None:
    """The gate checks tokens in memory; a revoke elsewhere reloads the map (data_version)."""
    config = tmp_path / "gateway.toml"
    config.write_text(f'data_dir = "{services.settings.data_dir}"\n')
    token, info = tokens.create_token(services.db, Scope.READ)
    async with client_for(services, REMOTE, token) as client:
        assert (await client.get(READ_ROUTE)).status_code == 200
        revoked = cli("token", "revoke", str(info.id), config=config)
        assert revoked.returncode == 0, revoked.stderr
        assert (await client.get(READ_ROUTE)).status_code == 401
    created = cli("token", "create", "--scope", "read", config=config)
    assert created.returncode == 0, created.stderr
    async with client_for(services, REMOTE, created.stdout.splitlines()[-1]) as client:
        assert (await client.get(READ_ROUTE)).status_code == 200


async def test_a_check_that_would_wait_is_answered_off_the_event_loop(services) -> None:
    """Another thread holding the token map: the gate does not block the loop, and still
    answers (from a worker thread) once the map is free."""
    token, _ = tokens.create_token(services.db, Scope.READ)
    assert tokens.verify_token(services.db, token) is Scope.READ  # the map exists now
    held = tokens._CACHES[services.db]._lock  # what a thread checking a token holds
    with pytest.raises(tokens.WouldBlockError), held:
        tokens.verify_token(services.db, token, wait=False)
    async with client_for(services, REMOTE, token) as client:
        held.acquire()
        try:
            pending = asyncio.ensure_future(client.get(READ_ROUTE))
            await asyncio.sleep(0.2)
            assert not pending.done()  # waiting in a worker thread, the loop is free
        finally:
            held.release()
        assert (await pending).status_code == 200


async def test_read_scope_reads_but_cannot_change(remote_read) -> None:
    assert (await remote_read.get(READ_ROUTE)).status_code == 200
    response = await remote_read.post(ADMIN_ROUTE)
    assert response.status_code == 403
    assert "scope 'admin'" in response.json()["detail"]
    response = await remote_read.post("/v1/users", json={"user_id": "u1"})
    assert response.status_code == 403
    assert (await remote_read.get("/v1/users")).json() == {"data": []}  # nothing changed


async def test_admin_scope_does_everything(remote_admin) -> None:
    assert (await remote_admin.get(READ_ROUTE)).status_code == 200
    assert (await remote_admin.post(ADMIN_ROUTE)).status_code == 202


async def test_health_and_page_need_no_token(services) -> None:
    async with client_for(services, REMOTE) as client:
        assert (await client.get("/v1/health")).status_code == 200
        assert (await client.get("/")).status_code == 200
        assert (await client.get("/metrics")).status_code == 401


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("127.5.5.5", True),
        ("10.0.0.1", False),
        ("", False),
        (None, False),
        ("testclient", False),
        ("fe80::1%eth0", False),
    ],
)
def test_is_loopback(host, expected) -> None:
    assert is_loopback(host) is expected
