"""Pairing while the gateway runs: the collector's reads and a pairing take turns per device.

BlueZ answers "In progress" (busy) to a pairing while the collector holds (or is opening) a
link to the same device, and a collector that keeps retrying a device that refuses it "not
paired" would hold it forever. So a pairing first reserves the device: new links to it wait
until the pairing ends, the link in progress (a transfer being committed) is let finish, then
the pairing runs alone. After a pairing the device is due for a read at once.

The collector is not changed for this: the runtime wraps the collector's radio
(`CoordinatedRadio`) and the API's pairing control (`CoordinatedPairing`).
"""

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager

from drivers.devices.base import Advertisement
from drivers.link import GattLink
from gateway.collector import Radio
from gateway.services import PairingControl, PairingResult

_LOGGER = logging.getLogger(__name__)

# How long a pairing waits for a transfer in progress to finish (a long meter history takes
# tens of seconds); after that the person is asked to retry.
LINK_WAIT_S = 45.0


class PairingCoordinator:
    """Per-device turn-taking between links (reads) and pairings. One event loop only."""

    def __init__(self) -> None:
        """No device reserved, no link open."""
        self._links: Counter[str] = Counter()
        self._reserved: set[str] = set()
        self._changed = asyncio.Condition()

    def reserved(self, address: str) -> bool:
        """Whether a pairing holds `address` now."""
        return address.upper() in self._reserved

    @contextlib.asynccontextmanager
    async def link(self, address: str) -> AsyncIterator[None]:
        """Around a collector link: waits while a pairing holds the device."""
        address = address.upper()
        async with self._changed:
            if address in self._reserved:
                _LOGGER.debug("%s: read waits for the pairing in progress", address)
            await self._changed.wait_for(lambda: address not in self._reserved)
            self._links[address] += 1
        try:
            yield
        finally:
            async with self._changed:
                self._links[address] -= 1
                self._changed.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self, address: str, wait_s: float = LINK_WAIT_S) -> AsyncIterator[None]:
        """Hold `address` for a pairing: no new link starts, the open one is let finish.

        Raises:
            TimeoutError: A link stayed open longer than `wait_s` (or another pairing of
                the same device is in progress).
        """
        address = address.upper()
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: address not in self._reserved), wait_s
            )
            self._reserved.add(address)
        try:
            async with self._changed:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self._links[address] == 0), wait_s
                )
            yield
        finally:
            async with self._changed:
                self._reserved.discard(address)
                self._changed.notify_all()


class CoordinatedRadio:
    """A collector radio whose links wait for pairings (the `gateway.collector.Radio` shape)."""

    def __init__(self, radio: Radio, coordinator: PairingCoordinator) -> None:
        """Wrap `radio`."""
        self._radio = radio
        self._coordinator = coordinator

    def advertisements(self) -> AbstractAsyncContextManager[AsyncIterator[Advertisement]]:
        """The wrapped radio's scan."""
        return self._radio.advertisements()

    @contextlib.asynccontextmanager
    async def connect(self, advertisement: Advertisement) -> AsyncIterator[GattLink]:
        """The wrapped radio's link, opened only when no pairing holds the device."""
        async with (
            self._coordinator.link(advertisement.address),
            self._radio.connect(advertisement) as link,
        ):
            yield link

    async def release_stale(self, addresses: Iterable[str]) -> list[str]:
        """The wrapped radio's release of links a dead earlier run left up."""
        return await self._radio.release_stale(addresses)


class CoordinatedPairing:
    """A `PairingControl` that takes the device from the collector for the pairing."""

    def __init__(
        self,
        inner: PairingControl,
        coordinator: PairingCoordinator,
        on_paired: Callable[[str], None] = lambda _a: None,
    ) -> None:
        """Wrap `inner`; `on_paired(address)` runs after a successful bond."""
        self._inner = inner
        self._coordinator = coordinator
        self._on_paired = on_paired

    async def pair(self, address: str, passkey: int | None) -> PairingResult:
        """Pair once the device's read in progress (if any) has finished."""
        try:
            async with self._coordinator.exclusive(address):
                result = await self._inner.pair(address, passkey)
        except TimeoutError:
            return PairingResult(
                paired=False,
                message=(
                    f"{address}: the gateway is still reading this device; wait until it "
                    "finishes, then pair again"
                ),
            )
        if result.paired:
            self._on_paired(address.upper())
        return result

    async def remove_bond(self, address: str) -> None:
        """See `PairingControl.remove_bond`."""
        await self._inner.remove_bond(address)
