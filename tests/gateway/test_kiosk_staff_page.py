"""The clinic visit on the kiosk page, in headless Chromium (issue 20).

The whole runtime serves the page (`build_gateway`: collector, real Bleak, the simulated
BlueZ on the private bus, the uploader posting to the Junction stub over loopback). Staff
unlock with the PIN, find the person by their clinic identifier, start the session; the
simulated cuff comes into range only then, so its reading can belong to nobody else; it
shows for that person and reaches the stub under their user id; staff end the session and
the screen clears. Without the radio (`serve`): wrong PINs lock staff mode (the gateway
counts them), an idle session ends by itself, a check-in code starts a session and a forged
or expired one does not. Screenshots of each screen go to ``test-artifacts/``.
"""

import asyncio
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from pydantic import SecretStr

from drivers.bleak_link import BleakRadio
from drivers.simulator.scenario import (
    BloodPressureDevice,
    BloodPressureRecord,
    FaultSpec,
    Scenario,
)
from drivers.simulator.server import Simulator
from gateway.config import ApiSettings, JunctionSettings, Settings
from gateway.kiosk import checkin
from gateway.kiosk.pin import hash_pin
from gateway.pairing import BlePairing
from gateway.runtime import Gateway, build_gateway
from gateway.services import MemoryRadar, RadarDevice, Services, standalone_services
from gateway.store import kiosk, tokens, users
from gateway.store.tokens import Scope
from sync.junction.stub import create_app as create_stub
from sync.junction.stub_server import StubServer
from tests.gateway.api.conftest import KIOSK_HEADERS
from tests.gateway.api.live import serve
from tests.gateway.test_kiosk_page import (  # the browser fixture too
    ARTIFACTS,
    CHROMIUM,
    browser,  # noqa: F401
)

CUFF = "C0:FF:EE:00:00:32"
PIN = "482916"
PIN_HASH = hash_pin(PIN)
STUB_KEY = "sk_kiosk_visit"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


