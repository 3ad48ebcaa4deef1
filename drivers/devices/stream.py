"""End of an unprompted indication stream (BP cuffs, scales): idle, hang-up or cap.

Devices without RACP push their stored records once indications are on and never say they
are done. Like Junction's SDK, the stream ends after `idle_s` without a record or `total_s`
in all; most devices also hang up after their last record, which ends it at once.
"""

import asyncio
import logging
from enum import StrEnum

from drivers.errors import DriverError
from drivers.link import GattLink

_LOGGER = logging.getLogger(__name__)

# Junction's Devices SDK: 2 s without a new record, or 30 s in total.
IDLE_S = 2.0
TOTAL_S = 30.0


class StreamEnd(StrEnum):
    """Why a stream was considered over."""

    IDLE = "idle"
    HUNG_UP = "hung_up"
    CAPPED = "capped"  # the total cap cut it; records may have been still coming


class Activity:
    """When a device last sent something (event-loop clock)."""

    def __init__(self) -> None:
        self.count = 0
        self.last_at = asyncio.get_running_loop().time()

    def touch(self) -> None:
        """A record (or any packet of one) arrived."""
        self.count += 1
        self.last_at = asyncio.get_running_loop().time()


async def wait_stream_end(
    link: GattLink, activity: Activity, *, idle_s: float = IDLE_S, total_s: float = TOTAL_S
) -> StreamEnd:
    """Wait until the device is idle for `idle_s`, hangs up, or `total_s` passed.

    The idle timer starts at `activity.last_at`: reset it (`Activity()` or `touch`) when the
    device was asked to start sending.

    Returns:
        What ended the stream.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        now = loop.time()
        if link.disconnected.is_set():
            return StreamEnd.HUNG_UP
        if now >= started + total_s:
            return StreamEnd.CAPPED
        idle_deadline = activity.last_at + idle_s
        if now >= idle_deadline:
            return StreamEnd.IDLE
        timeout = min(idle_deadline, started + total_s) - now
        try:
            await asyncio.wait_for(link.disconnected.wait(), timeout)
        except TimeoutError:
            continue
        return StreamEnd.HUNG_UP


async def stop_taking(link: GattLink, uuid: str) -> None:
    """Turn indications off on `uuid` (the cap ended the stream; take nothing more).

    BlueZ then writes the CCCD, so the device stops sending instead of handing records to a
    central that no longer keeps them. A link that dropped meanwhile needs nothing.
    """
    try:
        await link.unsubscribe(uuid)
    except DriverError as exc:
        _LOGGER.debug("%s: could not stop indications on %s: %s", link.address, uuid, exc)
