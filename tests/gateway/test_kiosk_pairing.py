"""Pairing from the kiosk page while the gateway runs, in headless Chromium.

The whole runtime (`build_gateway`: collector, Bleak, the simulated BlueZ, the API) serves
the page. The meter demands a bond: the collector's first read fails "not paired", which
must put the device on the pairing step (passkey field); the passkey typed on the page pairs
it through the gateway's own BlueZ agent while the collector keeps running, and the meter
is then read at once: its reading appears on the page. Also: the page says "Loading…" until
its first answers, dates readings from other days and counts the ones past its list ("+N more").
"""

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, Route, expect

from drivers.bleak_link import BleakRadio
from drivers.simulator.scenario import GlucoseDevice, GlucoseRecord, Scenario
from gateway.config import ApiSettings, Binding, JunctionSettings, Settings
from gateway.pairing import BlePairing
from gateway.runtime import Gateway, build_gateway
from gateway.services import MemoryRadar, RadarDevice
from gateway.store import devices, kiosk, readings
from gateway.store.devices import BondState
from tests.gateway.api.conftest import make_services
from tests.gateway.api.live import serve
from tests.gateway.test_kiosk_page import (  # the browser fixture too
    CHROMIUM,
    OTHER_METER,
    browser,  # noqa: F401
)
from tests.sync.factories import glucose

METER = "C0:FF:EE:00:00:21"
PASSKEY = 246810

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


@pytest.fixture
def scenario() -> Scenario:
    taken = datetime.now(UTC).replace(microsecond=0, tzinfo=None) - timedelta(minutes=5)
    return Scenario(
        devices=[
            GlucoseDevice(
                kind="glucose",
                address=METER,
                name="meter+00024680",
                manufacturer="Roche",
                passkey=PASSKEY,
                pairing="passkey",
                records=[GlucoseRecord(seq=1, time=taken, mg_dl=104)],
            )
        ]
    )


@pytest.fixture
async def gateway(tmp_path: Path, simulator) -> AsyncIterator[tuple[Gateway, int]]:
    del simulator  # running: the meter advertises on the private bus
    settings = Settings(
        data_dir=tmp_path / "data",
        timezone="UTC",
        # Uploads are not this test's concern: nothing listens there, the uploader retries.
        junction=JunctionSettings(base_url="http://127.0.0.1:9"),
        api=ApiSettings(port=0),
        ble={"poll_interval_s": 1.0},
        bindings=[Binding(device=METER, user_id="alice")],
    )
    radio = BleakRadio(attempts=1)
    gateway = build_gateway(settings, radio, pairing=BlePairing(radio=radio))
    gateway.collector.failure_backoff_s = 0.5  # retry the refused meter soon
    kiosk.start_session(gateway.db, "alice", duration=timedelta(hours=1))
    stop = asyncio.Event()
    ports: asyncio.Queue[int | None] = asyncio.Queue()
    runner = asyncio.create_task(gateway.serve(stop, on_running=ports.put_nowait))
    port = await asyncio.wait_for(ports.get(), 30)
    assert port is not None
    try:
        yield gateway, port
    finally:
        stop.set()
        await asyncio.wait_for(runner, 60)


async def test_a_meter_that_needs_a_passkey_is_paired_from_the_page_then_read(
    gateway: tuple[Gateway, int],
    browser: Browser,  # noqa: F811 - the imported fixture
) -> None:
    running, port = gateway
    page = await browser.new_page()
    await page.goto(f"http://127.0.0.1:{port}/")
    card = page.locator(f"#device-list li[data-address='{METER}']")
    # The collector's read was refused "not paired": the page asks for the passkey.
    await expect(card.locator(".step")).to_have_text(
        "Enter the passkey shown on the device", timeout=20_000
    )
    assert not await page.locator("#reading-list li").count()

    await card.locator("input[name=passkey]").fill(str(PASSKEY))
    await card.locator("button[type=submit]").click()
    await expect(card.locator(".pair-result")).to_have_text("Paired ✓", timeout=30_000)
    # Never "Enter the passkey" next to "Paired ✓".
    await expect(card.locator(".step")).not_to_have_text("Enter the passkey shown on the device")

    # Read at once after pairing, while the gateway kept running: the reading shows.
    reading = page.locator("#reading-list li[data-kind=glucose]")
    await expect(reading).to_have_count(1, timeout=30_000)
    stored = devices.get_device(running.db, METER)
    assert stored is not None
    assert stored.bond_state is BondState.BONDED


async def test_the_page_says_loading_until_it_knows_then_dates_and_more(
    tmp_path: Path,
    browser: Browser,  # noqa: F811 - the imported fixture
) -> None:
    services = make_services(tmp_path / "data")
    services.radar = MemoryRadar(services.events)
    services.radar.update(RadarDevice(OTHER_METER, name="meter", kind="glucose", rssi=-50))
    kiosk.start_session(services.db, "ada", duration=timedelta(minutes=15))
    # 14 readings measured on 2026-11-20 (another day), stored during the session.
    for seq in range(1, 15):
        reading = dataclasses.replace(glucose(seq), received_at=datetime.now(UTC))
        readings.save_transfer(services.db, [reading], zone=services.settings.zone)
    held: asyncio.Event = asyncio.Event()

    async def hold_session(route: Route) -> None:
        await held.wait()
        await route.continue_()

    async with serve(services) as url:
        page = await browser.new_page()
        await page.route("**/v1/kiosk/sessions/current", hold_session)
        await page.goto(url + "/")
        # Before the first answer: neither "Nobody yet" nor "No device in range".
        await expect(page.locator("#person-name")).to_have_text("Loading…")
        await expect(page.locator("#no-devices")).to_be_hidden()
        await expect(page.locator("#no-readings")).to_be_hidden()
        held.set()
        await expect(page.locator("#person-name")).to_have_text("Welcome")  # no name, no id
        rows = page.locator("#reading-list li.reading")
        await expect(rows).to_have_count(12)
        await expect(page.locator("#reading-list li.more")).to_have_text("+2 more")
        # Not today: the date is shown with the time.
        await expect(rows.first.locator(".what")).to_contain_text("Nov 20")
        await expect(page.locator(f"[data-address='{OTHER_METER}']")).to_be_visible()


async def test_docs_render_with_no_network_beyond_the_gateway(
    tmp_path: Path,
    browser: Browser,  # noqa: F811 - the imported fixture
) -> None:
    services = make_services(tmp_path / "data")
    outside: list[str] = []

    async def offline(route: Route) -> None:
        outside.append(route.request.url)
        await route.abort()

    async with serve(services) as url:
        page = await browser.new_page()
        await page.route(lambda u: not u.startswith(url), offline)
        await page.goto(url + "/docs")
        await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Edge Gateway")
        await page.goto(url + "/redoc")
        await expect(page.locator("h1")).to_contain_text("Edge Gateway")
    assert outside == []
