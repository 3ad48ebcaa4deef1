"""Scanning with Bleak: `BleakRadio` (the collector's radio), `scan`, `find`, stale links."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

from bleak import BleakScanner
from bleak.backends.bluezdbus.manager import get_global_bluez_manager
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError
from bleak_retry_connector import close_stale_connections, get_device

from drivers.bleak_link.errors import translate
from drivers.bleak_link.link import CONNECT_ATTEMPTS, FIND_TIMEOUT_S, BleakLink, bluez_args
from drivers.bluez_watch import watch_bluez
from drivers.devices.base import Advertisement

_LOGGER = logging.getLogger(__name__)

SCAN_STOP_S = 2.0  # how long ending a scan may take (StopDiscovery's reply)


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


async def scan(timeout_s: float, *, adapter: str | None = None) -> list[Advertisement]:
    """Listen for `timeout_s` and return the latest advertisement of each device heard.

    Raises:
        LinkError: Bluetooth (or BlueZ over D-Bus) is not available.
    """
    bluez = bluez_args(adapter)
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
        await BleakScanner.find_device_by_filter(
            is_it, timeout=timeout_s, bluez=bluez_args(adapter)
        )
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

        scanner = BleakScanner(detection_callback=heard, bluez=bluez_args(self._adapter))
        try:
            await scanner.start()
        except Exception as exc:  # the translation boundary
            raise translate(exc, self._adapter or "adapter", "scan") from exc
        try:
            async with watch_bluez(await _adapter_path(self._adapter)) as gone:
                yield _drain(queue, gone)
        finally:
            # Bounded: with BlueZ gone, Bleak's StopDiscovery can wait for a reply that never
            # comes, and the scan's end is what tells the gateway to stop.
            with contextlib.suppress(BleakError, OSError, EOFError, TimeoutError):
                async with asyncio.timeout(SCAN_STOP_S):
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
