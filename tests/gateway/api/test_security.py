"""The API's protective layers, in process (the attacks over real servers and a real browser
are in test_security_live.py and tests/gateway/test_kiosk_security.py)."""

import json

import pytest

from gateway.api.hosts import allowed_hosts, interface_addresses
from gateway.app import create_app
from gateway.config import ApiSettings
from gateway.store import tokens
from gateway.store.tokens import Scope
from tests.gateway.api.conftest import KIOSK_HEADERS, LOOPBACK, REMOTE, client_for, make_services

PAUSE = "/v1/sync/users/bob/pause"
EVIL = "http://127.0.0.1:18999"  # another port on the same host: same site, other origin


async def holds(services) -> dict:
    return await services.outbox.holds()


# ---------------------------------------------------------------- cross-site requests


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": EVIL, "Content-Type": "text/plain"},
        {"Origin": "null"},  # sandboxed frame, file: page
        {"Origin": EVIL, **KIOSK_HEADERS},  # even with the marking header
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", **KIOSK_HEADERS},
    ],
)
async def test_cross_site_state_change_is_refused_and_changes_nothing(services, headers) -> None:
    async with client_for(services) as client:
        response = await client.post(PAUSE, headers=headers)
        trigger = await client.post("/v1/sync/trigger", headers=headers)
    assert response.status_code == trigger.status_code == 403
    assert "cross-site" in response.json()["detail"]
    assert await holds(services) == {}
    assert services.sync.wakes == 0


async def test_cross_site_state_change_is_refused_with_a_token_too(services, admin_token) -> None:
    async with client_for(services, REMOTE, admin_token) as client:
        response = await client.post(PAUSE, headers={"Origin": "http://evil.example"})
    assert response.status_code == 403
    assert await holds(services) == {}


async def test_tokenless_loopback_change_needs_the_header_or_json(services) -> None:
    async with client_for(services) as client:
        bare = await client.post(PAUSE)
        deleted = await client.delete("/v1/users/bob")
        plain = await client.post(PAUSE, headers={"Content-Type": "text/plain"}, content=b"{}")
        form = await client.post("/v1/users", data={"user_id": "mallory"})
        assert {bare.status_code, deleted.status_code, plain.status_code, form.status_code} == {403}
        assert "X-Requested-With" in bare.json()["detail"]
        assert await holds(services) == {}
        marked = await client.post(PAUSE, headers=KIOSK_HEADERS)
        assert marked.status_code == 200
        created = await client.post("/v1/users", json={"user_id": "ada"})  # JSON body
        assert created.status_code == 201
    assert "bob" in await holds(services)


async def test_same_origin_page_request_is_trusted(services) -> None:
    same = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin", **KIOSK_HEADERS}
    async with client_for(services) as client:
        assert (await client.post(PAUSE, headers=same)).status_code == 200


async def test_token_clients_need_no_marking_header(services, admin_token) -> None:
    async with client_for(services, REMOTE, admin_token) as client:
        assert (await client.post("/v1/sync/trigger")).status_code == 202
    assert services.sync.wakes == 1


@pytest.mark.parametrize("headers", [{"Sec-Fetch-Site": "cross-site"}, {"Origin": EVIL}])
async def test_cross_site_reads_get_no_loopback_exemption(services, headers) -> None:
    async with client_for(services) as client:
        response = await client.get("/v1/readings", headers=headers)
        page = await client.get("/", headers=headers)
    assert response.status_code == 401
    assert "no loopback exemption" in response.json()["detail"]
    assert page.status_code == 200  # the page itself needs no credentials


# ---------------------------------------------------------------- CORS


async def test_cors_is_closed_by_default(services) -> None:
    preflight = {"Origin": EVIL, "Access-Control-Request-Method": "POST"}
    async with client_for(services) as client:
        response = await client.options(PAUSE, headers=preflight)
        read = await client.get("/v1/health", headers={"Origin": EVIL})
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in read.headers


