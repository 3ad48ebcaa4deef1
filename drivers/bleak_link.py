"""The only module that imports Bleak: a `GattLink` over BlueZ, scanning, and error translation.

Connections go through bleak-retry-connector (`establish_connection` with
`BleakClientWithServiceCache`: backoff by error class, BlueZ's GATT cache reused when still
valid). Every Bleak, D-Bus and retry-connector error is translated here into the
`drivers.errors.LinkError` tree, ``raise … from exc``, with a message that leads with the
device and ends with a remedy. Nothing outside this module sees a Bleak type: adverts become
`drivers.devices.base.Advertisement` values.

Gotchas handled (see `shared/reference/bluez-simulator.md`):

- Notifications use StartNotify, never AcquireNotify, which loses cross-characteristic order.
- Bleak raises nothing into code awaiting notifications when the link drops; the
  disconnected callback sets `GattLink.disconnected`, which every driver wait races.
- After a drop Bleak says "Service Discovery has not been performed yet": that is a
  `DisconnectedError`.
- `disconnect()` is always called, even after the device hung up, or Bleak keeps its
  per-connection D-Bus socket open.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any, NoReturn

from bleak import BleakClient, BleakScanner
from bleak.args.bluez import BlueZScannerArgs
from bleak.backends.bluezdbus.manager import get_global_bluez_manager
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakCharacteristicNotFoundError,
    BleakDBusError,
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
    BleakGATTProtocolErrorCode,
)
from bleak_retry_connector import (
    BleakAbortedError,
    BleakClientWithServiceCache,
    BleakNotFoundError,
    BleakOutOfConnectionSlotsError,
    close_stale_connections,
    establish_connection,
    get_device,
)

from drivers.bluez_watch import watch_bluez
from drivers.devices.base import Advertisement
from drivers.errors import (
    DeviceNotFoundError,
    DisconnectedError,
    LinkError,
    LinkTimeoutError,
    PairingError,
    ProtocolError,
)
from drivers.link import NotifyCallback
from drivers.pairing_agent import PairingAgent

_LOGGER = logging.getLogger(__name__)

# How long to look for a device's advertisement before giving up on connecting to it.
FIND_TIMEOUT_S = 10.0
# Connection attempts (bleak-retry-connector backs off between them by error class).
CONNECT_ATTEMPTS = 3
# A wrong passkey will not get better by retrying, and each try re-prompts the agent.
PAIR_CONNECT_ATTEMPTS = 1

# How long an operation's failure may precede Bleak's disconnected callback (≈1 ms measured).
LINK_LOSS_SETTLE_S = 0.1

PAIR_REMEDY = "put the device in pairing mode and run `edge-gateway pair ADDRESS --pin N`"

_PAIRING_ERRORS = {
    "org.bluez.Error.AuthenticationFailed": "the passkey or PIN was wrong",
    "org.bluez.Error.AuthenticationRejected": "the pairing agent had no passkey for it",
    "org.bluez.Error.AuthenticationCanceled": "pairing was cancelled",
    "org.bluez.Error.AuthenticationTimeout": "the device did not answer the pairing request",
    "org.bluez.Error.ConnectionAttemptFailed": "the device refused to bond",
}
_SECURITY_CODES = {
    BleakGATTProtocolErrorCode.INSUFFICIENT_AUTHENTICATION,
    BleakGATTProtocolErrorCode.INSUFFICIENT_AUTHORIZATION,
    BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION,
    BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION_KEY_SIZE,
}
# What BlueZ and Bleak say when the link is gone under an operation.
_GONE_TEXTS = (
    "Service Discovery has not been performed yet",
    "Not connected",
    "not connected",
    "Software caused connection abort",
    "le-connection-abort",
    "Disconnected",
)


def translate(exc: BaseException, address: str, doing: str, hint: str = PAIR_REMEDY) -> LinkError:
    """The `LinkError` for a Bleak / D-Bus / retry-connector failure.

    Args:
        exc: What Bleak (or the OS) raised.
        address: The device, leading the message.
        doing: What was being done (``"read 2a18"``, ``"connect"``).
        hint: How to put this device in pairing mode, for pairing failures.

    Returns:
        The translated error (raise it ``from exc``).
    """
    if isinstance(exc, LinkError):
        return exc
    pairing = _pairing_failure(exc)
    if pairing is not None:
        return PairingError(f"{address}: pairing failed: {pairing}; {hint}")
    text = str(exc)
    if doing == "connect" and any(t in text for t in _GONE_TEXTS):
        return DeviceNotFoundError(
            f"{address}: could not connect (the connection was aborted); the device is out of "
            "range or asleep: wake it (take a reading or press its Bluetooth button) and bring "
            "it closer"
        )
    if isinstance(exc, BleakGATTProtocolError):
        if exc.code in _SECURITY_CODES:
            return PairingError(f"{address}: {doing} needs a bonded device ({text}); {hint}")
        return ProtocolError(
            f"{address}: {doing} refused by the device ({exc.code.name}); "
            "check the device is idle (not measuring) and retry"
        )
    if isinstance(exc, BleakDBusError):
        return _translate_dbus(exc, address, doing, hint)
    if isinstance(exc, (BleakDeviceNotFoundError, BleakNotFoundError)):
        return DeviceNotFoundError(
            f"{address}: not found in range; wake the device (take a reading or press its "
            "Bluetooth button) and bring it closer"
        )
    if isinstance(exc, BleakOutOfConnectionSlotsError):
        return LinkError(
            f"{address}: the Bluetooth adapter has no free connection slot; wait for other "
            "transfers to finish or add an adapter"
        )
    if isinstance(exc, BleakAbortedError):
        return DisconnectedError(
            f"{address}: the connection was aborted (interference or out of range); "
            "bring the device closer and retry"
        )
    if isinstance(exc, BleakCharacteristicNotFoundError):
        return ProtocolError(
            f"{address}: {doing}: the device has no such characteristic; is it the model the "
            "driver expects?"
        )
    if isinstance(exc, BleakBluetoothNotAvailableError):
        return LinkError(
            f"{address}: Bluetooth is not available ({text}); check bluetoothd runs and the "
            "adapter is powered (`bluetoothctl power on`)"
        )
    if isinstance(exc, TimeoutError):
        return LinkTimeoutError(
            f"{address}: {doing} timed out; check the device is awake and in range, then retry"
        )
    if isinstance(exc, BleakError) and any(t in text for t in _GONE_TEXTS):
        return DisconnectedError(f"{address}: link lost during {doing}; bring it closer and retry")
    if isinstance(exc, (EOFError, OSError)):
        return LinkError(
            f"{address}: cannot reach BlueZ over D-Bus during {doing} ({exc!r}); check "
            "bluetoothd and DBUS_SYSTEM_BUS_ADDRESS"
        )
    return LinkError(f"{address}: {doing} failed ({text or type(exc).__name__}); retry")


def _translate_dbus(exc: BleakDBusError, address: str, doing: str, hint: str) -> LinkError:
    name, details = exc.dbus_error, exc.dbus_error_details or ""
    if name in ("org.bluez.Error.NotPermitted", "org.bluez.Error.NotAuthorized") and (
        "pair" in details.lower() or "auth" in details.lower() or "encrypt" in details.lower()
    ):
        return PairingError(f"{address}: {doing} needs a bonded device ({details}); {hint}")
    if name in ("org.freedesktop.DBus.Error.UnknownObject", "org.bluez.Error.DoesNotExist"):
        return DeviceNotFoundError(
            f"{address}: BlueZ does not know the device; scan for it first and retry"
        )
    if any(t in details for t in _GONE_TEXTS) or name == "org.bluez.Error.NotConnected":
        return DisconnectedError(f"{address}: link lost during {doing}; bring it closer and retry")
    if name == "org.bluez.Error.InProgress":
        return LinkError(f"{address}: {doing}: BlueZ is busy with this device; retry shortly")
    return ProtocolError(f"{address}: {doing} failed ({name}: {details}); retry")


def _maybe_link_loss(exc: BaseException) -> bool:
    """Whether `exc` is what an operation in flight gets when the link drops."""
    if isinstance(exc, (EOFError, BrokenPipeError, ConnectionError)):
        return True
    if isinstance(exc, BleakDBusError):
        details = exc.dbus_error_details or ""
        return exc.dbus_error == "org.bluez.Error.Failed" and "ATT error" not in details
    return isinstance(exc, BleakError) and any(t in str(exc) for t in _GONE_TEXTS)


def _pairing_failure(exc: BaseException) -> str | None:
    """Why bonding failed, if `exc` (or what it wraps) is a pairing failure."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, BleakDBusError) and current.dbus_error in _PAIRING_ERRORS:
            return _PAIRING_ERRORS[current.dbus_error]
        current = current.__cause__ or current.__context__
    return None


