"""The GattLink contract, run against both implementations: FakeLink and BleakLink."""

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from drivers.bleak_link import BleakLink
from drivers.errors import DisconnectedError, ProtocolError
from drivers.gatt import uuids
from drivers.link import GattLink
from drivers.simulator.runner import start_simulator
from drivers.testing import FakeLink
from tests.conftest import _close_bleak_manager
from tests.drivers.simulator.scenarios import METER, meter

Drop = Callable[[], None]


@pytest.fixture(params=["fake", "bleak"])
async def link_and_drop(
    request: pytest.FixtureRequest, bus_guard: str
) -> AsyncIterator[tuple[GattLink, Drop]]:
    if request.param == "fake":
        fake = FakeLink(
            METER,
            "meter+00012345",
            values={uuids.MANUFACTURER_NAME: b"Roche", uuids.GLUCOSE_FEATURE: b"\xff\x03"},
            notifiable=(uuids.GLUCOSE_MEASUREMENT, uuids.RECORD_ACCESS_CONTROL_POINT),
            writable=(uuids.RECORD_ACCESS_CONTROL_POINT,),
        )
        yield fake, fake.drop
        return
    simulator = await start_simulator(meter(2), bus_guard, advertise_interval_s=0.02)
    try:
        link = await BleakLink.connect(METER, find_timeout_s=5)
        try:
            yield link, lambda: simulator.device(METER).drop_link("contract test")
        finally:
            await link.disconnect()
    finally:
        await _close_bleak_manager()
        await simulator.stop()


async def test_reads_and_knows_its_characteristics(link_and_drop):
    link, _ = link_and_drop
    assert isinstance(link, GattLink)
    assert link.address == METER
    assert link.is_connected
    assert not link.disconnected.is_set()
    assert await link.read(uuids.MANUFACTURER_NAME) == b"Roche"
    assert link.has_characteristic(uuids.GLUCOSE_MEASUREMENT)
    assert not link.has_characteristic(uuids.WEIGHT_MEASUREMENT)
    assert link.can_write(uuids.RECORD_ACCESS_CONTROL_POINT)
    assert not link.can_write(uuids.GLUCOSE_FEATURE)


async def test_reading_an_unreadable_characteristic_is_a_protocol_error(link_and_drop):
    link, _ = link_and_drop
    with pytest.raises(ProtocolError, match=f"^{METER}: "):
        await link.read(uuids.GLUCOSE_MEASUREMENT)


async def test_a_drop_sets_the_event_and_later_calls_raise_disconnected(link_and_drop):
    link, drop = link_and_drop
    await link.subscribe(uuids.GLUCOSE_MEASUREMENT, lambda _: None)
    drop()
    await asyncio.wait_for(link.disconnected.wait(), 2)
    assert not link.is_connected
    with pytest.raises(DisconnectedError, match=f"^{METER}: "):
        await link.read(uuids.MANUFACTURER_NAME)
    with pytest.raises(DisconnectedError):
        await link.write(uuids.RECORD_ACCESS_CONTROL_POINT, b"\x01\x01")
    await link.unsubscribe(uuids.GLUCOSE_MEASUREMENT)  # no-op when down
    await link.disconnect()
    await link.disconnect()  # idempotent


async def test_disconnect_sets_the_event(link_and_drop):
    link, _ = link_and_drop
    await link.disconnect()
    assert link.disconnected.is_set()
    assert not link.is_connected
