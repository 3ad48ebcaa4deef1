"""IEEE 11073-20601 numbers (SFLOAT, FLOAT) and the SIG Date Time / Day of Week fields.

SFLOAT is 16 bits: a 4-bit two's-complement exponent over a 12-bit two's-complement mantissa.
FLOAT is 32 bits: an 8-bit exponent over a 24-bit mantissa. Value = mantissa x 10^exponent.

Special values (exponent 0) decode like Nordic's ``Data.getFloatValue``: NaN, NRes ("not at
this resolution") and the reserved value all become ``float("nan")``; +INF and -INF become
``±math.inf``. None of them raise: a device that sends NRes for a MAP it could not compute
still delivers its systolic and diastolic. Callers that must tell NaN, NRes and reserved
apart look at the raw bytes with `sfloat_special` / `float_special`.

Date Time (0x2A08) is kept raw in a `DeviceTime`: year 0, month 0 or day 0 mean "unknown", and
impossible values (month 13 from i-SENS meters) are kept, never rejected.
"""

import math
import struct
from datetime import date
from enum import Enum

from drivers.errors import ParseError
from drivers.gatt._codes import CodeTable
from drivers.readings import DeviceTime

_DATE_TIME = struct.Struct("<HBBBBB")
DATE_TIME_SIZE = _DATE_TIME.size


class Special(Enum):
    """The IEEE 11073 special values, which all sit at exponent 0."""

    NAN = "NaN"
    NRES = "NRes"
    POSITIVE_INFINITY = "+INF"
    NEGATIVE_INFINITY = "-INF"
    RESERVED = "reserved"


# Mantissa offsets from the largest positive mantissa (0x..7FE) upward, in wire order.
_SPECIALS = (
    Special.POSITIVE_INFINITY,
    Special.NAN,
    Special.NRES,
    Special.RESERVED,
    Special.NEGATIVE_INFINITY,
)
_SPECIAL_FLOATS = (math.inf, math.nan, math.nan, math.nan, -math.inf)
_SFLOAT_FIRST_SPECIAL = 0x07FE
_FLOAT_FIRST_SPECIAL = 0x007FFFFE
_SFLOAT_NAN, _SFLOAT_PINF, _SFLOAT_NINF = 0x07FF, 0x07FE, 0x0802
_FLOAT_NAN, _FLOAT_PINF, _FLOAT_NINF = 0x007FFFFF, 0x007FFFFE, 0x00800002


def _scale(mantissa: int, exponent: int) -> float:
    # Dividing by an exact power of ten rounds once; multiplying by 0.1 would not (18.9, not
    # 18.900000000000002).
    if exponent >= 0:
        return float(mantissa * 10**exponent)
    divisor: int = 10**-exponent
    return mantissa / divisor


def sfloat_from_raw(raw: int) -> float:
    """Decode an SFLOAT already read as an unsigned 16-bit integer."""
    if _SFLOAT_FIRST_SPECIAL <= raw <= _SFLOAT_FIRST_SPECIAL + 4:
        return _SPECIAL_FLOATS[raw - _SFLOAT_FIRST_SPECIAL]
    mantissa = raw & 0x0FFF
    if mantissa >= 0x0800:
        mantissa -= 0x1000
    exponent = raw >> 12
    if exponent >= 0x8:
        exponent -= 0x10
    return _scale(mantissa, exponent)


def float_from_raw(raw: int) -> float:
    """Decode a FLOAT already read as an unsigned 32-bit integer."""
    if _FLOAT_FIRST_SPECIAL <= raw <= _FLOAT_FIRST_SPECIAL + 4:
        return _SPECIAL_FLOATS[raw - _FLOAT_FIRST_SPECIAL]
    mantissa = raw & 0x00FFFFFF
    if mantissa >= 0x00800000:
        mantissa -= 0x01000000
    exponent = raw >> 24
    if exponent >= 0x80:
        exponent -= 0x100
    return _scale(mantissa, exponent)


def _exactly(data: bytes, size: int, field: str) -> int:
    if len(data) != size:
        raise ParseError(field, min(len(data), size), f"expected {size} bytes, got {len(data)}")
    return int.from_bytes(data, "little")


def decode_sfloat(data: bytes) -> float:
    """Decode a 2-byte little-endian SFLOAT.

    Args:
        data: Exactly two bytes.

    Returns:
        The value; NaN for NaN, NRes and the reserved value, ±inf for ±INF.

    Raises:
        ParseError: `data` is not two bytes long.
    """
    return sfloat_from_raw(_exactly(data, 2, "sfloat"))


def decode_float(data: bytes) -> float:
    """Decode a 4-byte little-endian FLOAT.

    Args:
        data: Exactly four bytes.

    Returns:
        The value; NaN for NaN, NRes and the reserved value, ±inf for ±INF.

    Raises:
        ParseError: `data` is not four bytes long.
    """
    return float_from_raw(_exactly(data, 4, "float"))


def sfloat_special(data: bytes) -> Special | None:
    """Which special value a 2-byte SFLOAT is, or None for an ordinary number."""
    raw = _exactly(data, 2, "sfloat") - _SFLOAT_FIRST_SPECIAL
    return _SPECIALS[raw] if 0 <= raw < len(_SPECIALS) else None


