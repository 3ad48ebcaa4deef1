"""The kiosk page in headless Chromium (Debian's, via Playwright) against a real uvicorn.

"A simulated reading appears live within a second": the reading is driven through the same
entry points the collector uses after a transfer: `gateway.store.readings.save_transfer`
(attributed to the kiosk session's person) and then `publish_readings` on the event bus.
A screenshot is saved to ``test-artifacts/kiosk-page.png``.
"""

import dataclasses
import shutil
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, expect

from gateway.api.reading_events import publish_readings
from gateway.api.schemas import reading_out
from gateway.events import reading_event_type
from gateway.services import MemoryRadar, RadarDevice, ScriptedPairing
from gateway.store import kiosk, readings, users
from tests.gateway.api.conftest import KIOSK_HEADERS, make_services
from tests.gateway.api.live import serve
from tests.gateway.browser import CHROMIUM, chromium
from tests.sync.factories import blood_pressure, glucose

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
METER = "C0:FF:EE:00:00:01"
CUFF = "C0:FF:EE:00:00:02"
SCALE = "C0:FF:EE:00:00:03"
OTHER_METER = "C0:FF:EE:00:00:09"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


@pytest.fixture
async def browser(tmp_path) -> AsyncIterator[BrowserContext]:
    async with chromium(tmp_path / "profile", viewport={"width": 1280, "height": 800}) as context:
        yield context


def now_reading(reading):
    return dataclasses.replace(reading, received_at=datetime.now(UTC))


def save_and_publish(services, reading, *, one_by_one: bool = False) -> None:
    readings.save_transfer(services.db, [reading], zone=services.settings.zone)
    stored = readings.get_reading(services.db, reading.id)
    if one_by_one:  # an older shape: data is the reading itself (the page reads back either way)
        data = reading_out(stored).model_dump(mode="json")
        services.events.publish(reading_event_type(reading.kind), stored.user_id, data)
    else:  # what gateway.collector publishes: Junction samples, {user_id, source, data: [...]}
        publish_readings(services.events, [stored])


async def test_reading_appears_live_and_only_for_the_person(tmp_path, browser) -> None:
    services = make_services(tmp_path / "data")
    services.radar = MemoryRadar(services.events)
    services.pairing = ScriptedPairing({CUFF: 123456})
    users.upsert_user(services.db, "ada", "Ada Lovelace")
    users.bind(services.db, OTHER_METER, "somebody-else")
    kiosk.start_session(services.db, "ada", duration=timedelta(minutes=15))
    services.radar.update(RadarDevice(SCALE, name="scale", kind="body", rssi=-60))
    services.radar.update(
        RadarDevice(CUFF, name="cuff", kind="blood_pressure", rssi=-55, needs_passkey=True)
    )
    async with serve(services) as url:
        page: Page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(url + "/")
        await expect(page.locator("#link")).to_have_attribute("data-state", "live")
        await expect(page.locator("#person-name")).to_have_text("Ada")
        await expect(page.locator(f'[data-address="{SCALE}"] .step')).to_have_text(
            "Step on the scale"
        )

        # Somebody else's reading (their own bound meter) never reaches this page.
        stranger = now_reading(glucose(7, device=OTHER_METER))
        save_and_publish(services, stranger)

        mine = now_reading(glucose(1, concentration=0.00104))  # 104 mg/dL = 5.8 mmol/L
        started = time.monotonic()
        save_and_publish(services, mine)
        row = page.locator(f'#reading-list li[data-id="{mine.id}"]')
        await expect(row).to_be_visible(timeout=1000)
        elapsed = time.monotonic() - started
        assert elapsed < 1.0, f"reading took {elapsed:.2f}s to appear"
        await expect(row.locator(".value")).to_have_text("5.8")
        await expect(row.locator(".unit")).to_have_text("mmol/L")
        assert await page.locator(f'li[data-id="{stranger.id}"]').count() == 0

        # A device asking for a passkey: pair from the page.
        cuff_card = page.locator(f'[data-address="{CUFF}"]')
        await expect(cuff_card.locator(".step")).to_have_text(
            "Enter the passkey shown on the device"
        )
        await cuff_card.locator("input[name=passkey]").fill("123456")
        await cuff_card.locator("button").click()
        await expect(cuff_card.locator(".pair-result")).to_have_text("Paired ✓")

        bp = now_reading(blood_pressure(2, device=CUFF))
        save_and_publish(services, bp, one_by_one=True)
        await expect(page.locator(f'li[data-id="{bp.id}"] .value')).to_have_text("120/80")
        await expect(page.locator("#upload-state")).to_have_text("Uploading… 2 waiting")

        ARTIFACTS.mkdir(exist_ok=True)
        shot = tmp_path / "kiosk-page.png"
        await page.screenshot(path=str(shot), full_page=True)
        shutil.copy(shot, ARTIFACTS / "kiosk-page.png")

        # The session ends: the person's readings leave the screen at once.
        [session] = kiosk.active_sessions(services.db)
        async with httpx.AsyncClient(base_url=url, headers=KIOSK_HEADERS) as client:
            ended = await client.delete(f"/v1/kiosk/sessions/{session.id}")
            assert ended.status_code == 200
        await expect(page.locator("#person-name")).to_have_text("Nobody yet")
        await expect(page.locator("#reading-list li")).to_have_count(0)
        assert errors == []
        await page.close()
    services.db.close()
