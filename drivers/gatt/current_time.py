"""Current Time Service: Current Time (0x2A2B), read to measure clock skew or written to set it.

Ten bytes: Date Time (7), Day of Week, Fractions256 and Adjust Reason.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import IntFlag

from drivers.gatt._reader import Reader
from drivers.gatt.ieee11073 import DayOfWeek, encode_date_time
from drivers.readings import DeviceTime


class AdjustReason(IntFlag):
    """Why the clock last changed; unknown (reserved) bits are kept."""

    NONE = 0
    MANUAL_TIME_UPDATE = 1 << 0
    EXTERNAL_REFERENCE_TIME_UPDATE = 1 << 1
    CHANGE_OF_TIME_ZONE = 1 << 2
    CHANGE_OF_DST = 1 << 3


@dataclass(frozen=True, slots=True, kw_only=True)
class CurrentTime:
    """The Current Time characteristic value.

    Attributes:
        time: The device clock, raw (``offset_minutes`` is 0).
        day_of_week: As the device says it (may disagree with `time` on a confused device).
        fractions256: 1/256 s units past `time.second`.
        adjust_reason: Why the clock last changed.
    """

    time: DeviceTime
    day_of_week: DayOfWeek = DayOfWeek.UNKNOWN
    fractions256: int = 0
    adjust_reason: AdjustReason = AdjustReason.NONE

    @classmethod
    def from_datetime(
        cls, value: datetime, adjust_reason: AdjustReason = AdjustReason.NONE
    ) -> "CurrentTime":
        """The value to write to set a device clock to the wall time `value`."""
        return cls(
            time=DeviceTime.from_datetime(value),
            day_of_week=DayOfWeek.of(value.date()),
            fractions256=value.microsecond * 256 // 1_000_000,
            adjust_reason=adjust_reason,
        )


def parse_current_time(data: bytes) -> CurrentTime:
    """Parse a Current Time (0x2A2B) value.

    Args:
        data: The characteristic value.

    Returns:
        The fields as the device sent them.

    Raises:
        ParseError: The value is shorter than ten bytes.
    """
    r = Reader(data)
    return CurrentTime(
        time=r.date_time("time"),
        day_of_week=DayOfWeek(r.u8("day_of_week")),
        fractions256=r.u8("fractions256"),
        adjust_reason=AdjustReason(r.u8("adjust_reason")),
    )


def build_current_time(value: CurrentTime) -> bytes:
    """The ten bytes of a Current Time value (what a client writes, or a device returns).

    Raises:
        ValueError: A field does not fit its byte.
    """
    tail = (value.day_of_week, value.fractions256, value.adjust_reason)
    if not all(0 <= v <= 0xFF for v in tail):
        msg = f"current time {value} has a field outside 0..255"
        raise ValueError(msg)
    return encode_date_time(value.time) + bytes(tail)