def float_special(data: bytes) -> Special | None:
    """Which special value a 4-byte FLOAT is, or None for an ordinary number."""
    raw = _exactly(data, 4, "float") - _FLOAT_FIRST_SPECIAL
    return _SPECIALS[raw] if 0 <= raw < len(_SPECIALS) else None


def _to_raw(
    value: float,
    exponent: int | None,
    mantissa_bits: int,
    exponent_bits: int,
    specials: tuple[int, int, int],
) -> int:
    nan, pinf, ninf = specials
    if math.isnan(value):
        return nan
    if math.isinf(value):
        return pinf if value > 0 else ninf
    e_min, e_max = -(1 << (exponent_bits - 1)), (1 << (exponent_bits - 1)) - 1
    m_max = (1 << (mantissa_bits - 1)) - 1

    def mantissa_for(e: int) -> int | None:
        scaled = value * 10**-e if e < 0 else value / 10**e
        if not math.isfinite(scaled):
            return None
        m = round(scaled)
        # At exponent 0 the top two and bottom three mantissas are the special values.
        limit = m_max - 2 if e == 0 else m_max
        return m if -limit - (0 if e == 0 else 1) <= m <= limit else None

    def pack(m: int, e: int) -> int:
        return ((e & ((1 << exponent_bits) - 1)) << mantissa_bits) | (
            m & ((1 << mantissa_bits) - 1)
        )

    if exponent is not None:
        if not e_min <= exponent <= e_max:
            msg = f"exponent {exponent} is outside {e_min}..{e_max}"
            raise ValueError(msg)
        m = mantissa_for(exponent)
        if m is None:
            msg = f"{value!r} does not fit a {mantissa_bits}-bit mantissa at exponent {exponent}"
            raise ValueError(msg)
        return pack(m, exponent)
    # Prefer an exact encoding, the plainest first (exponent 0, then finer, then coarser), so
    # parse(encode(x)) == x for every value a parser can produce.
    for e in (0, *range(-1, e_min - 1, -1), *range(1, e_max + 1)):
        m = mantissa_for(e)
        if m is not None and _scale(m, e) == value:
            return pack(m, e)
    for e in range(e_min, e_max + 1):  # no exact form: the finest that fits, rounded
        m = mantissa_for(e)
        if m is not None:
            return pack(m, e)
    msg = f"{value!r} is too large for IEEE 11073 {mantissa_bits + exponent_bits}-bit float"
    raise ValueError(msg)


def encode_sfloat(value: float, exponent: int | None = None) -> bytes:
    """Encode a 2-byte SFLOAT (the simulator's inverse of `decode_sfloat`).

    Args:
        value: The number; NaN and ±inf become the NaN and ±INF specials.
        exponent: The power of ten to use (-8..7), as a device would fix it (e.g. -5 for
            kg/L glucose). None picks an exact encoding when one exists.

    Returns:
        Two bytes, little-endian.

    Raises:
        ValueError: The value does not fit.
    """
    return _to_raw(value, exponent, 12, 4, (_SFLOAT_NAN, _SFLOAT_PINF, _SFLOAT_NINF)).to_bytes(
        2, "little"
    )


def encode_float(value: float, exponent: int | None = None) -> bytes:
    """Encode a 4-byte FLOAT (the simulator's inverse of `decode_float`).

    Args:
        value: The number; NaN and ±inf become the NaN and ±INF specials.
        exponent: The power of ten to use (-128..127); None picks an exact encoding.

    Returns:
        Four bytes, little-endian.

    Raises:
        ValueError: The value does not fit.
    """
    return _to_raw(value, exponent, 24, 8, (_FLOAT_NAN, _FLOAT_PINF, _FLOAT_NINF)).to_bytes(
        4, "little"
    )


def decode_date_time(data: bytes) -> DeviceTime:
    """Decode a 7-byte Date Time (0x2A08) into raw device clock fields.

    Args:
        data: Exactly seven bytes: year (uint16), month, day, hours, minutes, seconds.

    Returns:
        The fields as sent (year 0 = unknown; out-of-range values are kept).

    Raises:
        ParseError: `data` is not seven bytes long.
    """
    _exactly(data, DATE_TIME_SIZE, "date_time")
    return DeviceTime(*_DATE_TIME.unpack(data))


def encode_date_time(value: DeviceTime) -> bytes:
    """Encode a 7-byte Date Time; `offset_minutes` is not part of it and is dropped.

    Raises:
        ValueError: A field does not fit its byte (year above 65535, a negative field …).
    """
    try:
        return _DATE_TIME.pack(
            value.year, value.month, value.day, value.hour, value.minute, value.second
        )
    except struct.error as exc:
        msg = f"date time {value} does not fit the 7-byte Date Time"
        raise ValueError(msg) from exc


class DayOfWeek(CodeTable):
    """Day of Week (0x2A09)."""

    UNKNOWN = 0
    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6
    SUNDAY = 7

    @classmethod
    def of(cls, day: date) -> "DayOfWeek":
        """The day of week of a calendar date."""
        return cls(day.isoweekday())
