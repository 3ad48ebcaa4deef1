"""Glucose Service records: Measurement (0x2A18), Context (0x2A34) and Feature (0x2A51).

Values stay in the device's unit (kg/L or mol/L; `sync.junction.mapping` converts). Reserved
flag bits are ignored, as the Core Specification asks of receivers; reserved codes in the
code tables survive as ``RESERVED_<n>`` members (see `CodeTable`). Bytes after the last field
the flags announce are ignored, so a later spec revision that appends fields still parses.
"""

from dataclasses import dataclass, replace
from enum import IntEnum, IntFlag

from drivers.gatt._codes import CodeTable
from drivers.gatt._reader import Reader
from drivers.readings import DeviceTime, GlucoseUnit

# Glucose Measurement flags
_TIME_OFFSET = 0x01
_CONCENTRATION = 0x02  # concentration, type and sample location
_MOL_PER_L = 0x04
_SENSOR_STATUS = 0x08
_CONTEXT_FOLLOWS = 0x10

# Glucose Measurement Context flags
_CARBOHYDRATE = 0x01
_MEAL = 0x02
_TESTER_HEALTH = 0x04
_EXERCISE = 0x08
_MEDICATION = 0x10
_MEDICATION_LITERS = 0x20
_HBA1C = 0x40
_EXTENDED_FLAGS = 0x80


class GlucoseSampleType(CodeTable):
    """Type (low nibble of the Type-Sample Location byte)."""

    CAPILLARY_WHOLE_BLOOD = 1
    CAPILLARY_PLASMA = 2
    VENOUS_WHOLE_BLOOD = 3
    VENOUS_PLASMA = 4
    ARTERIAL_WHOLE_BLOOD = 5
    ARTERIAL_PLASMA = 6
    UNDETERMINED_WHOLE_BLOOD = 7
    UNDETERMINED_PLASMA = 8
    INTERSTITIAL_FLUID = 9
    CONTROL_SOLUTION = 10


class SampleLocation(CodeTable):
    """Sample Location (high nibble of the Type-Sample Location byte)."""

    FINGER = 1
    ALTERNATE_SITE_TEST = 2
    EARLOBE = 3
    CONTROL_SOLUTION = 4
    NOT_AVAILABLE = 15


class SensorStatus(IntFlag):
    """Sensor Status Annunciation bits; unknown (reserved) bits are kept."""

    DEVICE_BATTERY_LOW = 1 << 0
    SENSOR_MALFUNCTION = 1 << 1
    SAMPLE_SIZE_INSUFFICIENT = 1 << 2
    STRIP_INSERTION_ERROR = 1 << 3
    STRIP_TYPE_INCORRECT = 1 << 4
    RESULT_TOO_HIGH = 1 << 5
    RESULT_TOO_LOW = 1 << 6
    TEMPERATURE_TOO_HIGH = 1 << 7
    TEMPERATURE_TOO_LOW = 1 << 8
    READ_INTERRUPTED = 1 << 9
    GENERAL_DEVICE_FAULT = 1 << 10
    TIME_FAULT = 1 << 11


@dataclass(frozen=True, slots=True, kw_only=True)
class GlucoseMeasurement:
    """One Glucose Measurement record (0x2A18).

    Attributes:
        sequence: Record sequence number (uint16, 0..65535).
        base_time: The device clock at measurement, raw (``offset_minutes`` is 0).
        time_offset: Minutes to add to `base_time` (sint16), or None if absent.
        concentration: In `unit`; None when the record carries no concentration.
        unit: kg/L or mol/L; None exactly when `concentration` is None.
        sample_type: Present with `concentration`.
        sample_location: Present with `concentration`.
        sensor_status: Sensor Status Annunciation, or None if absent.
        context_follows: A Glucose Measurement Context with the same sequence follows.
    """

    sequence: int
    base_time: DeviceTime
    time_offset: int | None = None
    concentration: float | None = None
    unit: GlucoseUnit | None = None
    sample_type: GlucoseSampleType | None = None
    sample_location: SampleLocation | None = None
    sensor_status: SensorStatus | None = None
    context_follows: bool = False

    @property
    def device_time(self) -> DeviceTime:
        """`base_time` carrying the time offset, as `drivers.readings` expects it."""
        return replace(self.base_time, offset_minutes=self.time_offset or 0)


