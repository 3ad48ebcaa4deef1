"""The GATT link: the only seam between device drivers and a radio.

Drivers talk to a connected device through a `GattLink` and nothing else, so they run the same
against BlueZ (`drivers.bleak_link.BleakLink`), the simulated BlueZ and a scripted
`drivers.testing.FakeLink`. Every method raises only the `drivers.errors.LinkError` tree.

Link loss is an event, not an exception in flight: Bleak raises nothing into code that awaits
notifications when the device goes away. So every wait a driver does (RACP completion, the
BP idle timer) must race `GattLink.disconnected`; `wait_for` below does exactly that.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar, runtime_checkable

from drivers.errors import DisconnectedError, LinkTimeoutError

NotifyCallback = Callable[[bytes], None]
"""Called with each notification or indication value, in the order the device sent them."""

_T = TypeVar("_T")


@runtime_checkable
class GattLink(Protocol):
    """A connected GATT client for one device.

    The link is already connected and its services discovered when a driver gets it; the
    caller (the collector, the CLI) owns connecting and, finally, `disconnect`.
    Characteristics are named by their full lower-case 128-bit UUID (`drivers.gatt.uuids`).
    """

    @property
    def address(self) -> str:
        """The device's Bluetooth address, upper case (``AA:BB:CC:DD:EE:FF``)."""
        ...

    @property
    def name(self) -> str | None:
        """The device's advertised name, if it has one."""
        ...

    @property
    def is_connected(self) -> bool:
        """True until the link drops or `disconnect` is called."""
        ...

    @property
    def disconnected(self) -> asyncio.Event:
        """Set once the link is down, whoever hung up; never cleared for this link."""
        ...

    def has_characteristic(self, uuid: str) -> bool:
        """Whether the device's GATT database has the characteristic.

        Args:
            uuid: Full 128-bit UUID, lower case.

        Returns:
            True if any service holds it.
        """
        ...

    def can_write(self, uuid: str) -> bool:
        """Whether the characteristic accepts writes (with or without response).

        Returns:
            False for an unknown characteristic too.
        """
        ...

    async def read(self, uuid: str) -> bytes:
        """Read a characteristic value.

        Returns:
            The value.

        Raises:
            ProtocolError: The device answered with an ATT error, or has no such characteristic.
            DisconnectedError: The link is down, or dropped during the read.
            LinkTimeoutError: The device did not answer in time.
        """
        ...

    async def write(self, uuid: str, data: bytes, *, response: bool = True) -> None:
        """Write a characteristic value.

        Args:
            uuid: The characteristic.
            data: The value.
            response: Write with response (request) if True, else write command.

        Raises:
            ProtocolError: The device answered with an ATT error (e.g. CCCD not configured).
            DisconnectedError: The link is down, or dropped during the write.
            LinkTimeoutError: The device did not answer in time.
        """
        ...

    async def subscribe(self, uuid: str, callback: NotifyCallback) -> None:
        """Enable notifications or indications and deliver each value to `callback`.

        Implementations use BlueZ StartNotify (never AcquireNotify), so values of different
        characteristics arrive in the order the device sent them: a RACP completion cannot
        overtake the last records.

        Raises:
            ProtocolError: The characteristic cannot notify, or the device refused.
            PairingError: Enabling required bonding and bonding failed.
            DisconnectedError: The link is down.
        """
        ...

    async def unsubscribe(self, uuid: str) -> None:
        """Stop notifications; a no-op on a link that is already down."""
        ...

    async def pair(self) -> None:
        """Bond with the device (a pairing agent must be registered for passkey devices).

        Raises:
            PairingError: Bonding failed or was refused (wrong passkey, not in pairing mode).
            DisconnectedError: The link dropped.
        """
        ...

    async def disconnect(self) -> None:
        """Hang up and release the connection; idempotent, also after a device-side drop.

        Always call it, even when the device hung up first: the transport keeps per-connection
        resources (Bleak's D-Bus socket) until then.
        """
        ...


async def wait_for(link: GattLink, awaitable: Awaitable[_T], *, timeout_s: float, what: str) -> _T:
    """Await `awaitable`, racing the link going down and a timeout.

    Args:
        link: The link whose `disconnected` event aborts the wait.
        awaitable: What to wait for (a future a notification callback completes, …).
        timeout_s: Give up after this many seconds.
        what: What is awaited, for the error message (``"RACP response"``).

    Returns:
        The awaitable's result.

    Raises:
        DisconnectedError: The link went down first.
        LinkTimeoutError: Nothing happened within `timeout_s`.
    """
    target = asyncio.ensure_future(awaitable)
    dropped = asyncio.ensure_future(link.disconnected.wait())
    try:
        done, _ = await asyncio.wait(
            {target, dropped}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        dropped.cancel()
        if not target.done():
            target.cancel()
    if target in done:
        return target.result()
    if dropped in done:
        msg = f"{link.address}: link dropped while waiting for {what}; bring the device closer"
        raise DisconnectedError(msg)
    msg = (
        f"{link.address}: no {what} within {timeout_s:g} s; "
        "check the device is awake and in range, then retry"
    )
    raise LinkTimeoutError(msg)
