import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import ParseError
from drivers.gatt import (
    CarbohydrateId,
    GlucoseContext,
    GlucoseFeature,
    GlucoseMeasurement,
    GlucoseSampleType,
    Health,
    Meal,
    MedicationId,
    MedicationUnit,
    SampleLocation,
    SensorStatus,
    parse_glucose_context,
    parse_glucose_feature,
    parse_glucose_measurement,
)
from drivers.gatt import Tester as GlucoseTester  # pytest would collect a class named Test*
from drivers.readings import DeviceTime, GlucoseUnit

# §5 #1, Nordic GlucoseMeasurementDataCallbackTest
NORDIC_FULL = bytes(
    [
        0x1B,  # flags: time offset, concentration + type/location, kg/L, status, context follows
        0x01, 0x00,  # sequence 1
        0xE3, 0x07,  # year 2019
        0x02,  # month 2
        0x1B,  # day 27
        0x0B,  # hour 11
        0x0A,  # minute 10
        0x1E,  # second 30
        0xFB, 0xFF,  # time offset -5 minutes (sint16)
        0x1E, 0x00,  # concentration SFLOAT: exponent 0, mantissa 30 (synthetic)
        0x12,  # type 2 capillary plasma (low nibble), location 1 finger (high nibble)
        0x05, 0x01,  # sensor status 0x0105: battery low, sample size insufficient, temp too low
    ]
)  # fmt: skip


def test_nordic_full_record():
    assert parse_glucose_measurement(NORDIC_FULL) == GlucoseMeasurement(
        sequence=1,
        base_time=DeviceTime(2019, 2, 27, 11, 10, 30),
        time_offset=-5,
        concentration=30.0,
        unit=GlucoseUnit.KG_PER_L,
        sample_type=GlucoseSampleType.CAPILLARY_PLASMA,
        sample_location=SampleLocation.FINGER,
        sensor_status=SensorStatus.DEVICE_BATTERY_LOW
        | SensorStatus.SAMPLE_SIZE_INSUFFICIENT
        | SensorStatus.TEMPERATURE_TOO_LOW,
        context_follows=True,
    )


def test_signed_time_offset_reaches_device_time():
    m = parse_glucose_measurement(NORDIC_FULL)
    assert m.device_time == DeviceTime(2019, 2, 27, 11, 10, 30, offset_minutes=-5)
    assert SensorStatus.GENERAL_DEVICE_FAULT not in m.sensor_status


@pytest.mark.parametrize(
    ("offset_bytes", "minutes"),
    [((0x00, 0x80), -32768), ((0xFF, 0x7F), 32767), ((0x3C, 0x00), 60), ((0xC4, 0xFF), -60)],
)
def test_time_offset_is_sint16(offset_bytes, minutes):
    data = bytes([0x01, 0x01, 0x00, 0xE4, 0x07, 0x05, 0x15, 0x0A, 0x1E, 0x2D, *offset_bytes])
    assert parse_glucose_measurement(data).time_offset == minutes


def test_nordic_time_offset_missing_is_rejected():
    # §5 #2: flags 0x1B need 17 bytes; the offset was left out, so the data runs out at the
    # sensor status (byte 15) after the rest shifted up by two bytes.
    data = bytes(
        [0x1B, 0x00, 0x00, 0xE2, 0x07, 0x04, 0x1A, 0x0B, 0x09, 0x1E, 0x1E, 0x00, 0x12, 0x05, 0x01]
    )
    with pytest.raises(ParseError) as info:
        parse_glucose_measurement(data)
    assert (info.value.field, info.value.offset) == ("sensor_status", 15)


# §5 #3, nRF Toolbox GlucoseMeasurementParserTest
TOOLBOX_MINIMAL = bytes(
    [
        0x00,  # flags: nothing optional
        0x01, 0x00,  # sequence 1
        0xE4, 0x07, 0x05, 0x15, 0x0A, 0x1E, 0x2D,  # 2020-05-21 10:30:45
    ]
)  # fmt: skip


def test_toolbox_minimal_record():
    assert parse_glucose_measurement(TOOLBOX_MINIMAL) == GlucoseMeasurement(
        sequence=1, base_time=DeviceTime(2020, 5, 21, 10, 30, 45)
    )


def test_toolbox_full_record_in_mol_per_l():
    # §5 #4
    data = bytes(
        [
            0x1F,  # flags: offset, concentration, mol/L, status, context follows
            0x02, 0x00,  # sequence 2
            0xE4, 0x07, 0x05, 0x15, 0x0A, 0x1E, 0x2D,  # 2020-05-21 10:30:45
            0x00, 0x00,  # time offset 0
            0x51, 0x00,  # concentration 81 (synthetic)
            0x14,  # type 4 venous plasma, location 1 finger
            0x06, 0x00,  # status: sensor malfunction, sample size insufficient
        ]
    )  # fmt: skip
    assert parse_glucose_measurement(data) == GlucoseMeasurement(
        sequence=2,
        base_time=DeviceTime(2020, 5, 21, 10, 30, 45),
        time_offset=0,
        concentration=81.0,
        unit=GlucoseUnit.MOL_PER_L,
        sample_type=GlucoseSampleType.VENOUS_PLASMA,
        sample_location=SampleLocation.FINGER,
        sensor_status=SensorStatus.SENSOR_MALFUNCTION | SensorStatus.SAMPLE_SIZE_INSUFFICIENT,
        context_follows=True,
    )


