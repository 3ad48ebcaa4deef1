"""A bounds-checked little-endian reader shared by the parsers.

Every read names the field it is decoding, so truncated input becomes a `ParseError` that says
which field ran out and at which byte, never an `IndexError` or `struct.error`.
"""

import struct

from drivers.errors import ParseError
from drivers.gatt.ieee11073 import float_from_raw, sfloat_from_raw
from drivers.readings import DeviceTime

_U16 = struct.Struct("<H")
_S16 = struct.Struct("<h")
_U32 = struct.Struct("<I")
_DATE_TIME = struct.Struct("<HBBBBB")


class Reader:
    """Reads fields at an advancing offset; raises `ParseError` when the data runs out."""

    __slots__ = ("_data", "offset")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.offset = 0

    def _advance(self, size: int, field: str) -> int:
        start = self.offset
        if start + size > len(self._data):
            left = len(self._data) - start
            raise ParseError(
                field, start, f"value is truncated ({size} byte(s) needed, {left} left)"
            )
        self.offset = start + size
        return start

    def u8(self, field: str) -> int:
        """One unsigned byte."""
        return self._data[self._advance(1, field)]

    def u16(self, field: str) -> int:
        """Unsigned 16-bit little-endian."""
        return int(_U16.unpack_from(self._data, self._advance(2, field))[0])

    def s16(self, field: str) -> int:
        """Signed 16-bit little-endian."""
        return int(_S16.unpack_from(self._data, self._advance(2, field))[0])

    def u32(self, field: str) -> int:
        """Unsigned 32-bit little-endian."""
        return int(_U32.unpack_from(self._data, self._advance(4, field))[0])

    def sfloat(self, field: str) -> float:
        """IEEE 11073 16-bit SFLOAT."""
        return sfloat_from_raw(self.u16(field))

    def float32(self, field: str) -> float:
        """IEEE 11073 32-bit FLOAT."""
        return float_from_raw(self.u32(field))

    def date_time(self, field: str) -> DeviceTime:
        """The 7-byte Date Time (0x2A08), raw fields kept even when impossible (month 13)."""
        year, month, day, hour, minute, second = _DATE_TIME.unpack_from(
            self._data, self._advance(_DATE_TIME.size, field)
        )
        return DeviceTime(year, month, day, hour, minute, second)

    def rest(self) -> bytes:
        """Whatever is left, consumed; always `bytes`, even from Bleak's `bytearray`."""
        start, self.offset = self.offset, len(self._data)
        return bytes(self._data[start:])

    @property
    def remaining(self) -> int:
        """Bytes not read yet."""
        return len(self._data) - self.offset