def _bluez(adapter: str | None) -> BlueZScannerArgs:
    return BlueZScannerArgs(adapter=adapter) if adapter else BlueZScannerArgs()


def _raise_not_found(address: str, timeout_s: float) -> NoReturn:
    msg = (
        f"{address}: not advertising within {timeout_s:g} s; wake the device (take a reading "
        "or press its Bluetooth button) and bring it closer"
    )
    raise DeviceNotFoundError(msg)


def advertisement_from(device: BLEDevice, data: AdvertisementData) -> Advertisement:
    """Our `Advertisement` from Bleak's pair of values."""
    address = device.address.upper()
    name = data.local_name or device.name
    if name and name.replace("-", ":").upper() == address:
        name = None  # BlueZ's alias for a nameless device is its address
    return Advertisement(
        address=address,
        name=name,
        rssi=data.rssi,
        service_uuids=tuple(u.lower() for u in data.service_uuids),
        manufacturer_data={k: bytes(v) for k, v in data.manufacturer_data.items()},
        service_data={k.lower(): bytes(v) for k, v in data.service_data.items()},
    )


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
        bluez = _bluez(adapter)
        try:
            if device is None:
                device = await BleakScanner.find_device_by_address(
                    address, timeout=find_timeout_s, bluez=bluez
                )
            if device is None:
                _raise_not_found(link.address, find_timeout_s)
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
            if _pairing_failure(exc) is not None:
                # A device hangs up on a failed bond; the bond failure is the news.
                raise translate(exc, self._address, doing, self._hint) from exc
            if not self._disconnected.is_set() and _maybe_link_loss(exc):
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


