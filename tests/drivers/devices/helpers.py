"""Shared bits for driver tests: contexts, a fixed clock, and a BleakLink session."""

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from drivers.bleak_link import BleakLink
from drivers.devices.base import Advertisement, CollectContext, Cursor, Driver, Transfer
from drivers.devices.registry import default_registry

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def fixed_clock() -> datetime:
    return NOW


def context_for(driver: Driver, advert: Advertisement, **overrides) -> CollectContext:
    match = driver.match(advert)
    assert match is not None, f"{driver.name} does not claim {advert}"
    return CollectContext(match=match, **overrides)


@contextlib.asynccontextmanager
async def bleak_link(address: str, **kwargs) -> AsyncIterator[BleakLink]:
    """Connect with the real Bleak (against the simulator); always disconnect."""
    link = await BleakLink.connect(address, find_timeout_s=5, **kwargs)
    try:
        yield link
    finally:
        await link.disconnect()


async def collect_over_bleak(
    address: str, name: str, uuids: tuple[str, ...], cursor: Cursor, driver=None, **context
) -> Transfer:
    """One collector-style transfer: match, connect, collect, disconnect."""
    advert = Advertisement(address=address, name=name, service_uuids=uuids)
    claim = default_registry().match(advert) if driver is None else None
    chosen = driver if driver is not None else claim.driver
    ctx = context_for(chosen, advert, **context)
    async with bleak_link(address) as link:
        return await chosen.collect(link, cursor, ctx)
