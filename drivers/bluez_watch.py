"""Noticing that BlueZ went away while the gateway scans.

Bleak's scanner says nothing when bluetoothd stops (a restart, an upgrade, a crash) or the
adapter is unplugged: advertisements simply stop, and a gateway that keeps running reads
nothing until someone looks. BlueZ's own D-Bus signals say it plainly, so a scan watches
them and ends with a `LinkError` naming the cause; the gateway then exits non-zero and
systemd (``Restart=on-failure``) starts it again once BlueZ is back.

Signals watched (D-Bus specification, "Message Bus Messages"; BlueZ doc/org.bluez.Adapter.rst):
- ``org.freedesktop.DBus.NameOwnerChanged`` for ``org.bluez`` with an empty new owner:
  bluetoothd left the bus;
- ``org.freedesktop.DBus.ObjectManager.InterfacesRemoved`` from ``org.bluez`` removing
  ``org.bluez.Adapter1`` from the adapter scanned with: the adapter is gone;
- the system bus connection itself closing (the D-Bus daemon stopped).
"""

import asyncio
import contextlib
import logging
import traceback
from collections.abc import AsyncIterator
from typing import Any

from dbus_fast import BusType, DBusError, Message, MessageType
from dbus_fast.aio import MessageBus

from drivers.errors import LinkError

_LOGGER = logging.getLogger(__name__)

BLUEZ = "org.bluez"
POLL_S = 5.0  # how often BlueZ's presence is also asked for, besides its signals
ADAPTER_INTERFACE = "org.bluez.Adapter1"

_RESTART = (
    "the gateway stops so systemd restarts it; if run by hand, start it again once "
    "`systemctl status bluetooth` shows bluetoothd running"
)


class BlueZGoneError(LinkError):
    """BlueZ (bluetoothd, its adapter or the system bus) went away while scanning."""


def _gone(cause: str) -> BlueZGoneError:
    return BlueZGoneError(f"BlueZ: {cause}; {_RESTART}")


@contextlib.asynccontextmanager
async def watch_bluez(adapter_path: str | None) -> AsyncIterator["asyncio.Future[None]"]:
    """A future that fails with `BlueZGoneError` once BlueZ or the adapter goes away.

    Args:
        adapter_path: The scanning adapter's object path (``"/org/bluez/hci0"``); None
            watches bluetoothd and the bus only.

    Yields:
        The future; it never completes otherwise. The watch ends with the context.

    Raises:
        BlueZGoneError: On entry, when BlueZ is not on the bus at all.
    """
    loop = asyncio.get_running_loop()
    gone: asyncio.Future[None] = loop.create_future()
    bus = await MessageBus(bus_type=BusType.SYSTEM, negotiate_unix_fd=False).connect()

    def fail(cause: str) -> None:
        if not gone.done():
            gone.set_exception(_gone(cause))

    def on_message(message: Message) -> None:
        if message.message_type is not MessageType.SIGNAL:
            return
        if message.member == "NameOwnerChanged" and message.body[:1] == [BLUEZ]:
            if not message.body[2]:
                fail("bluetoothd left the system bus (stopped or restarted)")
        elif message.member == "InterfacesRemoved":
            path, interfaces = message.body
            if path == adapter_path and ADAPTER_INTERFACE in interfaces:
                fail(f"adapter {path.rsplit('/', 1)[-1]} was removed")

    bus.add_message_handler(on_message)
    rules = (
        "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
        f"member='NameOwnerChanged',arg0='{BLUEZ}'",
        f"type='signal',sender='{BLUEZ}',interface='org.freedesktop.DBus.ObjectManager',"
        "member='InterfacesRemoved'",
    )
    try:
        for rule in rules:
            await bus.call(
                Message(
                    destination="org.freedesktop.DBus",
                    path="/org/freedesktop/DBus",
                    interface="org.freedesktop.DBus",
                    member="AddMatch",
                    signature="s",
                    body=[rule],
                )
            )
        # After the matches are in place, so a departure in between is not missed.
        if not await _bluez_on_bus(bus):
            cause = "bluetoothd is not on the system bus"
            raise _gone(cause)

        # The connection's end, awaited in a task of its own that is never cancelled (that
        # would cancel dbus-fast's own future) and whose outcome is always retrieved: it
        # ends with an EOFError when the daemon goes, or when `bus.disconnect()` below runs.
        ended = loop.create_task(bus.wait_for_disconnect())  # type: ignore[no-untyped-call]
        ended.add_done_callback(_retrieve)

        async def bus_closed() -> None:
            await asyncio.wait({ended})
            fail("the system bus connection closed (the D-Bus daemon stopped)")

        async def poll() -> None:
            # Signals are the news; asking now and then is the safety net (a signal lost
            # while the watch was being set up would otherwise leave the scan quiet).
            while not gone.done():
                await asyncio.sleep(POLL_S)
                try:
                    there = await asyncio.wait_for(_bluez_on_bus(bus), POLL_S)
                except (TimeoutError, OSError, EOFError, DBusError) as exc:
                    fail(f"the system bus does not answer ({type(exc).__name__})")
                    return
                if not there:
                    fail("bluetoothd left the system bus (stopped or restarted)")

        watchers = [loop.create_task(bus_closed()), loop.create_task(poll())]
        try:
            yield gone
        finally:
            for task in watchers:
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
    finally:
        bus.remove_message_handler(on_message)
        bus.disconnect()
        if not gone.done():
            gone.cancel()
        elif not gone.cancelled():
            gone.exception()  # retrieved: a watch that fired after its scan ended is no news


async def _bluez_on_bus(bus: MessageBus) -> bool:
    """Whether ``org.bluez`` has an owner (``NameHasOwner``; an error reply counts as no)."""
    reply = await bus.call(
        Message(
            destination="org.freedesktop.DBus",
            path="/org/freedesktop/DBus",
            interface="org.freedesktop.DBus",
            member="NameHasOwner",
            signature="s",
            body=[BLUEZ],
        )
    )
    return (
        reply is not None
        and reply.message_type is MessageType.METHOD_RETURN
        and bool(reply.body and reply.body[0])
    )


def _retrieve(task: "asyncio.Task[Any]") -> None:
    if not task.cancelled():
        task.exception()


def quiet_bus_teardown(loop: asyncio.AbstractEventLoop) -> None:
    """Log dbus-fast's orphaned "connection ended" futures at DEBUG instead of as tracebacks.

    When the D-Bus daemon or bluetoothd goes away, every dbus-fast connection Bleak opened
    (its manager's, one per device link) ends with an EOFError or EBADF on a future nobody
    awaits, and asyncio logs each as "Future (or Task) exception was never retrieved" with a
    traceback. The gateway has already said what happened (`BlueZGoneError`); other
    unretrieved exceptions keep asyncio's default report.
    """

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if (
            context.get("message")
            in ("Future exception was never retrieved", "Task exception was never retrieved")
            and isinstance(exc, EOFError | OSError)
            and _raised_in_dbus_fast(exc)
        ):
            _LOGGER.debug("a D-Bus connection ended with %r", exc)
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


def _raised_in_dbus_fast(exc: BaseException) -> bool:
    frames = traceback.extract_tb(exc.__traceback__)
    return any("dbus_fast" in frame.filename for frame in frames)
