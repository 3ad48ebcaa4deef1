"""`drivers.bleak_link.dead_bus` on a real private dbus-daemon that stops."""

import asyncio
import contextlib
import os

import pytest
from dbus_fast import Message
from dbus_fast.aio import MessageBus

from drivers.bleak_link.dead_bus import applied
from drivers.simulator.daemon import PrivateBus

PING = {
    "destination": "org.freedesktop.DBus",
    "path": "/org/freedesktop/DBus",
    "interface": "org.freedesktop.DBus",
    "member": "GetId",
}


@pytest.fixture
async def dead_bus() -> MessageBus:
    """A connection whose daemon has stopped (finalised once, its socket closed)."""
    with PrivateBus() as daemon:
        connection = await MessageBus(bus_address=daemon.address).connect()
        ended = asyncio.ensure_future(connection.wait_for_disconnect())
    with contextlib.suppress(EOFError):
        await asyncio.wait_for(ended, 5)
    assert connection._disconnected
    return connection


def _pipe_onto(number: int) -> tuple[int, int]:
    """A pipe whose read end has the (free) file number `number`: (read end, write end)."""
    read_end, write_end = os.pipe()
    if write_end == number:
        write_end = os.dup(write_end)  # dup2 below replaces the original
    if read_end != number:
        os.dup2(read_end, number)
        os.close(read_end)
    return number, write_end


def test_importing_the_bleak_link_applies_it():
    assert applied()


async def test_a_call_on_a_dead_bus_leaves_the_file_now_on_its_number_watched(
    dead_bus: MessageBus,
):
    """Unpatched, the failed write unwatches the pipe: its data is never heard."""
    loop = asyncio.get_running_loop()
    read_end, write_end = _pipe_onto(dead_bus._fd)
    heard = loop.create_future()
    loop.add_reader(read_end, lambda: heard.done() or heard.set_result(os.read(read_end, 1)))
    try:
        with pytest.raises(OSError, match="closed"):
            await asyncio.wait_for(dead_bus.call(Message(**PING)), 5)
        os.write(write_end, b"x")
        assert await asyncio.wait_for(heard, 5) == b"x"
    finally:
        loop.remove_reader(read_end)
        os.close(read_end)
        os.close(write_end)


async def test_a_call_on_a_dead_bus_fails_at_once(dead_bus: MessageBus):
    """Unpatched, it waits for a reply forever (here: the 5 s guard) once the socket's number
    belongs to another file."""
    read_end, write_end = _pipe_onto(dead_bus._fd)
    try:
        with pytest.raises(OSError, match="closed"):
            await asyncio.wait_for(dead_bus.call(Message(**PING)), 5)
        assert not dead_bus._method_return_handlers
    finally:
        os.close(read_end)
        os.close(write_end)