def parse_glucose_measurement(data: bytes) -> GlucoseMeasurement:
    """Parse a Glucose Measurement (0x2A18) notification.

    Args:
        data: The characteristic value.

    Returns:
        The record with every flagged field decoded.

    Raises:
        ParseError: The value is shorter than its flags require.
    """
    r = Reader(data)
    flags = r.u8("flags")
    has_offset = bool(flags & _TIME_OFFSET)
    has_concentration = bool(flags & _CONCENTRATION)
    has_status = bool(flags & _SENSOR_STATUS)

    sequence = r.u16("sequence")
    base_time = r.date_time("base_time")
    time_offset = r.s16("time_offset") if has_offset else None
    concentration = unit = sample_type = location = None
    if has_concentration:
        concentration = r.sfloat("concentration")
        unit = GlucoseUnit.MOL_PER_L if flags & _MOL_PER_L else GlucoseUnit.KG_PER_L
        type_location = r.u8("type_sample_location")
        sample_type = GlucoseSampleType(type_location & 0x0F)
        location = SampleLocation(type_location >> 4)
    status = SensorStatus(r.u16("sensor_status")) if has_status else None
    return GlucoseMeasurement(
        sequence=sequence,
        base_time=base_time,
        time_offset=time_offset,
        concentration=concentration,
        unit=unit,
        sample_type=sample_type,
        sample_location=location,
        sensor_status=status,
        context_follows=bool(flags & _CONTEXT_FOLLOWS),
    )


class CarbohydrateId(CodeTable):
    """Carbohydrate ID of a context record."""

    BREAKFAST = 1
    LUNCH = 2
    DINNER = 3
    SNACK = 4
    DRINK = 5
    SUPPER = 6
    BRUNCH = 7


class Meal(CodeTable):
    """Meal of a context record (CareSens meters use 6 for a ketone reading)."""

    PREPRANDIAL = 1
    POSTPRANDIAL = 2
    FASTING = 3
    CASUAL = 4
    BEDTIME = 5


class Tester(CodeTable):
    """Tester (low nibble of the Tester-Health byte)."""

    SELF = 1
    HEALTH_CARE_PROFESSIONAL = 2
    LAB_TEST = 3
    NOT_AVAILABLE = 15


class Health(CodeTable):
    """Health (high nibble of the Tester-Health byte)."""

    MINOR_HEALTH_ISSUES = 1
    MAJOR_HEALTH_ISSUES = 2
    DURING_MENSES = 3
    UNDER_STRESS = 4
    NO_HEALTH_ISSUES = 5
    NOT_AVAILABLE = 15


class MedicationId(CodeTable):
    """Medication ID of a context record."""

    RAPID_ACTING_INSULIN = 1
    SHORT_ACTING_INSULIN = 2
    INTERMEDIATE_ACTING_INSULIN = 3
    LONG_ACTING_INSULIN = 4
    PRE_MIXED_INSULIN = 5


