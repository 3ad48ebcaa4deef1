"""`FakeLink`: a scripted `GattLink` for fast driver tests (fakes over mocks).

A FakeLink holds characteristic values to read and handlers that play the device side of
writes. Handlers answer with `FakeLink.notify`, which queues the value on the event loop as
BlueZ delivers notifications (in order, after the write returns), and can cut the link with
`FakeLink.drop` at any point, as a device walking out of range would.

Example:
    ``link = FakeLink("AA:BB:CC:DD:EE:FF", values={uuids.MANUFACTURER_NAME: b"Roche"})``
"""

import asyncio
from collections.abc import Callable, Iterable, Mapping

from drivers.errors import DisconnectedError, LinkError, PairingError, ProtocolError
from drivers.link import NotifyCallback

WriteHandler = Callable[["FakeLink", bytes], None]
"""The device side of a write: gets the link and the written value."""


class FakeLink:
    """A `GattLink` whose device is a script.

    Attributes:
        writes: Every successful write, in order, as (uuid, value).
        commands: The writes among them made without response.
        reads: Every read uuid, in order.
        subscribed: Characteristics with notifications on.
        paired: Whether `pair` succeeded.
        disconnect_calls: How often `disconnect` was called.
    """

    def __init__(
        self,
        address: str = "AA:BB:CC:DD:EE:FF",
        name: str | None = None,
        *,
        values: Mapping[str, bytes] | None = None,
        notifiable: Iterable[str] = (),
        writable: Iterable[str] = (),
        on_write: Mapping[str, WriteHandler] | None = None,
        on_subscribe: Mapping[str, Callable[["FakeLink"], None]] | None = None,
        errors: Mapping[str, LinkError] | None = None,
        pair_error: PairingError | None = None,
    ) -> None:
        """Script a device.

        Args:
            address: The device address.
            name: Its advertised name.
            values: Readable characteristic values.
            notifiable: Characteristics that can notify or indicate.
            writable: Characteristics that accept writes (recorded, no handler needed).
            on_write: Device behaviour per written characteristic (implies writable).
            on_subscribe: Device behaviour when notifications are enabled (BP cuffs start).
            errors: Errors a read or write of a characteristic raises.
            pair_error: What `pair` raises, if pairing should fail.
        """
        self._address = address.upper()
        self._name = name
        self.values = dict(values or {})
        self._notifiable = set(notifiable)
        self._on_write = dict(on_write or {})
        self._writable = set(writable) | set(self._on_write)
        self._on_subscribe = dict(on_subscribe or {})
        self.errors = dict(errors or {})
        self._pair_error = pair_error
        self._callbacks: dict[str, NotifyCallback] = {}
        self._disconnected = asyncio.Event()
        self.writes: list[tuple[str, bytes]] = []
        self.commands: list[tuple[str, bytes]] = []
        self.reads: list[str] = []
        self.paired = False
        self.disconnect_calls = 0

    # ------------------------------------------------------------------ GattLink
    @property
    def address(self) -> str:
        """The device address."""
        return self._address

    @property
    def name(self) -> str | None:
        """The advertised name."""
        return self._name

    @property
    def is_connected(self) -> bool:
        """Up until dropped or disconnected."""
        return not self._disconnected.is_set()

    @property
    def disconnected(self) -> asyncio.Event:
        """Set when the link goes down."""
        return self._disconnected

    @property
    def subscribed(self) -> set[str]:
        """Characteristics with notifications on."""
        return set(self._callbacks)

    def has_characteristic(self, uuid: str) -> bool:
        """Whether the script knows the characteristic."""
        return uuid in self.values or uuid in self._notifiable or uuid in self._writable

    def can_write(self, uuid: str) -> bool:
        """Whether the script accepts writes to it."""
        return uuid in self._writable

    async def read(self, uuid: str) -> bytes:
        """The scripted value."""
        self._check(uuid)
        self.reads.append(uuid)
        if uuid not in self.values:
            msg = f"{self._address}: characteristic {uuid} cannot be read"
            raise ProtocolError(msg)
        return self.values[uuid]

    async def write(self, uuid: str, data: bytes, *, response: bool = True) -> None:
        """Record the write and run the device's handler."""
        self._check(uuid)
        if uuid not in self._writable:
            msg = f"{self._address}: characteristic {uuid} cannot be written"
            raise ProtocolError(msg)
        self.writes.append((uuid, bytes(data)))
        if not response:
            self.commands.append((uuid, bytes(data)))
        handler = self._on_write.get(uuid)
        if handler is not None:
            handler(self, bytes(data))

    async def subscribe(self, uuid: str, callback: NotifyCallback) -> None:
        """Turn notifications on and run the device's subscribe behaviour."""
        self._check(uuid)
        if uuid not in self._notifiable:
            msg = f"{self._address}: characteristic {uuid} cannot notify"
            raise ProtocolError(msg)
        self._callbacks[uuid] = callback
        behaviour = self._on_subscribe.get(uuid)
        if behaviour is not None:
            behaviour(self)

    async def unsubscribe(self, uuid: str) -> None:
        """Turn notifications off."""
        self._callbacks.pop(uuid, None)

    async def pair(self) -> None:
        """Succeed, or raise the scripted pairing error."""
        self._check("pair")
        if self._pair_error is not None:
            raise self._pair_error
        self.paired = True

    async def disconnect(self) -> None:
        """Hang up (idempotent)."""
        self.disconnect_calls += 1
        self._go_down()

    # ------------------------------------------------------------------ device side
    def notify(self, uuid: str, value: bytes) -> None:
        """Send a notification, delivered on the loop after what is already queued.

        Dropped silently when notifications are off or the link is down, as on air.
        """
        asyncio.get_running_loop().call_soon(self._deliver, uuid, bytes(value))

    def drop(self) -> None:
        """The device goes away: notifications still queued are lost."""
        self._go_down()

    def drop_later(self) -> None:
        """Drop the link after the notifications queued so far are delivered."""
        asyncio.get_running_loop().call_soon(self._go_down)

    # ------------------------------------------------------------------ internals
    def _deliver(self, uuid: str, value: bytes) -> None:
        callback = self._callbacks.get(uuid)
        if callback is not None and self.is_connected:
            callback(value)

    def _go_down(self) -> None:
        self._callbacks.clear()
        self._disconnected.set()

    def _check(self, uuid: str) -> None:
        if not self.is_connected:
            msg = f"{self._address}: not connected; reconnect and retry"
            raise DisconnectedError(msg)
        error = self.errors.get(uuid)
        if error is not None:
            raise error