def test_realistic_120_mg_dl():
    # §5 extra vector
    data = bytes(
        [
            0x02,  # flags: concentration + type/location, kg/L
            0x2A, 0x00,  # sequence 42
            0xE8, 0x07, 0x03, 0x0F, 0x0E, 0x1E, 0x2D,  # 2024-03-15 14:30:45
            0x78, 0xB0,  # SFLOAT mantissa 120, exponent -5: 1.2e-3 kg/L = 120 mg/dL
            0x12,  # capillary plasma, finger
        ]
    )  # fmt: skip
    assert parse_glucose_measurement(data) == GlucoseMeasurement(
        sequence=42,
        base_time=DeviceTime(2024, 3, 15, 14, 30, 45),
        concentration=0.0012,
        unit=GlucoseUnit.KG_PER_L,
        sample_type=GlucoseSampleType.CAPILLARY_PLASMA,
        sample_location=SampleLocation.FINGER,
    )


@pytest.mark.parametrize(("seq_bytes", "sequence"), [((0x00, 0x80), 32768), ((0xFF, 0xFF), 65535)])
def test_sequence_is_unsigned(seq_bytes, sequence):
    data = bytes([0x00, *seq_bytes]) + TOOLBOX_MINIMAL[3:]
    assert parse_glucose_measurement(data).sequence == sequence


def test_unit_flag_without_concentration_means_nothing():
    data = bytes([0x04]) + TOOLBOX_MINIMAL[1:]
    assert parse_glucose_measurement(data).unit is None


def test_reserved_flag_bits_are_ignored():
    data = bytes([0xE0]) + TOOLBOX_MINIMAL[1:]
    assert parse_glucose_measurement(data) == parse_glucose_measurement(TOOLBOX_MINIMAL)


def test_trailing_bytes_are_ignored():
    assert parse_glucose_measurement(TOOLBOX_MINIMAL + b"\x00\x01") == parse_glucose_measurement(
        TOOLBOX_MINIMAL
    )


def test_reserved_codes_are_kept():
    # type 0xB and location 0x5 are reserved; status bit 15 is reserved
    data = bytes([0x0A, *TOOLBOX_MINIMAL[1:], 0x78, 0xB0, 0x5B, 0x00, 0x80])
    m = parse_glucose_measurement(data)
    assert (m.sample_type, m.sample_type.name) == (11, "RESERVED_11")
    assert (m.sample_location, m.sample_location.name) == (5, "RESERVED_5")
    assert m.sensor_status == 0x8000


def test_control_solution_and_impossible_month():
    # i-SENS meters send month 13; the raw fields are kept, not rejected
    data = bytes([0x02, 0x03, 0x00, 0xE8, 0x07, 0x0D, 0x01, 0x00, 0x00, 0x00, 0x78, 0xB0, 0x4A])
    m = parse_glucose_measurement(data)
    assert m.base_time == DeviceTime(2024, 13, 1, 0, 0, 0)
    assert m.sample_type is GlucoseSampleType.CONTROL_SOLUTION
    assert m.sample_location is SampleLocation.CONTROL_SOLUTION
    assert m.device_time.wall_clock() is None


@pytest.mark.parametrize("length", range(len(NORDIC_FULL)))
def test_every_truncation_is_a_parse_error(length):
    with pytest.raises(ParseError) as info:
        parse_glucose_measurement(NORDIC_FULL[:length])
    assert info.value.offset <= length


@given(st.binary(max_size=24))
def test_random_bytes_give_a_measurement_or_parse_error(data):
    with contextlib.suppress(ParseError):
        parse_glucose_measurement(data)


FULL_CONTEXT = bytes(
    [
        0xFF,  # flags: carbohydrate, meal, tester-health, exercise, medication, liters, HbA1c,
        #        extended flags
        0x05, 0x80,  # sequence 32773
        0x00,  # extended flags (all reserved)
        0x01,  # carbohydrate id 1 breakfast
        0x3C, 0xD0,  # carbohydrate SFLOAT mantissa 60, exponent -3: 0.06 kg
        0x01,  # meal 1 preprandial
        0x51,  # tester 1 self (low nibble), health 5 no health issues (high nibble)
        0x08, 0x07,  # exercise duration 1800 s
        0x32,  # exercise intensity 50 %
        0x01,  # medication id 1 rapid acting insulin
        0x05, 0xB0,  # medication SFLOAT mantissa 5, exponent -5: 5e-5 L
        0x41, 0xF0,  # HbA1c SFLOAT mantissa 65, exponent -1: 6.5 %
    ]
)  # fmt: skip