async def scan(timeout_s: float, *, adapter: str | None = None) -> list[Advertisement]:
    """Listen for `timeout_s` and return the latest advertisement of each device heard.

    Raises:
        LinkError: Bluetooth (or BlueZ over D-Bus) is not available.
    """
    bluez = _bluez(adapter)
    try:
        found = await BleakScanner.discover(timeout=timeout_s, return_adv=True, bluez=bluez)
    except Exception as exc:  # the translation boundary
        raise translate(exc, adapter or "adapter", "scan") from exc
    adverts = [advertisement_from(device, data) for device, data in found.values()]
    return sorted(adverts, key=lambda a: (-(a.rssi if a.rssi is not None else -999), a.address))


async def find(
    address: str, timeout_s: float = FIND_TIMEOUT_S, *, adapter: str | None = None
) -> Advertisement | None:
    """The first advertisement of `address` heard within `timeout_s`, or None.

    Raises:
        LinkError: Bluetooth (or BlueZ over D-Bus) is not available.
    """
    wanted = address.upper()
    heard: list[Advertisement] = []

    def is_it(device: BLEDevice, data: AdvertisementData) -> bool:
        if device.address.upper() != wanted:
            return False
        heard.append(advertisement_from(device, data))
        return True

    try:
        await BleakScanner.find_device_by_filter(is_it, timeout=timeout_s, bluez=_bluez(adapter))
    except Exception as exc:  # the translation boundary
        raise translate(exc, wanted, "scan") from exc
    return heard[-1] if heard else None


async def release_stale_links(addresses: Iterable[str]) -> list[str]:
    """Disconnect those of `addresses` that BlueZ still holds connected; the ones released.

    A central that dies (kill -9, power cut) leaves its LE links up: BlueZ does not tie a link
    to the D-Bus client that asked for it, and a connected cuff or meter neither advertises
    nor sends until its own idle timeout hangs up (often 10-60 s, some never). At start-up
    nothing of this process holds a link, so every connected health device is left over and
    is released at once (bleak-retry-connector's `close_stale_connections`, which calls
    Device1.Disconnect). Never raises: a device it cannot release is only logged.
    """
    released: list[str] = []
    for address in addresses:
        try:
            device = await get_device(address)
            props = device.details.get("props", {}) if device is not None else {}
            if device is None or not props.get("Connected"):
                continue
            await close_stale_connections(device)
        except Exception as exc:  # noqa: BLE001 - best effort; the idle hang-up still frees it
            _LOGGER.debug("%s: could not release a stale link: %s", address, exc)
            continue
        released.append(address.upper())
    return released


