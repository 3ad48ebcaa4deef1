"""Blood Pressure Service records: Measurement (0x2A35) and Intermediate Cuff Pressure (0x2A36).

Pressures stay in the device's unit (mmHg or kPa, flag bit 0). Reserved flag bits are ignored;
reserved status bits are kept in `BloodPressureStatus`. Trailing bytes are ignored.
"""

from dataclasses import dataclass
from enum import IntFlag

from drivers.gatt._codes import CodeTable
from drivers.gatt._reader import Reader
from drivers.readings import DeviceTime, PressureUnit

_KPA = 0x01
_TIMESTAMP = 0x02
_PULSE_RATE = 0x04
_USER_ID = 0x08
_STATUS = 0x10

_PULSE_RANGE_SHIFT = 3


class PulseRateRange(CodeTable):
    """The 2-bit pulse-rate range field (status bits 3-4); 3 is reserved."""

    WITHIN_RANGE = 0
    ABOVE_UPPER_LIMIT = 1
    BELOW_LOWER_LIMIT = 2


class BloodPressureStatus(IntFlag):
    """Measurement Status bits; bits 3-4 together are `pulse_rate_range`."""

    BODY_MOVEMENT = 1 << 0
    CUFF_TOO_LOOSE = 1 << 1
    IRREGULAR_PULSE = 1 << 2
    PULSE_RATE_ABOVE_UPPER_LIMIT = PulseRateRange.ABOVE_UPPER_LIMIT << _PULSE_RANGE_SHIFT
    PULSE_RATE_BELOW_LOWER_LIMIT = PulseRateRange.BELOW_LOWER_LIMIT << _PULSE_RANGE_SHIFT
    IMPROPER_POSITION = 1 << 5

    @property
    def pulse_rate_range(self) -> PulseRateRange:
        """Bits 3-4 read as one field."""
        return PulseRateRange((self.value >> _PULSE_RANGE_SHIFT) & 0x3)


@dataclass(frozen=True, slots=True, kw_only=True)
class BloodPressureMeasurement:
    """One Blood Pressure Measurement record (0x2A35).

    Attributes:
        systolic: In `unit` (SFLOAT).
        diastolic: In `unit` (SFLOAT).
        mean_arterial_pressure: In `unit` (SFLOAT; NaN if the cuff did not compute it).
        unit: mmHg or kPa.
        timestamp: The device clock, raw, or None if absent.
        pulse_rate: Beats per minute (SFLOAT), or None if absent.
        user_id: The device's user slot (255 = unknown user), or None if absent.
        status: Measurement Status bits, or None if absent.
    """

    systolic: float
    diastolic: float
    mean_arterial_pressure: float
    unit: PressureUnit = PressureUnit.MMHG
    timestamp: DeviceTime | None = None
    pulse_rate: float | None = None
    user_id: int | None = None
    status: BloodPressureStatus | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class IntermediateCuffPressure:
    """One Intermediate Cuff Pressure value (0x2A36), streamed while the cuff inflates.

    Same layout as the measurement; the diastolic and MAP fields are unused (NaN on the wire).
    """

    cuff_pressure: float
    unit: PressureUnit = PressureUnit.MMHG
    timestamp: DeviceTime | None = None
    pulse_rate: float | None = None
    user_id: int | None = None
    status: BloodPressureStatus | None = None


def parse_blood_pressure_measurement(data: bytes) -> BloodPressureMeasurement:
    """Parse a Blood Pressure Measurement (0x2A35) indication.

    Args:
        data: The characteristic value.

    Returns:
        The record with every flagged field decoded.

    Raises:
        ParseError: The value is shorter than its flags require.
    """
    r = Reader(data)
    flags = r.u8("flags")
    systolic = r.sfloat("systolic")
    diastolic = r.sfloat("diastolic")
    mean_arterial = r.sfloat("mean_arterial_pressure")
    # Keyword arguments are evaluated left to right: this is the wire order.
    return BloodPressureMeasurement(
        systolic=systolic,
        diastolic=diastolic,
        mean_arterial_pressure=mean_arterial,
        unit=PressureUnit.KPA if flags & _KPA else PressureUnit.MMHG,
        timestamp=r.date_time("timestamp") if flags & _TIMESTAMP else None,
        pulse_rate=r.sfloat("pulse_rate") if flags & _PULSE_RATE else None,
        user_id=r.u8("user_id") if flags & _USER_ID else None,
        status=BloodPressureStatus(r.u16("status")) if flags & _STATUS else None,
    )


def parse_intermediate_cuff_pressure(data: bytes) -> IntermediateCuffPressure:
    """Parse an Intermediate Cuff Pressure (0x2A36) notification.

    Args:
        data: The characteristic value.

    Returns:
        The current cuff pressure and whatever else the flags announce.

    Raises:
        ParseError: The value is shorter than its flags require.
    """
    m = parse_blood_pressure_measurement(data)
    return IntermediateCuffPressure(
        cuff_pressure=m.systolic,
        unit=m.unit,
        timestamp=m.timestamp,
        pulse_rate=m.pulse_rate,
        user_id=m.user_id,
        status=m.status,
    )


class BloodPressureFeature(IntFlag):
    """Blood Pressure Feature (0x2A49) bits; unknown (reserved) bits are kept."""

    BODY_MOVEMENT_DETECTION = 1 << 0
    CUFF_FIT_DETECTION = 1 << 1
    IRREGULAR_PULSE_DETECTION = 1 << 2
    PULSE_RATE_RANGE_DETECTION = 1 << 3
    MEASUREMENT_POSITION_DETECTION = 1 << 4
    MULTIPLE_BOND = 1 << 5


def parse_blood_pressure_feature(data: bytes) -> BloodPressureFeature:
    """Parse the Blood Pressure Feature (0x2A49) value.

    Args:
        data: The characteristic value (uint16).

    Returns:
        The supported features.

    Raises:
        ParseError: The value is shorter than two bytes.
    """
    return BloodPressureFeature(Reader(data).u16("features"))
