"""The kiosk browser's attacks in headless Chromium against a real uvicorn.

A page served from a real second origin (`http://127.0.0.1:<other port>`: same site, other
origin, as in the issue) tries to pause uploads, trigger a sync, start a kiosk session,
create a user by form post, read readings and frame the kiosk page; none of it works. A DNS
rebinding is simulated with Chromium's host resolver rules (attacker.example → 127.0.0.1).
The gateway's own page still changes things with its own fetch calls.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import BrowserContext, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from gateway.store import kiosk, users
from tests.gateway.api.conftest import make_services
from tests.gateway.api.live import serve
from tests.gateway.browser import CHROMIUM, chromium

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")

EVIL_PAGE = """<!doctype html>
<html><body>
<iframe id="framed" src="GATEWAY/"></iframe>
<iframe name="sink"></iframe>
<form id="form" method="post" action="GATEWAY/v1/users" enctype="text/plain" target="sink">
  <input name='{"user_id": "mallory", "x": "' value='"}'>
</form>
<script>
const G = "GATEWAY";
async function outcome(promise) {
  try { const r = await promise; return r.type === "opaque" ? "opaque" : r.status; }
  catch (e) { return "blocked"; }
}
window.attack = async () => {
  document.getElementById("form").submit();
  const results = {
    pause: await outcome(fetch(G + "/v1/sync/users/bob/pause", {method: "POST", mode: "no-cors"})),
    trigger: await outcome(fetch(G + "/v1/sync/trigger", {method: "POST", mode: "no-cors"})),
    session: await outcome(fetch(G + "/v1/kiosk/sessions", {
      method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
      body: JSON.stringify({user_id: "mallory"})})),
    marked: await outcome(fetch(G + "/v1/sync/users/bob/pause", {
      method: "POST", headers: {"X-Requested-With": "evil"}})),
    json: await outcome(fetch(G + "/v1/users", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({user_id: "mallory"})})),
    read: await outcome(fetch(G + "/v1/readings")),
  };
  await new Promise((resolve) => setTimeout(resolve, 300));  // let the form post land
  return results;
};
</script>
</body></html>
"""


@contextlib.asynccontextmanager
async def evil_origin(gateway: str) -> AsyncIterator[str]:
    """A second web origin (its own uvicorn on another port) serving the attacker's page."""

    async def page(request: Request) -> HTMLResponse:
        del request
        return HTMLResponse(EVIL_PAGE.replace("GATEWAY", gateway))

    config = uvicorn.Config(
        Starlette(routes=[Route("/", page)]), host="127.0.0.1", port=0, log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def browser(tmp_path) -> AsyncIterator[BrowserContext]:
    # A rebinding attacker's name, resolved to the gateway's address.
    rules = "--host-resolver-rules=MAP attacker.example 127.0.0.1"
    async with chromium(tmp_path / "profile", rules) as context:
        yield context


async def test_cross_origin_page_changes_nothing_and_own_page_works(tmp_path, browser) -> None:
    services = make_services(tmp_path / "data")
    users.upsert_user(services.db, "bob", "Bob")
    session = kiosk.start_session(services.db, "bob", duration=timedelta(minutes=15))
    async with serve(services) as gateway, evil_origin(gateway) as evil:
        attacker = await browser.new_page()
        await attacker.goto(evil + "/")
        results = await attacker.evaluate("window.attack()")

        assert results["marked"] == results["json"] == "blocked"  # preflight refused
        assert results["read"] == "blocked"  # no CORS for other origins
        assert await services.outbox.holds() == {}
        assert services.sync.wakes == 0
        assert [s.user_id for s in kiosk.active_sessions(services.db)] == ["bob"]
        assert [u.user_id for u in users.list_users(services.db)] == ["bob"]

        # The kiosk page cannot be framed (CSP frame-ancestors 'none', X-Frame-Options).
        framed = next(f for f in attacker.frames if f.name != "sink" and f != attacker.main_frame)
        assert await framed.locator("#person-name").count() == 0

        # DNS rebinding: the attacker's name now points at the gateway; its Host is refused.
        port = gateway.rsplit(":", 1)[1]
        rebound = await attacker.goto(f"http://attacker.example:{port}/v1/readings")
        assert rebound is not None
        assert rebound.status == 400

        # The gateway's own page, in the same browser, still changes things.
        own = await browser.new_page()
        csp_errors: list[str] = []
        own.on(
            "console",
            lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None,
        )
        await own.goto(gateway + "/")
        await expect(own.locator("#link")).to_have_attribute("data-state", "live")
        await expect(own.locator("#person-name")).to_have_text("Bob")
        paused = await own.evaluate("api('/v1/sync/users/bob/pause', {method: 'POST'})")
        assert paused["paused"] is True
        assert "bob" in await services.outbox.holds()
        await own.evaluate(f"api('/v1/kiosk/sessions/{session.id}', {{method: 'DELETE'}})")
        await expect(own.locator("#person-name")).to_have_text("Nobody yet")
        assert csp_errors == []
        await own.close()  # its event stream ends before the server does
        await attacker.close()
    services.db.close()
