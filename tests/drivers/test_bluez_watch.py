"""`watch_bluez` on a real private dbus-daemon, with a stand-in owning ``org.bluez``."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest
from dbus_fast import Message
from dbus_fast.aio import MessageBus

from drivers.bluez_watch import BlueZGoneError, watch_bluez
from drivers.simulator.daemon import PrivateBus

ADAPTER = "/org/bluez/hci0"


@pytest.fixture
def bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateBus]:
    """A bus of this test's own (one test stops it); the system bus for the process."""
    with PrivateBus() as private:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", private.address)
        yield private


@pytest.fixture
async def bluez(bus: PrivateBus) -> AsyncIterator[MessageBus]:
    """A connection owning ``org.bluez``, as bluetoothd's does."""
    connection = await MessageBus(bus_address=bus.address).connect()
    await connection.request_name("org.bluez")
    ended = asyncio.ensure_future(connection.wait_for_disconnect())  # its EOFError is expected
    yield connection
    connection.disconnect()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ended, 1)


async def _fails(gone: "asyncio.Future[None]") -> str:
    with pytest.raises(BlueZGoneError) as caught:
        await asyncio.wait_for(gone, 5)
    return str(caught.value)


async def test_bluetoothd_leaving_the_bus_ends_the_watch(bluez: MessageBus):
    async with watch_bluez(ADAPTER) as gone:
        await asyncio.sleep(0.1)
        assert not gone.done()
        bluez.disconnect()
        message = await _fails(gone)
    assert message.startswith("BlueZ: bluetoothd left the system bus")
    assert "systemctl status bluetooth" in message  # the remedy


async def test_the_scanning_adapter_removed_ends_the_watch(bluez: MessageBus):
    async with watch_bluez(ADAPTER) as gone:
        other = ["/org/bluez/hci1", ["org.bluez.Adapter1"]]
        device = [f"{ADAPTER}/dev_C0_FF_EE_00_00_01", ["org.bluez.Device1"]]
        for body in (other, device, [ADAPTER, ["org.bluez.Adapter1"]]):
            await bluez.send(
                Message.new_signal(
                    "/", "org.freedesktop.DBus.ObjectManager", "InterfacesRemoved", "oas", body
                )
            )
        message = await _fails(gone)
    assert "adapter hci0 was removed" in message


async def test_the_bus_stopping_ends_the_watch(bus: PrivateBus, bluez: MessageBus):
    async with watch_bluez(ADAPTER) as gone:
        bus.stop()
        message = await _fails(gone)
    # Whichever the daemon's exit shows first: bluetoothd's name going or the bus closing.
    assert "left the system bus" in message or "system bus connection closed" in message


async def test_no_bluetoothd_on_the_bus_fails_at_once(bus: PrivateBus):
    with pytest.raises(BlueZGoneError, match="bluetoothd is not on the system bus"):
        async with watch_bluez(None):
            pass


async def test_a_watch_that_ends_quietly_leaves_nothing_behind(bluez: MessageBus):
    async with watch_bluez(ADAPTER) as gone:
        pass
    assert gone.cancelled()