async def test_configured_origin_gets_cors_but_still_needs_a_token(tmp_path) -> None:
    services = make_services(tmp_path, cors_origins=[EVIL])
    token, _ = tokens.create_token(services.db, Scope.ADMIN, "dashboard")
    preflight = {
        "Origin": EVIL,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    async with client_for(services) as client:
        allowed = await client.options(PAUSE, headers=preflight)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == EVIL
        tokenless = await client.post(PAUSE, headers={"Origin": EVIL, **KIOSK_HEADERS})
        assert tokenless.status_code == 401
        with_token = await client.post(
            PAUSE, headers={"Origin": EVIL, "Authorization": f"Bearer {token}"}
        )
        assert with_token.status_code == 200
        other = await client.options(PAUSE, headers={**preflight, "Origin": "http://x.example"})
        assert "access-control-allow-origin" not in other.headers
    services.db.close()


# ---------------------------------------------------------------- Host header


@pytest.mark.parametrize("host", ["attacker.example:18080", "attacker.example", "gateway", ""])
async def test_unknown_host_gets_400(services, host) -> None:
    async with client_for(services) as client:
        response = await client.get("/v1/readings", headers={"Host": host})
        created = await client.post(
            "/v1/kiosk/sessions", json={"user_id": "made-up"}, headers={"Host": host}
        )
    assert response.status_code == created.status_code == 400
    assert response.headers["x-frame-options"] == "DENY"  # headers on refusals too


@pytest.mark.parametrize("host", ["localhost:8080", "127.0.0.1:8080", "[::1]:8080", "LOCALHOST"])
async def test_loopback_hosts_are_allowed(services, host) -> None:
    async with client_for(services) as client:
        assert (await client.get("/v1/health", headers={"Host": host})).status_code == 200


async def test_configured_and_mdns_names_are_allowed(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "clinic-3")
    services = make_services(tmp_path, allowed_hosts=["gateway.clinic.example", "*.lan"], mdns=True)
    async with client_for(services) as client:
        for host in ("gateway.clinic.example", "box.lan:8080", "clinic-3.local"):
            assert (await client.get("/v1/health", headers={"Host": host})).status_code == 200
        assert (
            await client.get("/v1/health", headers={"Host": "clinic-4.local"})
        ).status_code == 400
    services.db.close()


async def test_the_bound_address_is_allowed(tmp_path) -> None:
    services = make_services(tmp_path, host="192.0.2.7")
    async with client_for(services) as client:
        assert (await client.get("/v1/health", headers={"Host": "192.0.2.7"})).status_code == 200
    services.db.close()


def test_allowed_hosts_for_wildcard_and_ipv6_binds() -> None:
    wildcard = allowed_hosts(ApiSettings(host="0.0.0.0"))  # noqa: S104 - a setting
    assert {"localhost", "127.0.0.1", "[::1]"} <= set(wildcard)
    for address in interface_addresses():
        assert address in wildcard or f"[{address}]" in wildcard
    assert "[2001:db8::5]" in allowed_hosts(ApiSettings(host="2001:db8::5"))
    assert "attacker.example" not in wildcard


# ---------------------------------------------------------------- bodies


class Receiver:
    """An ASGI receive that counts how often the app asked for the body."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.calls = 0

    async def __call__(self) -> dict:
        self.calls += 1
        return {"type": "http.request", "body": self.body, "more_body": False}


async def asgi_post(app, path: str, headers: dict[str, str], receiver: Receiver, peer=REMOTE):
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": peer,
        "server": ("127.0.0.1", 8080),
    }
    await app(scope, receiver, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body) if body else None


async def test_oversized_content_length_gets_413_before_the_body_is_read(
    services, admin_token
) -> None:
    app = create_app(services)
    receiver = Receiver(b"{}")
    headers = {
        "host": "localhost",
        "content-type": "application/json",
        "content-length": str(100 * 1024 * 1024),
        "authorization": f"Bearer {admin_token}",
    }
    status, body = await asgi_post(app, "/v1/users", headers, receiver)
    assert status == 413
    assert "[api] max_body_bytes" in body["detail"]
    assert receiver.calls == 0


async def test_bad_token_gets_401_before_the_body_is_read(services) -> None:
    app = create_app(services)
    receiver = Receiver(b'{"user_id": "mallory"}')
    headers = {
        "host": "localhost",
        "content-type": "application/json",
        "content-length": "22",
        "authorization": "Bearer egw_nope",
    }
    status, _ = await asgi_post(app, "/v1/users", headers, receiver)
    assert status == 401
    assert receiver.calls == 0


async def test_streamed_body_over_the_limit_gets_413(tmp_path) -> None:
    services = make_services(tmp_path, max_body_bytes=4096)

    async def chunks():
        for _ in range(100):
            yield b" " * 1024

    async with client_for(services, LOOPBACK, headers=KIOSK_HEADERS) as client:
        response = await client.post(
            "/v1/users", content=chunks(), headers={"Content-Type": "application/json"}
        )
        small = await client.post("/v1/users", json={"user_id": "ada", "name": "A" * 100})
    assert response.status_code == 413
    assert "4096 bytes" in response.json()["detail"]
    assert small.status_code == 201
    services.db.close()


async def test_validation_errors_do_not_echo_the_input(local) -> None:
    secret = "sekrit-sign-in-token-" + "z" * 5000
    response = await local.post("/v1/users", json={"user_id": "bad id!", "sign_in_token": secret})
    assert response.status_code == 422
    assert "sekrit" not in response.text
    assert "bad id!" not in response.text
    for err in response.json()["detail"]:
        assert set(err) == {"type", "loc", "msg"}
    broken = await local.post(
        "/v1/users", content=b'{"user_id": "mallory-' + b"x" * 3000, headers=KIOSK_HEADERS
    )
    assert broken.status_code in {400, 422}
    assert "mallory" not in broken.text


# ---------------------------------------------------------------- response headers


@pytest.mark.parametrize("path", ["/", "/v1/readings", "/v1/nothing", "/static/app.js"])
async def test_security_headers_on_page_and_api(local, path) -> None:
    response = await local.get(path)
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self';" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert "server" not in response.headers or "uvicorn" not in response.headers["server"]


async def test_docs_page_may_load_swagger_but_not_be_framed(local) -> None:
    response = await local.get("/docs")
    assert response.status_code == 200
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    # Swagger UI comes from the gateway itself: no CDN allowed, none needed.
    assert "https:" not in response.headers["content-security-policy"]
