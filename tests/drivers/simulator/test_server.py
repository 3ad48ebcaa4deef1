"""Simulator behaviour that no Bleak call shows directly."""

import asyncio

import pytest
from bleak import BleakScanner

from drivers.simulator.server import Simulator
from tests.drivers.simulator.scenarios import METER, meter


@pytest.mark.parametrize("scenario", [meter(1)])
async def test_devices_are_heard_only_while_scanning_and_forgotten_after(simulator: Simulator):
    device = simulator.device(METER)
    assert not device.exported  # nothing advertises into BlueZ until someone scans
    assert await BleakScanner.find_device_by_address(METER, timeout=5) is not None
    assert device.exported
    simulator.temporary_timeout_s = 0.05  # bluetoothd's TemporaryTimeout, shortened
    for _ in range(100):
        if not device.exported:
            break
        await asyncio.sleep(0.01)
    assert not device.exported


@pytest.mark.parametrize("scenario", [meter(1)])
async def test_uuid_filter_hides_other_devices(simulator: Simulator):
    found = await BleakScanner.discover(
        timeout=0.2, service_uuids=["0000181d-0000-1000-8000-00805f9b34fb"]
    )
    assert found == []


@pytest.mark.parametrize("scenario", [meter(1, extra="faults = { idle_disconnect_ms = 100 }")])
async def test_an_idle_link_is_dropped_by_the_device(simulator: Simulator, bus_guard: str):
    """A central that dies without disconnecting must not hold the meter forever."""
    from dbus_fast import Message
    from dbus_fast.aio import MessageBus

    assert await BleakScanner.find_device_by_address(METER, timeout=5) is not None
    device = simulator.device(METER)
    central = await MessageBus(bus_address=bus_guard).connect()
    reply = await central.call(
        Message(
            destination="org.bluez",
            path=device.path,
            interface="org.bluez.Device1",
            member="Connect",
        )
    )
    assert reply is not None
    assert reply.error_name is None
    assert device.connected
    central.disconnect()  # dies without Disconnect
    for _ in range(100):
        if not device.connected:
            break
        await asyncio.sleep(0.01)
    assert not device.connected
