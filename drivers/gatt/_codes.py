"""Code tables that keep values the spec reserves instead of rejecting them."""

from enum import IntEnum


class CodeTable(IntEnum):
    """An `IntEnum` for a SIG code table (sample type, meal, op code, …).

    A value the table does not name (reserved for future use, or vendor-specific) becomes a
    pseudo-member named ``RESERVED_<n>`` rather than raising: a record from a newer or quirky
    device is kept, and the raw value survives an encode round trip.
    """

    @classmethod
    def _missing_(cls, value: object) -> "CodeTable | None":
        if not isinstance(value, int):
            return None
        member = int.__new__(cls, value)
        member._name_ = f"RESERVED_{value}"
        member._value_ = value
        return member
