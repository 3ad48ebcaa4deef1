"""create_app: routes and OpenAPI contract, the page and its assets, mDNS record."""

import ipaddress

import httpx
import pytest
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from gateway.app import create_app
from gateway.mdns import SERVICE_TYPE, advertised_addresses, service_info
from tests.gateway.api.conftest import KIOSK_HEADERS, LOOPBACK, make_services

ROUTES = {
    ("GET", "/v1/readings"),
    ("GET", "/v1/readings/latest"),
    ("GET", "/v1/readings/{reading_id}"),
    ("GET", "/v1/devices"),
    ("GET", "/v1/devices/{address}"),
    ("DELETE", "/v1/devices/{address}"),
    ("POST", "/v1/devices/{address}/pair"),
    ("POST", "/v1/devices/{address}/bindings"),
    ("DELETE", "/v1/devices/{address}/bindings"),
    ("GET", "/v1/users"),
    ("POST", "/v1/users"),
    ("GET", "/v1/users/{user_id}"),
    ("DELETE", "/v1/users/{user_id}"),
    ("GET", "/v1/users/{user_id}/sync"),
    ("PUT", "/v1/users/{user_id}/sign_in_token"),
    ("POST", "/v1/kiosk/sessions"),
    ("GET", "/v1/kiosk/sessions/current"),
    ("DELETE", "/v1/kiosk/sessions/{session_id}"),
    ("POST", "/v1/kiosk/staff/unlock"),
    ("POST", "/v1/kiosk/staff/lock"),
    ("GET", "/v1/kiosk/staff/people"),
    ("POST", "/v1/kiosk/checkins"),
    ("POST", "/v1/kiosk/checkins/redeem"),
    ("GET", "/v1/sync"),
    ("GET", "/v1/sync/dead_letters"),
    ("POST", "/v1/sync/dead_letters/requeue"),
    ("POST", "/v1/sync/trigger"),
    ("POST", "/v1/sync/users/{user_id}/pause"),
    ("POST", "/v1/sync/users/{user_id}/resume"),
    ("GET", "/v1/events"),
    ("GET", "/v1/health"),
    ("GET", "/v1/health/live"),
    ("GET", "/metrics"),
}


@pytest.fixture
async def client(tmp_path):
    services = make_services(tmp_path)
    transport = httpx.ASGITransport(app=create_app(services), client=LOOPBACK)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://localhost", headers=KIOSK_HEADERS
    ) as c:
        yield c
    services.db.close()


async def test_openapi_lists_every_route_with_typed_responses(client) -> None:
    spec = (await client.get("/openapi.json")).json()
    found = {(m.upper(), path) for path, ops in spec["paths"].items() for m in ops}
    assert found == ROUTES
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
            content = ok.get("content", {})
            if path in {"/v1/events", "/metrics"}:
                continue
            schema = content["application/json"]["schema"]
            assert schema != {}, f"{method} {path} answers an untyped body"
    assert (await client.get("/docs")).status_code == 200


async def test_page_and_assets(client) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/static/app.js" in page.text
    for asset, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        response = await client.get(f"/static/{asset}")
        assert response.status_code == 200
        assert kind in response.headers["content-type"]


@pytest.mark.parametrize(
    "path",
    [
        "/static/../config.py",
        "/static/%2e%2e/app.py",
        "/static/..%2F..%2Fpyproject.toml",
        "/static/%2e%2e%2f%2e%2e%2fgateway%2fconfig.py",
        "/static//etc/passwd",
        "/static/nope.js",
    ],
)
async def test_static_path_traversal_is_404(client, path) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert "Settings" not in response.text
    assert "root:" not in response.text


async def test_unknown_route_and_method(client) -> None:
    assert (await client.get("/v1/nothing")).status_code == 404
    response = await client.put("/v1/readings")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    both = await client.patch("/v1/devices/C0:FF:EE:00:00:01")
    assert both.headers["allow"] == "DELETE, GET"


def test_mdns_record() -> None:
    info = service_info(port=8080, addresses=["192.0.2.5", "2001:db8::5"], instance="Clinic 3")
    assert info.type == SERVICE_TYPE == "_edge-gateway._tcp.local."
    assert info.name == "Clinic 3._edge-gateway._tcp.local."
    assert info.port == 8080
    assert set(info.parsed_addresses()) == {"192.0.2.5", "2001:db8::5"}
    assert info.properties[b"path"] == b"/v1"
    assert info.properties[b"auth"] == b"bearer"
    with pytest.raises(ValueError, match="does not appear to be"):
        service_info(port=1, addresses=["not-an-ip"])


def test_advertised_addresses() -> None:
    assert advertised_addresses("192.0.2.7") == ["192.0.2.7"]
    for address in advertised_addresses("0.0.0.0"):  # noqa: S104 - not binding
        assert not ipaddress.ip_address(address.split("%")[0]).is_loopback


async def test_lifespan_advertises_on_loopback_only(tmp_path) -> None:
    """With [api] mdns on and host 127.0.0.1, a browser on lo resolves the service."""
    services = make_services(tmp_path, mdns=True, host="127.0.0.1", port=18080)
    app = create_app(services)
    async with app.router.lifespan_context(app):
        advertiser = app.state.advertiser
        assert advertiser is not None
        browser = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
        try:
            found = AsyncServiceInfo(SERVICE_TYPE, advertiser.info.name)
            assert await found.async_request(browser.zeroconf, 3000)
            assert found.port == 18080
            assert found.parsed_addresses() == ["127.0.0.1"]
            assert found.properties[b"events"] == b"/v1/events"
        finally:
            await browser.async_close()
    services.db.close()
