"""Device clocks: measure the skew, and set the clock only where allowed.

Skew is read from Current Time (0x2A2B) or, on meters such as the Roche Aviva Connect, the
Date Time characteristic (0x2A08) inside the health service. The device shows wall time in the
configured zone, so skew = (device wall time read in that zone) - (gateway UTC clock). Writing
is opt-in (`ClockPolicy.write`): peers disagree on it (Tidepool sets meter clocks, xDrip and
omblepy do not) and readings keep their raw device time either way.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from drivers.errors import PairingError, ParseError, ProtocolError
from drivers.gatt import uuids
from drivers.gatt.current_time import (
    AdjustReason,
    CurrentTime,
    build_current_time,
    parse_current_time,
)
from drivers.gatt.ieee11073 import decode_date_time
from drivers.link import GattLink
from drivers.readings import DeviceTime

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClockPolicy:
    """What a driver may do with the device clock.

    Attributes:
        measure: Read CTS / Date Time to measure skew (harmless; on by default).
        write: Write CTS when the device allows it and skew exceeds `write_threshold_s`.
        write_threshold_s: Skew (seconds, absolute) that justifies a write.
    """

    measure: bool = True
    write: bool = False
    write_threshold_s: float = 60.0


@dataclass(frozen=True, slots=True)
class ClockCheck:
    """What one look at the device clock found.

    Attributes:
        device_time: The clock as the device showed it, raw; None if it has no readable clock.
        skew_s: Device clock minus gateway clock, seconds; None if unknown.
        written: The gateway set the device clock (CTS) during this check.
    """

    device_time: DeviceTime | None = None
    skew_s: float | None = None
    written: bool = False


def skew_seconds(device_time: DeviceTime, gateway_now: datetime, zone: ZoneInfo) -> float | None:
    """Device clock minus gateway clock.

    Args:
        device_time: The raw clock fields the device showed.
        gateway_now: The gateway clock at the moment of reading (aware).
        zone: The zone the device clock shows.

    Returns:
        Seconds (positive: the device is ahead), or None if the device does not know the date.
    """
    wall = device_time.wall_clock()
    if wall is None:
        return None
    return (wall.replace(tzinfo=zone) - gateway_now).total_seconds()


def should_write(policy: ClockPolicy, skew_s: float | None, writable: bool) -> bool:
    """Whether to set the device clock: allowed by config and device, and worth it.

    A clock that does not know the date (`skew_s` None) is worth setting.
    """
    if not (policy.write and writable):
        return False
    return skew_s is None or abs(skew_s) > policy.write_threshold_s


async def read_device_clock(link: GattLink) -> DeviceTime | None:
    """The device clock from Current Time, else Date Time; None if neither is readable."""
    for uuid in (uuids.CURRENT_TIME, uuids.DATE_TIME):
        if not link.has_characteristic(uuid):
            continue
        try:
            raw = await link.read(uuid)
            if uuid == uuids.CURRENT_TIME:
                return parse_current_time(raw).time
            return decode_date_time(raw)
        except (ProtocolError, PairingError, ParseError) as exc:
            # The clock is a nicety: a device that guards it must not stop the transfer.
            _LOGGER.debug("%s: clock %s unreadable: %s", link.address, uuid[4:8], exc)
    return None


async def check_clock(
    link: GattLink, policy: ClockPolicy, *, clock: Callable[[], datetime], zone: str
) -> ClockCheck:
    """Measure the device clock's skew and, if `policy` allows, set it.

    Args:
        link: A connected link.
        policy: Whether to measure and write.
        clock: The gateway clock (aware UTC).
        zone: IANA zone the device clock shows.

    Returns:
        What was found and done; an empty `ClockCheck` when measuring is off.
    """
    if not policy.measure and not policy.write:
        return ClockCheck()
    tz = ZoneInfo(zone)
    device_time = await read_device_clock(link)
    skew = None if device_time is None else skew_seconds(device_time, clock(), tz)
    writable = link.can_write(uuids.CURRENT_TIME)
    if not should_write(policy, skew, writable):
        return ClockCheck(device_time, skew)
    now_wall = clock().astimezone(tz).replace(tzinfo=None)
    value = CurrentTime.from_datetime(now_wall, AdjustReason.MANUAL_TIME_UPDATE)
    try:
        await link.write(uuids.CURRENT_TIME, build_current_time(value), response=True)
    except ProtocolError as exc:
        _LOGGER.warning("%s: device refused the clock write: %s", link.address, exc)
        return ClockCheck(device_time, skew)
    _LOGGER.info("%s: device clock set (skew was %s s)", link.address, _fmt(skew))
    return ClockCheck(device_time, skew, written=True)


def _fmt(skew: float | None) -> str:
    return "unknown" if skew is None else f"{skew:+.0f}"