def test_context_with_every_field():
    assert parse_glucose_context(FULL_CONTEXT) == GlucoseContext(
        sequence=32773,
        extended_flags=0,
        carbohydrate_id=CarbohydrateId.BREAKFAST,
        carbohydrate_kg=0.06,
        meal=Meal.PREPRANDIAL,
        tester=GlucoseTester.SELF,
        health=Health.NO_HEALTH_ISSUES,
        exercise_duration_s=1800,
        exercise_intensity_percent=50,
        medication_id=MedicationId.RAPID_ACTING_INSULIN,
        medication=5e-5,
        medication_unit=MedicationUnit.LITERS,
        hba1c_percent=6.5,
    )


def test_context_in_nordics_layout():
    # Nordic GlucoseMeasurementContextDataCallbackTest "full", with SFLOATs that fit 12 bits
    data = bytes(
        [
            0xFF,  # flags: everything, medication in liters
            0x00, 0x00,  # sequence 0
            0xB3,  # extended flags (reserved bits, kept raw)
            0x03,  # carbohydrate id 3 dinner
            0x64, 0x00,  # carbohydrate 100 (exponent 0)
            0x04,  # meal 4 casual
            0x12,  # tester 2 health care professional, health 1 minor health issues
            0x3C, 0x00,  # exercise 60 s
            0x32,  # intensity 50 %
            0x04,  # medication 4 long acting insulin
            0xD2, 0xF4,  # medication mantissa 1234, exponent -1: 123.4
            0x59, 0xF1,  # HbA1c mantissa 345, exponent -1: 34.5 %
        ]
    )  # fmt: skip
    assert parse_glucose_context(data) == GlucoseContext(
        sequence=0,
        extended_flags=0xB3,
        carbohydrate_id=CarbohydrateId.DINNER,
        carbohydrate_kg=100.0,
        meal=Meal.CASUAL,
        tester=GlucoseTester.HEALTH_CARE_PROFESSIONAL,
        health=Health.MINOR_HEALTH_ISSUES,
        exercise_duration_s=60,
        exercise_intensity_percent=50,
        medication_id=MedicationId.LONG_ACTING_INSULIN,
        medication=123.4,
        medication_unit=MedicationUnit.LITERS,
        hba1c_percent=34.5,
    )


def test_context_ignores_trailing_bytes():
    # Nordic "empty": flags 0 and sequence 1 in a 17-byte buffer
    assert parse_glucose_context(bytes([0x00, 0x01, 0x00]) + bytes(14)) == GlucoseContext(
        sequence=1
    )


def test_context_medication_in_kilograms():
    data = bytes([0x10, 0x01, 0x00, 0x04, 0x02, 0xA0])  # long acting insulin, 2 x 10^-6 kg
    assert parse_glucose_context(data) == GlucoseContext(
        sequence=1,
        medication_id=MedicationId.LONG_ACTING_INSULIN,
        medication=2e-6,
        medication_unit=MedicationUnit.KILOGRAMS,
    )


def test_context_meal_only_and_ketone_code():
    # CareSens meters mark a ketone reading with meal 6 (reserved in the spec)
    assert parse_glucose_context(bytes([0x02, 0x07, 0x00, 0x06])) == GlucoseContext(
        sequence=7, meal=Meal(6)
    )


def test_context_sequence_only():
    assert parse_glucose_context(bytes([0x00, 0x2A, 0x00])) == GlucoseContext(sequence=42)


@pytest.mark.parametrize("length", range(len(FULL_CONTEXT)))
def test_every_context_truncation_is_a_parse_error(length):
    with pytest.raises(ParseError):
        parse_glucose_context(FULL_CONTEXT[:length])


def test_context_truncated_names_the_field():
    with pytest.raises(ParseError) as info:
        parse_glucose_context(bytes([0x40, 0x01, 0x00, 0x41]))
    assert (info.value.field, info.value.offset) == ("hba1c_percent", 3)


@given(st.binary(max_size=24))
def test_random_bytes_give_a_context_or_parse_error(data):
    with contextlib.suppress(ParseError):
        parse_glucose_context(data)


def test_feature():
    # low battery, strip insertion, result high/low, multiple bond; bit 15 reserved kept
    features = parse_glucose_feature(bytes([0x29, 0x84]))
    assert GlucoseFeature.LOW_BATTERY_DETECTION in features
    assert GlucoseFeature.STRIP_INSERTION_ERROR_DETECTION in features
    assert GlucoseFeature.RESULT_HIGH_LOW_DETECTION in features
    assert GlucoseFeature.MULTIPLE_BOND in features
    assert GlucoseFeature.TIME_FAULT not in features
    assert features == 0x8429


def test_feature_truncated():
    with pytest.raises(ParseError):
        parse_glucose_feature(b"\x01")


@given(st.binary(max_size=4))
def test_random_bytes_give_features_or_parse_error(data):
    with contextlib.suppress(ParseError):
        parse_glucose_feature(data)


def test_bleak_bytearray_parses_like_bytes():
    m = parse_glucose_measurement(bytearray(NORDIC_FULL))
    assert m == parse_glucose_measurement(NORDIC_FULL)
    assert hash(m)