class BleakRadio:
    """Continuous scanning and connecting, the shape `gateway.collector.Radio` expects."""

    def __init__(self, *, adapter: str | None = None, attempts: int = CONNECT_ATTEMPTS) -> None:
        """Use `adapter` (``hci0``) or BlueZ's default."""
        self._adapter = adapter
        self._attempts = attempts
        self._devices: dict[str, BLEDevice] = {}

    async def release_stale(self, addresses: Iterable[str]) -> list[str]:
        """Release links an earlier run left up (`release_stale_links`)."""
        return await release_stale_links(addresses)

    @contextlib.asynccontextmanager
    async def advertisements(self) -> AsyncIterator[AsyncIterator[Advertisement]]:
        """Scan until the context exits, yielding every advertisement heard.

        Raises:
            LinkError: Scanning could not start.
        """
        queue: asyncio.Queue[Advertisement] = asyncio.Queue(maxsize=1000)

        def heard(device: BLEDevice, data: AdvertisementData) -> None:
            self._devices[device.address.upper()] = device
            with contextlib.suppress(asyncio.QueueFull):  # a stalled consumer loses adverts
                queue.put_nowait(advertisement_from(device, data))

        scanner = BleakScanner(detection_callback=heard, bluez=_bluez(self._adapter))
        try:
            await scanner.start()
        except Exception as exc:  # the translation boundary
            raise translate(exc, self._adapter or "adapter", "scan") from exc
        try:
            async with watch_bluez(await _adapter_path(self._adapter)) as gone:
                yield _drain(queue, gone)
        finally:
            with contextlib.suppress(BleakError, OSError, EOFError):
                await scanner.stop()

    def device(self, address: str) -> BLEDevice | None:
        """Bleak's device for `address` from this radio's scan, if it was heard.

        Pairing in the same process passes it to `pair_device`: looking for the device with
        a second scan would fail while this one runs (BlueZ allows one discovery session
        per D-Bus client: "Operation already in progress").
        """
        return self._devices.get(address.upper())

    @contextlib.asynccontextmanager
    async def connect(self, advertisement: Advertisement) -> AsyncIterator[BleakLink]:
        """A connected link, always disconnected on exit (also after the device hung up)."""
        link = await BleakLink.connect(
            advertisement.address,
            name=advertisement.name,
            device=self._devices.get(advertisement.address.upper()),
            adapter=self._adapter,
            attempts=self._attempts,
        )
        try:
            yield link
        finally:
            await link.disconnect()


async def _drain(
    queue: "asyncio.Queue[Advertisement]", gone: "asyncio.Future[None]"
) -> AsyncIterator[Advertisement]:
    """Advertisements as heard, until `gone` fails (BlueZ went away: see `watch_bluez`)."""
    while True:
        if queue.empty():
            get = asyncio.ensure_future(queue.get())
            either: set[asyncio.Future[Any]] = {get, gone}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if not get.done():
                get.cancel()
                gone.result()  # raises BlueZGoneError
            yield get.result()
        else:
            yield queue.get_nowait()


async def _adapter_path(adapter: str | None) -> str | None:
    """The D-Bus path of the adapter a scan uses: `adapter`, or the one Bleak picks."""
    if adapter:
        return f"/org/bluez/{adapter}"
    try:
        return (await get_global_bluez_manager()).get_default_adapter()
    except BleakError:
        return None


async def pair_device(
    address: str,
    passkey: int | None,
    *,
    hint: str = PAIR_REMEDY,
    adapter: str | None = None,
    find_timeout_s: float = FIND_TIMEOUT_S,
    device: BLEDevice | None = None,
) -> None:
    """Bond with a device, answering BlueZ's passkey or PIN request with `passkey`.

    Registers the gateway's `PairingAgent` for the duration, connects with bonding, and
    hangs up. A device that is already bonded succeeds at once.

    Args:
        address: The device.
        passkey: The passkey or PIN the device shows (None for just-works devices).
        hint: How to put this device in pairing mode, for the error message.
        adapter: BlueZ adapter, or the default.
        find_timeout_s: How long to look for the device.
        device: Bleak's device from a scan already running (`BleakRadio.device`); without
            it the device is looked for with a scan of its own.

    Raises:
        PairingError: Wrong passkey, no passkey, refused, or no agent could be registered.
        DeviceNotFoundError: The device is not advertising.
        LinkError: Anything else on the way.
    """
    wanted = address.upper()

    def passkey_for(asking: str) -> int | None:
        return passkey if asking.upper() == wanted else None

    async with PairingAgent(passkey_for):
        link = await BleakLink.connect(
            wanted,
            device=device,
            adapter=adapter,
            pair=True,
            find_timeout_s=find_timeout_s,
            hint=hint,
        )
        await link.disconnect()
    _LOGGER.info("%s: bonded", wanted)
