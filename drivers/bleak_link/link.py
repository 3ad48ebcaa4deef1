"""`BleakLink`: a `GattLink` over a connected Bleak client (bleak-retry-connector)."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import NoReturn

from bleak import BleakClient, BleakScanner
from bleak.args.bluez import BlueZScannerArgs
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError
from bleak_retry_connector import BleakClientWithServiceCache, establish_connection

from drivers.bleak_link.errors import PAIR_REMEDY, maybe_link_loss, pairing_failure, translate
from drivers.errors import DeviceNotFoundError, DisconnectedError
from drivers.link import NotifyCallback

_LOGGER = logging.getLogger(__name__)

# How long to look for a device's advertisement before giving up on connecting to it.
FIND_TIMEOUT_S = 10.0
# Connection attempts (bleak-retry-connector backs off between them by error class).
CONNECT_ATTEMPTS = 3
# A wrong passkey will not get better by retrying, and each try re-prompts the agent.
PAIR_CONNECT_ATTEMPTS = 1

# How long an operation's failure may precede Bleak's disconnected callback (≈1 ms measured).
LINK_LOSS_SETTLE_S = 0.1


def bluez_args(adapter: str | None) -> BlueZScannerArgs:
    """Bleak's BlueZ arguments for `adapter` (None: BlueZ's default adapter)."""
    return BlueZScannerArgs(adapter=adapter) if adapter else BlueZScannerArgs()


def raise_not_found(address: str, timeout_s: float) -> NoReturn:
    """Raise the `DeviceNotFoundError` for a device not heard within `timeout_s`."""
    msg = (
        f"{address}: not advertising within {timeout_s:g} s; wake the device (take a reading "
        "or press its Bluetooth button) and bring it closer"
    )
    raise DeviceNotFoundError(msg)


class BleakLink:
    """A `GattLink` over a connected Bleak client. Build it with `BleakLink.connect`."""

    def __init__(self, address: str, name: str | None, hint: str = PAIR_REMEDY) -> None:
        """Prepare a link; `connect` attaches the client."""
        self._address = address.upper()
        self._name = name
        self._hint = hint
        self._client: BleakClient | None = None
        self._disconnected = asyncio.Event()

    @classmethod
    async def connect(
        cls,
        address: str,
        *,
        name: str | None = None,
        device: BLEDevice | None = None,
        adapter: str | None = None,
        pair: bool = False,
        find_timeout_s: float = FIND_TIMEOUT_S,
        attempts: int = CONNECT_ATTEMPTS,
        hint: str = PAIR_REMEDY,
    ) -> "BleakLink":
        """Find the device if needed, connect (and bond if `pair`), discover services.

        Args:
            address: Bluetooth address.
            name: Display name for logs.
            device: Bleak's device from a recent scan (skips looking for it).
            adapter: BlueZ adapter (``hci0``), or the default.
            pair: Bond while connecting (a `PairingAgent` must be registered for passkeys).
            find_timeout_s: How long to look for the device's advertisement.
            attempts: Connection attempts (1 when pairing).
            hint: How to put this device in pairing mode, for errors.

        Returns:
            The connected link.

        Raises:
            DeviceNotFoundError: Not advertising within `find_timeout_s`.
            PairingError: Bonding failed.
            LinkError: Connecting failed otherwise.
        """
        link = cls(address, name, hint)
        bluez = bluez_args(adapter)
        try:
            if device is None:
                device = await BleakScanner.find_device_by_address(
                    address, timeout=find_timeout_s, bluez=bluez
                )
            if device is None:
                raise_not_found(link.address, find_timeout_s)
            link._client = await establish_connection(
                BleakClientWithServiceCache,
                device,
                name or link.address,
                disconnected_callback=link._on_disconnected,
                max_attempts=PAIR_CONNECT_ATTEMPTS if pair else attempts,
                pair=pair,
                bluez=bluez,
            )
        except Exception as exc:  # the translation boundary
            raise translate(exc, link.address, "connect", hint) from exc
        _LOGGER.debug("%s: connected", link.address)
        return link

    def _on_disconnected(self, _client: BleakClient) -> None:
        if not self._disconnected.is_set():
            _LOGGER.debug("%s: link down", self._address)
        self._disconnected.set()

    @contextlib.asynccontextmanager
    async def _translated(self, doing: str) -> AsyncIterator[BleakClient]:
        if self._client is None or self._disconnected.is_set():
            msg = f"{self._address}: not connected; reconnect and retry"
            raise DisconnectedError(msg)
        try:
            yield self._client
        except Exception as exc:  # the translation boundary
            if pairing_failure(exc) is not None:
                # A device hangs up on a failed bond; the bond failure is the news.
                raise translate(exc, self._address, doing, self._hint) from exc
            if not self._disconnected.is_set() and maybe_link_loss(exc):
                # An operation cut by link loss can fail a moment before Bleak's disconnected
                # callback runs; give it that moment, so a drop reads as a drop.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._disconnected.wait(), LINK_LOSS_SETTLE_S)
            if self._disconnected.is_set():
                msg = f"{self._address}: link lost during {doing}; bring it closer and retry"
                raise DisconnectedError(msg) from exc
            raise translate(exc, self._address, doing, self._hint) from exc

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
        return (
            self._client is not None
            and not self._disconnected.is_set()
            and self._client.is_connected
        )

    @property
    def disconnected(self) -> asyncio.Event:
        """Set by Bleak's disconnected callback (≈1 ms after a drop) or `disconnect`."""
        return self._disconnected

    def _characteristic_properties(self, uuid: str) -> list[str]:
        if self._client is None or self._disconnected.is_set():
            return []
        try:
            char = self._client.services.get_characteristic(uuid)
        except BleakError:  # services gone after a drop
            return []
        return [] if char is None else list(char.properties)

    def gatt_database(self) -> dict[str, dict[str, list[str]]]:
        """The discovered services: service UUID → characteristic UUID → BlueZ flags.

        Recorded with a transfer (`drivers.recording`) so a capture can be served again.
        Empty once the link is down.
        """
        if self._client is None or self._disconnected.is_set():
            return {}
        try:
            return {
                service.uuid.lower(): {
                    char.uuid.lower(): sorted(char.properties) for char in service.characteristics
                }
                for service in self._client.services
            }
        except BleakError:
            return {}

    def has_characteristic(self, uuid: str) -> bool:
        """Whether the discovered services hold the characteristic."""
        return bool(self._characteristic_properties(uuid))

    def can_write(self, uuid: str) -> bool:
        """Whether the characteristic accepts writes."""
        props = self._characteristic_properties(uuid)
        return "write" in props or "write-without-response" in props

    async def read(self, uuid: str) -> bytes:
        """Read a characteristic value."""
        async with self._translated(f"read {uuid[4:8]}") as client:
            return bytes(await client.read_gatt_char(uuid))

    async def write(self, uuid: str, data: bytes, *, response: bool = True) -> None:
        """Write a characteristic value."""
        async with self._translated(f"write {uuid[4:8]}") as client:
            await client.write_gatt_char(uuid, data, response=response)

    async def subscribe(self, uuid: str, callback: NotifyCallback) -> None:
        """StartNotify (ordered across characteristics), delivering bytes to `callback`."""

        def deliver(_char: object, data: bytearray) -> None:
            callback(bytes(data))

        async with self._translated(f"subscribe {uuid[4:8]}") as client:
            await client.start_notify(uuid, deliver, bluez={"use_start_notify": True})

    async def unsubscribe(self, uuid: str) -> None:
        """Stop notifications; nothing to do on a link that is down."""
        if not self.is_connected:
            return
        async with self._translated(f"unsubscribe {uuid[4:8]}") as client:
            await client.stop_notify(uuid)

    async def pair(self) -> None:
        """Bond through BlueZ (the registered agent answers passkey requests)."""
        async with self._translated("pair") as client:
            await client.pair()

    async def disconnect(self) -> None:
        """Hang up and close Bleak's D-Bus connection; never raises."""
        client = self._client
        self._disconnected.set()
        if client is None:
            return
        try:
            await client.disconnect()
        except Exception as exc:  # noqa: BLE001 - hanging up must not mask the real outcome
            _LOGGER.warning("%s: disconnect did not complete cleanly: %s", self._address, exc)
