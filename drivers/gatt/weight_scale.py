"""Weight Scale Service: Weight Measurement (0x2A9D).

Values stay in the device's unit system (flag bit 0): SI is kg (resolution 0.005) and metres
(0.001); imperial is lb (0.01) and inches (0.1). A weight of 0xFFFF means "measurement
unsuccessful" and is carried as ``weight=None``, not raised. Reserved flag bits are ignored.
"""

from dataclasses import dataclass
from enum import IntFlag

from drivers.gatt._codes import CodeTable
from drivers.gatt._reader import Reader
from drivers.readings import DeviceTime, MassUnit

_IMPERIAL = 0x01
_TIMESTAMP = 0x02
_USER_ID = 0x04
_BMI_AND_HEIGHT = 0x08

MEASUREMENT_UNSUCCESSFUL = 0xFFFF

# Raw counts per unit; dividing by an integer rounds once (70.0, not 70.00000000000001).
MASS_SCALE = {MassUnit.KG: 200, MassUnit.LB: 100}
HEIGHT_SCALE = {MassUnit.KG: 1000, MassUnit.LB: 10}  # metres or inches
BMI_SCALE = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class WeightMeasurement:
    """One Weight Measurement record (0x2A9D).

    Attributes:
        weight: In `unit`, or None when the scale reported "measurement unsuccessful".
        unit: kg (SI) or lb (imperial); `height` follows it (metres or inches).
        timestamp: The device clock, raw, or None if absent.
        user_id: The scale's user slot (255 = unknown user), or None if absent.
        bmi: Body mass index, present together with `height`.
        height: Metres (SI) or inches (imperial), present together with `bmi`.
    """

    weight: float | None
    unit: MassUnit = MassUnit.KG
    timestamp: DeviceTime | None = None
    user_id: int | None = None
    bmi: float | None = None
    height: float | None = None

    @property
    def measurement_unsuccessful(self) -> bool:
        """The scale sent 0xFFFF instead of a weight."""
        return self.weight is None


def parse_weight_measurement(data: bytes) -> WeightMeasurement:
    """Parse a Weight Measurement (0x2A9D) indication.

    Args:
        data: The characteristic value.

    Returns:
        The record with every flagged field decoded.

    Raises:
        ParseError: The value is shorter than its flags require.
    """
    r = Reader(data)
    flags = r.u8("flags")
    unit = MassUnit.LB if flags & _IMPERIAL else MassUnit.KG
    raw_weight = r.u16("weight")
    timestamp = r.date_time("timestamp") if flags & _TIMESTAMP else None
    user_id = r.u8("user_id") if flags & _USER_ID else None
    bmi = height = None
    if flags & _BMI_AND_HEIGHT:
        bmi = r.u16("bmi") / BMI_SCALE
        height = r.u16("height") / HEIGHT_SCALE[unit]
    return WeightMeasurement(
        weight=None if raw_weight == MEASUREMENT_UNSUCCESSFUL else raw_weight / MASS_SCALE[unit],
        unit=unit,
        timestamp=timestamp,
        user_id=user_id,
        bmi=bmi,
        height=height,
    )


class MassResolution(CodeTable):
    """Weight resolution code of the Weight Scale and Body Composition Feature values."""

    NOT_SPECIFIED = 0
    KG_0_5_OR_LB_1 = 1
    KG_0_2_OR_LB_0_5 = 2
    KG_0_1_OR_LB_0_2 = 3
    KG_0_05_OR_LB_0_1 = 4
    KG_0_02_OR_LB_0_05 = 5
    KG_0_01_OR_LB_0_02 = 6
    KG_0_005_OR_LB_0_01 = 7


class HeightResolution(CodeTable):
    """Height resolution code of the Weight Scale and Body Composition Feature values."""

    NOT_SPECIFIED = 0
    M_0_01_OR_IN_1 = 1
    M_0_005_OR_IN_0_5 = 2
    M_0_001_OR_IN_0_1 = 3


class WeightScaleFeature(IntFlag):
    """Weight Scale Feature (0x2A9E) bits; bits 3-6 and 7-9 are resolution codes."""

    TIME_STAMP = 1 << 0
    MULTIPLE_USERS = 1 << 1
    BMI = 1 << 2

    @property
    def mass_resolution(self) -> MassResolution:
        """Bits 3-6."""
        return MassResolution((self.value >> 3) & 0xF)

    @property
    def height_resolution(self) -> HeightResolution:
        """Bits 7-9."""
        return HeightResolution((self.value >> 7) & 0x7)


def parse_weight_scale_feature(data: bytes) -> WeightScaleFeature:
    """Parse the Weight Scale Feature (0x2A9E) value.

    Args:
        data: The characteristic value (uint32).

    Returns:
        The supported features and resolutions.

    Raises:
        ParseError: The value is shorter than four bytes.
    """
    return WeightScaleFeature(Reader(data).u32("features"))
