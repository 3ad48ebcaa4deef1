"""Body Composition Service: Body Composition Measurement (0x2A9C).

Units follow flag bit 0 like the weight scale: masses in kg (0.005) or lb (0.01), height in
metres (0.001) or inches (0.1). Percentages have resolution 0.1 %, impedance 0.1 Ω, basal
metabolism 1 kJ. A body fat percentage of 0xFFFF means "measurement unsuccessful" and is
carried as ``body_fat_percent=None``. A measurement too long for one packet comes as several
packets with flag bit 12 set; `merge_body_composition` joins them. Reserved flag bits are
ignored.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntFlag
from typing import Any

from drivers.errors import ParseError
from drivers.gatt._reader import Reader
from drivers.gatt.weight_scale import (
    HEIGHT_SCALE,
    MASS_SCALE,
    MEASUREMENT_UNSUCCESSFUL,
    HeightResolution,
    MassResolution,
)
from drivers.readings import DeviceTime, MassUnit

_IMPERIAL = 1 << 0
_TIMESTAMP = 1 << 1
_USER_ID = 1 << 2
_BASAL_METABOLISM = 1 << 3
_MUSCLE_PERCENTAGE = 1 << 4
_MUSCLE_MASS = 1 << 5
_FAT_FREE_MASS = 1 << 6
_SOFT_LEAN_MASS = 1 << 7
_BODY_WATER_MASS = 1 << 8
_IMPEDANCE = 1 << 9
_WEIGHT = 1 << 10
_HEIGHT = 1 << 11
_MULTIPLE_PACKET = 1 << 12

PERCENT_SCALE = 10
IMPEDANCE_SCALE = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class BodyCompositionMeasurement:
    """One Body Composition Measurement packet (0x2A9C); optional fields are None if absent.

    Attributes:
        body_fat_percent: Percent, or None when the scale reported "measurement unsuccessful".
        unit: kg (SI) or lb (imperial); every mass and `height` follow it.
        timestamp: The device clock, raw.
        user_id: The scale's user slot (255 = unknown user).
        basal_metabolism_kj: Kilojoules.
        muscle_percent: Percent.
        muscle_mass: In `unit`.
        fat_free_mass: In `unit`.
        soft_lean_mass: In `unit`.
        body_water_mass: In `unit`.
        impedance_ohm: Ohms.
        weight: In `unit`.
        height: Metres (SI) or inches (imperial).
        multiple_packet: This packet is one part of a measurement split across packets.
    """

    body_fat_percent: float | None
    unit: MassUnit = MassUnit.KG
    timestamp: DeviceTime | None = None
    user_id: int | None = None
    basal_metabolism_kj: int | None = None
    muscle_percent: float | None = None
    muscle_mass: float | None = None
    fat_free_mass: float | None = None
    soft_lean_mass: float | None = None
    body_water_mass: float | None = None
    impedance_ohm: float | None = None
    weight: float | None = None
    height: float | None = None
    multiple_packet: bool = False

    @property
    def measurement_unsuccessful(self) -> bool:
        """The scale sent 0xFFFF instead of a body fat percentage."""
        return self.body_fat_percent is None


def parse_body_composition_measurement(data: bytes) -> BodyCompositionMeasurement:
    """Parse a Body Composition Measurement (0x2A9C) indication.

    Args:
        data: The characteristic value.

    Returns:
        The packet with every flagged field decoded.

    Raises:
        ParseError: The value is shorter than its flags require.
    """
    r = Reader(data)
    flags = r.u16("flags")
    unit = MassUnit.LB if flags & _IMPERIAL else MassUnit.KG
    mass_scale = MASS_SCALE[unit]
    raw_fat = r.u16("body_fat_percent")

    def mass(flag: int, field: str) -> float | None:
        return r.u16(field) / mass_scale if flags & flag else None

    # Keyword arguments are evaluated left to right: this is the wire order.
    return BodyCompositionMeasurement(
        body_fat_percent=None if raw_fat == MEASUREMENT_UNSUCCESSFUL else raw_fat / PERCENT_SCALE,
        unit=unit,
        timestamp=r.date_time("timestamp") if flags & _TIMESTAMP else None,
        user_id=r.u8("user_id") if flags & _USER_ID else None,
        basal_metabolism_kj=r.u16("basal_metabolism_kj") if flags & _BASAL_METABOLISM else None,
        muscle_percent=(
            r.u16("muscle_percent") / PERCENT_SCALE if flags & _MUSCLE_PERCENTAGE else None
        ),
        muscle_mass=mass(_MUSCLE_MASS, "muscle_mass"),
        fat_free_mass=mass(_FAT_FREE_MASS, "fat_free_mass"),
        soft_lean_mass=mass(_SOFT_LEAN_MASS, "soft_lean_mass"),
        body_water_mass=mass(_BODY_WATER_MASS, "body_water_mass"),
        impedance_ohm=r.u16("impedance_ohm") / IMPEDANCE_SCALE if flags & _IMPEDANCE else None,
        weight=mass(_WEIGHT, "weight"),
        height=r.u16("height") / HEIGHT_SCALE[unit] if flags & _HEIGHT else None,
        multiple_packet=bool(flags & _MULTIPLE_PACKET),
    )


def merge_body_composition(
    packets: Sequence[BodyCompositionMeasurement],
) -> BodyCompositionMeasurement:
    """Join the packets of one multi-packet measurement into a single record.

    Each optional field is taken from the first packet that carries it; the body fat
    percentage (in every packet) from the first. The result has ``multiple_packet=False``.

    Args:
        packets: The packets in arrival order.

    Returns:
        The whole measurement.

    Raises:
        ParseError: No packets, or packets that use different unit systems.
    """
    if not packets:
        raise ParseError(field="packets", offset=0, reason="no packets to merge")
    first = packets[0]
    if any(p.unit is not first.unit for p in packets):
        raise ParseError(field="flags", offset=0, reason="packets use different unit systems")

    def pick(name: str) -> Any:
        return next((v for p in packets if (v := getattr(p, name)) is not None), None)

    return BodyCompositionMeasurement(
        body_fat_percent=first.body_fat_percent,
        unit=first.unit,
        timestamp=pick("timestamp"),
        user_id=pick("user_id"),
        basal_metabolism_kj=pick("basal_metabolism_kj"),
        muscle_percent=pick("muscle_percent"),
        muscle_mass=pick("muscle_mass"),
        fat_free_mass=pick("fat_free_mass"),
        soft_lean_mass=pick("soft_lean_mass"),
        body_water_mass=pick("body_water_mass"),
        impedance_ohm=pick("impedance_ohm"),
        weight=pick("weight"),
        height=pick("height"),
    )


class BodyCompositionFeature(IntFlag):
    """Body Composition Feature (0x2A9B) bits; bits 11-14 and 15-17 are resolution codes."""

    TIME_STAMP = 1 << 0
    MULTIPLE_USERS = 1 << 1
    BASAL_METABOLISM = 1 << 2
    MUSCLE_PERCENTAGE = 1 << 3
    MUSCLE_MASS = 1 << 4
    FAT_FREE_MASS = 1 << 5
    SOFT_LEAN_MASS = 1 << 6
    BODY_WATER_MASS = 1 << 7
    IMPEDANCE = 1 << 8
    WEIGHT = 1 << 9
    HEIGHT = 1 << 10

    @property
    def mass_resolution(self) -> MassResolution:
        """Bits 11-14."""
        return MassResolution((self.value >> 11) & 0xF)

    @property
    def height_resolution(self) -> HeightResolution:
        """Bits 15-17."""
        return HeightResolution((self.value >> 15) & 0x7)


def parse_body_composition_feature(data: bytes) -> BodyCompositionFeature:
    """Parse the Body Composition Feature (0x2A9B) value.

    Args:
        data: The characteristic value (uint32).

    Returns:
        The supported fields and resolutions.

    Raises:
        ParseError: The value is shorter than four bytes.
    """
    return BodyCompositionFeature(Reader(data).u32("features"))