class MedicationUnit(IntEnum):
    """Medication value units (context flag bit 5)."""

    KILOGRAMS = 0
    LITERS = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class GlucoseContext:
    """One Glucose Measurement Context record (0x2A34); pairs of fields share one flag.

    Attributes:
        sequence: The sequence number of the measurement this context belongs to.
        extended_flags: The Extended Flags byte (all reserved so far), or None if absent.
        carbohydrate_id: With `carbohydrate_kg`.
        carbohydrate_kg: Carbohydrate intake in kilograms (SFLOAT).
        meal: Meal code.
        tester: With `health` (one byte, two nibbles).
        health: With `tester`.
        exercise_duration_s: With `exercise_intensity_percent`; 65535 means overrun.
        exercise_intensity_percent: Exercise intensity, percent.
        medication_id: With `medication` and `medication_unit`.
        medication: Amount of medication in `medication_unit` (SFLOAT).
        medication_unit: Kilograms or liters.
        hba1c_percent: HbA1c in percent (SFLOAT).
    """

    sequence: int
    extended_flags: int | None = None
    carbohydrate_id: CarbohydrateId | None = None
    carbohydrate_kg: float | None = None
    meal: Meal | None = None
    tester: Tester | None = None
    health: Health | None = None
    exercise_duration_s: int | None = None
    exercise_intensity_percent: int | None = None
    medication_id: MedicationId | None = None
    medication: float | None = None
    medication_unit: MedicationUnit | None = None
    hba1c_percent: float | None = None


def parse_glucose_context(data: bytes) -> GlucoseContext:
    """Parse a Glucose Measurement Context (0x2A34) notification.

    Args:
        data: The characteristic value.

    Returns:
        The context with every flagged field decoded.

    Raises:
        ParseError: The value is shorter than its flags require.
    """
    r = Reader(data)
    flags = r.u8("flags")
    sequence = r.u16("sequence")
    extended = r.u8("extended_flags") if flags & _EXTENDED_FLAGS else None
    carb_id = carb = meal = tester = health = None
    duration = intensity = med_id = medication = med_unit = hba1c = None
    if flags & _CARBOHYDRATE:
        carb_id = CarbohydrateId(r.u8("carbohydrate_id"))
        carb = r.sfloat("carbohydrate_kg")
    if flags & _MEAL:
        meal = Meal(r.u8("meal"))
    if flags & _TESTER_HEALTH:
        tester_health = r.u8("tester_health")
        tester = Tester(tester_health & 0x0F)
        health = Health(tester_health >> 4)
    if flags & _EXERCISE:
        duration = r.u16("exercise_duration_s")
        intensity = r.u8("exercise_intensity_percent")
    if flags & _MEDICATION:
        med_id = MedicationId(r.u8("medication_id"))
        medication = r.sfloat("medication")
        med_unit = MedicationUnit.LITERS if flags & _MEDICATION_LITERS else MedicationUnit.KILOGRAMS
    if flags & _HBA1C:
        hba1c = r.sfloat("hba1c_percent")
    return GlucoseContext(
        sequence=sequence,
        extended_flags=extended,
        carbohydrate_id=carb_id,
        carbohydrate_kg=carb,
        meal=meal,
        tester=tester,
        health=health,
        exercise_duration_s=duration,
        exercise_intensity_percent=intensity,
        medication_id=med_id,
        medication=medication,
        medication_unit=med_unit,
        hba1c_percent=hba1c,
    )


class GlucoseFeature(IntFlag):
    """Glucose Feature (0x2A51) bits; unknown (reserved) bits are kept."""

    LOW_BATTERY_DETECTION = 1 << 0
    SENSOR_MALFUNCTION_DETECTION = 1 << 1
    SENSOR_SAMPLE_SIZE = 1 << 2
    STRIP_INSERTION_ERROR_DETECTION = 1 << 3
    STRIP_TYPE_ERROR_DETECTION = 1 << 4
    RESULT_HIGH_LOW_DETECTION = 1 << 5
    TEMPERATURE_HIGH_LOW_DETECTION = 1 << 6
    READ_INTERRUPT_DETECTION = 1 << 7
    GENERAL_DEVICE_FAULT = 1 << 8
    TIME_FAULT = 1 << 9
    MULTIPLE_BOND = 1 << 10


def parse_glucose_feature(data: bytes) -> GlucoseFeature:
    """Parse the Glucose Feature (0x2A51) value.

    Args:
        data: The characteristic value (uint16).

    Returns:
        The supported features.

    Raises:
        ParseError: The value is shorter than two bytes.
    """
    return GlucoseFeature(Reader(data).u16("features"))