async def shot(page: Page, tmp_path: Path, name: str) -> None:
    """Save a screenshot as test-artifacts/<name>.png (the README's walkthrough uses them)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = tmp_path / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    shutil.copy(path, ARTIFACTS / f"{name}.png")


def add_people(db) -> None:
    users.upsert_user(db, "u-ada", "Ada Lovelace", "MRN-0001")
    users.upsert_user(db, "u-alan", "Alan Turing", "MRN-0002")
    users.upsert_user(db, "u-grace", "Grace Hopper", "MRN-1003")


async def unlock(page: Page, pin: str = PIN) -> None:
    await page.locator("#staff-open").click()
    await expect(page.locator("#patient")).to_be_hidden()
    await page.locator("#pin").fill(pin)
    await page.locator("#pin-form button[type=submit]").click()


@pytest.fixture
def scenario() -> Scenario:
    taken = datetime.now(UTC).replace(microsecond=0, tzinfo=None) - timedelta(minutes=1)
    return Scenario(
        devices=[
            BloodPressureDevice(
                kind="blood_pressure",
                address=CUFF,
                name="BLEsmart_00000116",
                manufacturer="OMRON HEALTHCARE",
                # Out of range until the session starts: its reading can only be Ada's.
                faults=FaultSpec(out_of_range=True),
                records=[BloodPressureRecord(time=taken, systolic=131, diastolic=84, pulse=71)],
            )
        ]
    )


@pytest.fixture
async def clinic(
    tmp_path: Path, simulator: Simulator
) -> AsyncIterator[tuple[Gateway, int, StubServer]]:
    async with StubServer(create_stub(api_key=STUB_KEY, users=["u-ada", "u-alan"])) as stub:
        settings = Settings(
            data_dir=tmp_path / "data",
            timezone="UTC",
            junction=JunctionSettings(
                base_url=stub.base_url, auth_url=stub.auth_url, api_key=SecretStr(STUB_KEY)
            ),
            api=ApiSettings(port=0),
            ble={"poll_interval_s": 1.0},
            kiosk={"staff_pin_hash": PIN_HASH},
        )
        radio = BleakRadio(attempts=1)
        gateway = build_gateway(settings, radio, pairing=BlePairing(radio=radio))
        add_people(gateway.db)
        stop = asyncio.Event()
        ports: asyncio.Queue[int | None] = asyncio.Queue()
        runner = asyncio.create_task(gateway.serve(stop, on_running=ports.put_nowait))
        port = await asyncio.wait_for(ports.get(), 30)
        assert port is not None
        try:
            yield gateway, port, stub
        finally:
            stop.set()
            await asyncio.wait_for(runner, 60)
            del simulator


async def test_a_visit_from_unlock_to_end(
    tmp_path: Path,
    clinic: tuple[Gateway, int, StubServer],
    simulator: Simulator,
    browser: Browser,  # noqa: F811 - the imported fixture
) -> None:
    gateway, port, stub = clinic
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"http://127.0.0.1:{port}/")
    await expect(page.locator("#person-name")).to_have_text("Nobody yet")
    await expect(page.locator("#staff")).to_be_hidden()
    await shot(page, tmp_path, "kiosk-1-waiting")

    await page.locator("#staff-open").click()
    await expect(page.locator("#pin")).to_be_focused()
    await shot(page, tmp_path, "kiosk-2-staff-pin")
    await page.locator("#pin").fill(PIN)
    await page.locator("#pin-form button[type=submit]").click()
    await expect(page.locator("#staff-panel")).to_be_visible()
    await expect(page.locator("#pin")).to_have_value("")  # the PIN is not kept in the page

    await page.locator("#search").fill("mrn-0001")
    await page.locator("#search-form button[type=submit]").click()
    found = page.locator("#people button")
    await expect(found).to_have_count(1)
    await expect(found).to_contain_text("Ada Lovelace")
    await found.click()
    await expect(page.locator("#picked-name")).to_have_text("Ada Lovelace")
    await shot(page, tmp_path, "kiosk-3-staff-search")
    await page.locator("#start-form button[type=submit]").click()

    # Back on the patient view, locked: first name only, no staff screen left in the page.
    await expect(page.locator("#person-name")).to_have_text("Ada")
    await expect(page.locator("#staff")).to_be_hidden()
    assert await page.locator("#people li").count() == 0
    assert "Lovelace" not in await page.locator("body").inner_text()
    [session] = kiosk.active_sessions(gateway.db)
    assert session.user_id == "u-ada"

    # The cuff comes into range: read, shown for Ada, uploaded under her user id.
    simulator.set_in_range(CUFF, True)
    row = page.locator("#reading-list li[data-kind=blood_pressure]")
    await expect(row.locator(".value")).to_have_text("131/84", timeout=30_000)
    await expect(page.locator("#upload-state")).to_have_text("All uploaded ✓", timeout=30_000)
    samples = list(stub.stub.samples.values())
    assert {(s["user_id"], s["resource"]) for s in samples} == {("u-ada", "blood_pressure")}
    await shot(page, tmp_path, "kiosk-4-patient-reading")

    # Staff end the session: the screen clears and stays locked.
    await unlock(page)
    await expect(page.locator("#staff-current-name")).to_have_text("Ada Lovelace")
    await shot(page, tmp_path, "kiosk-5-staff-end")
    await page.locator("#end-session").click()
    await expect(page.locator("#person-name")).to_have_text("Nobody yet")
    await expect(page.locator("#reading-list li")).to_have_count(0)
    await expect(page.locator("#staff")).to_be_hidden()
    assert kiosk.active_sessions(gateway.db) == []
    assert errors == []
    await page.close()


def kiosk_services(tmp_path: Path, **kiosk_keys: object) -> Services:
    settings = Settings(
        data_dir=tmp_path / "data",
        kiosk={"staff_pin_hash": PIN_HASH, **kiosk_keys},
    )
    services = standalone_services(settings)
    services.radar = MemoryRadar(services.events)
    add_people(services.db)
    return services


async def test_wrong_pins_lock_staff_mode_then_a_device_can_be_picked(
    tmp_path: Path,
    browser: Browser,  # noqa: F811 - the imported fixture
) -> None:
    services = kiosk_services(tmp_path, pin_attempts=3, lockout_s=60)
    services.radar.update(RadarDevice(CUFF, name="cuff", kind="blood_pressure", rssi=-50))
    async with serve(services) as url:
        page = await browser.new_page()
        await page.goto(url + "/")
        await unlock(page, "000000")
        result = page.locator("#pin-result")
        await expect(result).to_contain_text("wrong PIN; 2 more")
        await page.locator("#pin").fill("111111")
        await page.locator("#pin-form button[type=submit]").click()
        await expect(result).to_contain_text("wrong PIN; 1 more")
        await page.locator("#pin").fill("222222")
        await page.locator("#pin-form button[type=submit]").click()
        await expect(result).to_contain_text("locked for about 1 min")
        # Now even the right PIN is refused, by the gateway.
        await page.locator("#pin").fill(PIN)
        await page.locator("#pin-form button[type=submit]").click()
        await expect(result).to_have_attribute("data-status", "429")
        await expect(page.locator("#staff-panel")).to_be_hidden()
        await shot(page, tmp_path, "kiosk-6-staff-locked-out")
        assert kiosk.active_sessions(services.db) == []
        await page.close()
    services.db.close()

    services = kiosk_services(tmp_path / "second")
    services.radar.update(RadarDevice(CUFF, name="cuff", kind="blood_pressure", rssi=-50))
    async with serve(services) as url:
        page = await browser.new_page()
        await page.goto(url + "/")
        await unlock(page)
        await page.locator("#search").fill("grace")
        await page.locator("#search-form button[type=submit]").click()
        await page.locator("#people button").click()
        await page.locator("#device-pick").select_option(CUFF)
        await page.locator("#start-form button[type=submit]").click()
        await expect(page.locator("#person-name")).to_have_text("Grace")
        [session] = kiosk.active_sessions(services.db)
        assert (session.user_id, session.device) == ("u-grace", CUFF)
        await page.close()
    services.db.close()


async def test_an_idle_session_ends_by_itself_and_the_screen_clears(
    tmp_path: Path,
    browser: Browser,  # noqa: F811 - the imported fixture
) -> None:
    services = kiosk_services(tmp_path, idle_s=3, label="Patient")
    async with serve(services) as url:
        page = await browser.new_page()
        await page.goto(url + "/")
        await expect(page.locator("#person-name")).to_have_text("Nobody yet")
        kiosk.start_session(services.db, "u-alan", duration=timedelta(minutes=15))
        services.events.publish("gateway.kiosk.session.started", "u-alan", {})  # as the API does
        await expect(page.locator("#person-name")).to_have_text("Patient")  # [kiosk] label
        # No reading for idle_s: the gateway ends it and the page clears without a reload.
        await expect(page.locator("#person-name")).to_have_text("Nobody yet", timeout=10_000)
        assert kiosk.active_sessions(services.db) == []
        await page.close()
    services.db.close()


async def test_a_check_in_code_starts_a_session_and_a_forged_or_expired_one_does_not(
    tmp_path: Path,
    browser: Browser,  # noqa: F811 - the imported fixture
) -> None:
    services = kiosk_services(tmp_path)
    async with serve(services) as url:
        async with httpx.AsyncClient(base_url=url, headers=KIOSK_HEADERS) as client:
            made = await client.post("/v1/kiosk/checkins", json={"user_id": "u-alan"})
            assert made.status_code == 201, made.text
        key = checkin.load_key(services.settings.data_dir)
        expired, _ = checkin.make_code(
            key,
            "u-grace",
            ttl=timedelta(minutes=1),
            session_s=600,
            now=datetime.now(UTC) - timedelta(minutes=2),
        )
        forged, _ = checkin.make_code(b"x" * 32, "u-grace", ttl=timedelta(minutes=5), session_s=600)
        page = await browser.new_page()
        for code, why in [(forged, "not signed by this gateway"), (expired, "expired")]:
            await page.goto(f"{url}/?{httpx.QueryParams({'checkin': code})}")
            await expect(page.locator("#checkin-result")).to_contain_text(why)
            await expect(page.locator("#person-name")).to_have_text("Nobody yet")
        assert kiosk.active_sessions(services.db) == []

        await page.goto(url + made.json()["path"])
        await expect(page.locator("#person-name")).to_have_text("Alan")
        assert page.url == url + "/"  # the code left the address bar
        await shot(page, tmp_path, "kiosk-7-checked-in")
        [session] = kiosk.active_sessions(services.db)
        assert session.user_id == "u-alan"

        # The same code again (typed into the field): refused, nothing new starts.
        kiosk.end_session(services.db, session.id)
        services.events.publish("gateway.kiosk.session.ended", "u-alan", {})
        await expect(page.locator("#person-name")).to_have_text("Nobody yet")
        await page.locator("#checkin-code").fill(made.json()["code"])
        await page.locator("#checkin-form button[type=submit]").click()
        await expect(page.locator("#checkin-result")).to_contain_text("already used")
        assert kiosk.active_sessions(services.db) == []
        await page.close()
    services.db.close()


async def test_a_tablet_with_a_read_token_needs_the_pin_for_every_staff_action(
    tmp_path: Path,
    browser: Browser,  # noqa: F811 - the imported fixture
) -> None:
    # No loopback exemption: the page is a kiosk tablet on the network, holding a read token.
    settings = Settings(
        data_dir=tmp_path / "data",
        api={"trust_loopback": False},
        kiosk={"staff_pin_hash": PIN_HASH},
    )
    services = standalone_services(settings)
    add_people(services.db)
    token = tokens.create_token(services.db, Scope.READ, "kiosk tablet")[0]
    async with serve(services) as url:
        page = await browser.new_page()
        await page.goto(f"{url}/#token={token}")
        await expect(page.locator("#link")).to_have_attribute("data-state", "live")
        await expect(page.locator("#person-name")).to_have_text("Nobody yet")
        assert page.url == url + "/"  # the token left the address bar (kept in the browser)

        # The page's own token cannot start a session: the API's rules, not the page's.
        status = await page.evaluate(
            """async (token) => (await fetch("/v1/kiosk/sessions", {method: "POST",
                 headers: {"Content-Type": "application/json",
                           "Authorization": `Bearer ${token}`},
                 body: JSON.stringify({user_id: "u-ada"})})).status""",
            token,
        )
        assert status == 403
        assert kiosk.active_sessions(services.db) == []

        await unlock(page)
        await page.locator("#search").fill("ada")
        await page.locator("#search-form button[type=submit]").click()
        await page.locator("#people button").click()
        await page.locator("#start-form button[type=submit]").click()
        await expect(page.locator("#person-name")).to_have_text("Ada")
        [session] = kiosk.active_sessions(services.db)
        assert session.user_id == "u-ada"

        # A reload keeps working on the stored token.
        await page.reload()
        await expect(page.locator("#person-name")).to_have_text("Ada")
        await page.close()
    services.db.close()
