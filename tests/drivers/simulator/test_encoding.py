import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.gatt import (
    AdjustReason,
    BloodPressureMeasurement,
    BloodPressureStatus,
    BodyCompositionMeasurement,
    CarbohydrateId,
    CurrentTime,
    DayOfWeek,
    GlucoseContext,
    GlucoseMeasurement,
    GlucoseSampleType,
    Health,
    IntermediateCuffPressure,
    Meal,
    MedicationId,
    MedicationUnit,
    RacpOpCode,
    RacpResponse,
    RacpResponseCode,
    SampleLocation,
    SensorStatus,
    UserControlOpCode,
    UserControlResponse,
    UserControlResult,
    WeightMeasurement,
    parse_blood_pressure_measurement,
    parse_body_composition_measurement,
    parse_current_time,
    parse_glucose_context,
    parse_glucose_measurement,
    parse_intermediate_cuff_pressure,
    parse_racp,
    parse_user_control_response,
    parse_weight_measurement,
)
from drivers.gatt import Tester as GlucoseTester  # pytest would collect a class named Test*
from drivers.gatt.ieee11073 import sfloat_from_raw
from drivers.readings import DeviceTime, GlucoseUnit, MassUnit, PressureUnit
from drivers.simulator.encoding import (
    encode_blood_pressure_measurement,
    encode_body_composition_measurement,
    encode_current_time,
    encode_glucose_context,
    encode_glucose_measurement,
    encode_intermediate_cuff_pressure,
    encode_number_of_records,
    encode_racp_response,
    encode_user_data_response,
    encode_weight_measurement,
)

# ------------------------------------------------------- strategies: parser-shaped values

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
sfloats = u16.map(sfloat_from_raw).filter(lambda v: not math.isnan(v))  # NaN != NaN
device_times = st.builds(DeviceTime, u16, u8, u8, u8, u8, u8)  # raw: month 13 and year 0 too


def optional(strategy):
    return st.none() | strategy


def code(table, bits=8):
    return st.integers(0, (1 << bits) - 1).map(table)


@st.composite
def glucose_measurements(draw):
    has_concentration = draw(st.booleans())
    return GlucoseMeasurement(
        sequence=draw(u16),
        base_time=draw(device_times),
        time_offset=draw(optional(st.integers(-0x8000, 0x7FFF))),
        concentration=draw(sfloats) if has_concentration else None,
        unit=draw(st.sampled_from(GlucoseUnit)) if has_concentration else None,
        sample_type=draw(code(GlucoseSampleType, 4)) if has_concentration else None,
        sample_location=draw(code(SampleLocation, 4)) if has_concentration else None,
        sensor_status=draw(optional(u16.map(SensorStatus))),
        context_follows=draw(st.booleans()),
    )


@st.composite
def glucose_contexts(draw):
    carb, tester, exercise, medication = (draw(st.booleans()) for _ in range(4))
    return GlucoseContext(
        sequence=draw(u16),
        extended_flags=draw(optional(u8)),
        carbohydrate_id=draw(code(CarbohydrateId)) if carb else None,
        carbohydrate_kg=draw(sfloats) if carb else None,
        meal=draw(optional(code(Meal))),
        tester=draw(code(GlucoseTester, 4)) if tester else None,
        health=draw(code(Health, 4)) if tester else None,
        exercise_duration_s=draw(u16) if exercise else None,
        exercise_intensity_percent=draw(u8) if exercise else None,
        medication_id=draw(code(MedicationId)) if medication else None,
        medication=draw(sfloats) if medication else None,
        medication_unit=draw(st.sampled_from(MedicationUnit)) if medication else None,
        hba1c_percent=draw(optional(sfloats)),
    )


racp_responses = st.builds(
    RacpResponse.general, code(RacpOpCode), code(RacpResponseCode)
) | st.builds(RacpResponse.records, st.integers(0, 0xFFFFFFFF))

bp_statuses = optional(u16.map(BloodPressureStatus))
blood_pressure_measurements = st.builds(
    BloodPressureMeasurement,
    systolic=sfloats,
    diastolic=sfloats,
    mean_arterial_pressure=sfloats,
    unit=st.sampled_from(PressureUnit),
    timestamp=optional(device_times),
    pulse_rate=optional(sfloats),
    user_id=optional(u8),
    status=bp_statuses,
)
intermediate_cuff_pressures = st.builds(
    IntermediateCuffPressure,
    cuff_pressure=sfloats,
    unit=st.sampled_from(PressureUnit),
    timestamp=optional(device_times),
    pulse_rate=optional(sfloats),
    user_id=optional(u8),
    status=bp_statuses,
)

MASS = {MassUnit.KG: 200, MassUnit.LB: 100}
HEIGHT = {MassUnit.KG: 1000, MassUnit.LB: 10}


@st.composite
def weight_measurements(draw):
    unit = draw(st.sampled_from(MassUnit))
    has_bmi = draw(st.booleans())
    return WeightMeasurement(
        weight=draw(optional(st.integers(0, 0xFFFE).map(lambda r: r / MASS[unit]))),
        unit=unit,
        timestamp=draw(optional(device_times)),
        user_id=draw(optional(u8)),
        bmi=draw(u16) / 10 if has_bmi else None,
        height=draw(u16) / HEIGHT[unit] if has_bmi else None,
    )


@st.composite
def body_composition_measurements(draw):
    unit = draw(st.sampled_from(MassUnit))

    def scaled(scale, top=0xFFFF):
        return draw(optional(st.integers(0, top).map(lambda r: r / scale)))

    return BodyCompositionMeasurement(
        body_fat_percent=scaled(10, 0xFFFE),
        unit=unit,
        timestamp=draw(optional(device_times)),
        user_id=draw(optional(u8)),
        basal_metabolism_kj=draw(optional(u16)),
        muscle_percent=scaled(10),
        muscle_mass=scaled(MASS[unit]),
        fat_free_mass=scaled(MASS[unit]),
        soft_lean_mass=scaled(MASS[unit]),
        body_water_mass=scaled(MASS[unit]),
        impedance_ohm=scaled(10),
        weight=scaled(MASS[unit]),
        height=scaled(HEIGHT[unit]),
        multiple_packet=draw(st.booleans()),
    )


current_times = st.builds(
    CurrentTime,
    time=device_times,
    day_of_week=code(DayOfWeek),
    fractions256=u8,
    adjust_reason=u8.map(AdjustReason),
)


@st.composite
def user_data_responses(draw):
    request = draw(code(UserControlOpCode))
    result = draw(code(UserControlResult))
    registered = (
        request is UserControlOpCode.REGISTER_NEW_USER and result is UserControlResult.SUCCESS
    )
    return UserControlResponse(
        request_op_code=request,
        result=result,
        user_index=draw(u8) if registered else None,
        parameter=draw(st.binary(max_size=6)),
    )


# ------------------------------------------------------- round trips: parse(encode(x)) == x


@pytest.mark.parametrize(
    ("strategy", "encode", "parse"),
    [
        (glucose_measurements(), encode_glucose_measurement, parse_glucose_measurement),
        (glucose_contexts(), encode_glucose_context, parse_glucose_context),
        (racp_responses, encode_racp_response, parse_racp),
        (
            blood_pressure_measurements,
            encode_blood_pressure_measurement,
            parse_blood_pressure_measurement,
        ),
        (
            intermediate_cuff_pressures,
            encode_intermediate_cuff_pressure,
            parse_intermediate_cuff_pressure,
        ),
        (weight_measurements(), encode_weight_measurement, parse_weight_measurement),
        (
            body_composition_measurements(),
            encode_body_composition_measurement,
            parse_body_composition_measurement,
        ),
        (current_times, encode_current_time, parse_current_time),
        (user_data_responses(), encode_user_data_response, parse_user_control_response),
    ],
    ids=[
        "glucose_measurement",
        "glucose_context",
        "racp_response",
        "blood_pressure",
        "intermediate_cuff_pressure",
        "weight",
        "body_composition",
        "current_time",
        "user_data_response",
    ],
)
def test_round_trip(strategy, encode, parse):
    @given(strategy)
    def round_trip(value):
        assert parse(encode(value)) == value

    round_trip()


# ------------------------------------------------------- the §5 vectors, byte for byte


GLUCOSE = (encode_glucose_measurement, parse_glucose_measurement)
BP = (encode_blood_pressure_measurement, parse_blood_pressure_measurement)
RACP = (encode_racp_response, parse_racp)
WEIGHT = (encode_weight_measurement, parse_weight_measurement)
BODY = (encode_body_composition_measurement, parse_body_composition_measurement)
UDS = (encode_user_data_response, parse_user_control_response)


@pytest.mark.parametrize(
    ("hex_", "codec"),
    [
        ("1B 01 00 E3 07 02 1B 0B 0A 1E FB FF 1E 00 12 05 01", GLUCOSE),  # #1
        ("00 01 00 E4 07 05 15 0A 1E 2D", GLUCOSE),  # #3
        ("1F 02 00 E4 07 05 15 0A 1E 2D 00 00 51 00 14 06 00", GLUCOSE),  # #4
        ("02 2A 00 E8 07 03 0F 0E 1E 2D 78 B0 12", GLUCOSE),  # extra: 120 mg/dL
        ("1E 8A 00 58 00 78 00 00 00 04 11 14 29 3B 3C 00 01 27 00", BP),  # #5
        ("15 BD F0 0B 00 9F F0 3C 00 12 00", BP),  # #6
        ("00 BD F0 0B 00 9F F0", BP),  # #7
        ("1F 79 00 51 00 6A 00 E4 07 05 15 0A 1E 2D 48 00 01 06 00", BP),  # #9
        ("08 48 00 51 00 40 00 01", BP),  # #10
        ("06 00 01 01", RACP),  # #11
        ("06 00 01 06", RACP),  # #12
        ("05 00 02 01", RACP),  # #14
        ("00 B0 36", WEIGHT),  # #20
        ("01 54 3D", WEIGHT),  # #21
        ("02 B0 36 E7 07 0C 19 0E 1E 2D", WEIGHT),  # #22
        ("0C B0 36 05 F5 00 D6 06", WEIGHT),  # #23
        ("0F 54 3D E7 07 0C 19 0E 1E 2D 03 F5 00 A8 02", WEIGHT),  # #24
        ("04 88 13 02", WEIGHT),  # #25
        ("0C 00 78 00 05 40 06", BODY),  # #26
        ("30 00 64 00 C8 00 B8 0B", BODY),  # #27
        ("C0 01 50 00 E0 2E 10 27 40 1F", BODY),  # #28
        ("00 0E 46 00 40 1F B0 36 E8 03", BODY),  # #29
        ("03 00 96 00 E8 07 06 14 0A 1E 00", BODY),  # #30
        ("00 00 FF FF", BODY),  # #31
        ("20 01 01 03", UDS),
    ],
)
def test_reference_vectors_encode_to_the_same_bytes(hex_, codec):
    encode, parse = codec
    data = bytes.fromhex(hex_)
    assert encode(parse(data)) == data


# ------------------------------------------------------- construction as the simulator does it


def test_simulator_glucose_record_looks_like_a_meter():
    m = GlucoseMeasurement(
        sequence=1,
        base_time=DeviceTime(2026, 11, 20, 7, 30, 0),
        concentration=104 / 100_000,  # 104 mg/dL
        unit=GlucoseUnit.KG_PER_L,
    )
    data = encode_glucose_measurement(m)
    # flags 02; seq 1; 2026-11-20 07:30:00; SFLOAT 104 x 10^-5; capillary whole blood, finger
    assert data == bytes.fromhex("02 0100 EA07 0B 14 07 1E 00 68B0 11")
    assert parse_glucose_measurement(data).concentration == 0.00104


def test_simulator_mmol_record():
    m = GlucoseMeasurement(
        sequence=2,
        base_time=DeviceTime(2026, 11, 20, 12, 5, 0),
        concentration=6.1 / 1000,  # 6.1 mmol/L
        unit=GlucoseUnit.MOL_PER_L,
    )
    parsed = parse_glucose_measurement(encode_glucose_measurement(m))
    assert parsed.concentration == 0.0061
    assert parsed.unit is GlucoseUnit.MOL_PER_L


def test_concentration_needs_a_unit():
    m = GlucoseMeasurement(sequence=1, base_time=DeviceTime(2026, 1, 1, 0, 0, 0), concentration=1.0)
    with pytest.raises(ValueError, match="unit"):
        encode_glucose_measurement(m)


def test_half_a_pair_is_rejected():
    with pytest.raises(ValueError, match="both or neither"):
        encode_weight_measurement(WeightMeasurement(weight=70.0, bmi=22.0))
    with pytest.raises(ValueError, match="both or neither"):
        encode_glucose_context(GlucoseContext(sequence=1, carbohydrate_kg=0.05))


def test_tester_alone_writes_health_not_available():
    data = encode_glucose_context(GlucoseContext(sequence=1, tester=GlucoseTester.SELF))
    assert parse_glucose_context(data).health is Health.NOT_AVAILABLE


@pytest.mark.parametrize(
    "m",
    [
        WeightMeasurement(weight=400.0),  # above 327.67 kg
        WeightMeasurement(weight=-1.0),
        WeightMeasurement(weight=70.0, user_id=256),
    ],
)
def test_values_that_do_not_fit_are_rejected(m):
    with pytest.raises(ValueError, match="outside"):
        encode_weight_measurement(m)


def test_number_of_records():
    assert encode_number_of_records(258) == bytes([0x05, 0x00, 0x02, 0x01])
    assert encode_number_of_records(70000) == bytes([0x05, 0x00, 0x70, 0x11, 0x01, 0x00])


def test_general_response_needs_its_fields():
    with pytest.raises(ValueError, match="request_op_code"):
        encode_racp_response(RacpResponse(op_code=RacpOpCode.RESPONSE_CODE))


def test_intermediate_cuff_pressure_sends_nan_for_unused_fields():
    data = encode_intermediate_cuff_pressure(IntermediateCuffPressure(cuff_pressure=140.0))
    assert data == bytes([0x00, 0x8C, 0x00, 0xFF, 0x07, 0xFF, 0x07])


def test_nan_pressure_is_sent_as_nan():
    m = BloodPressureMeasurement(systolic=120.0, diastolic=80.0, mean_arterial_pressure=math.nan)
    assert math.isnan(
        parse_blood_pressure_measurement(
            encode_blood_pressure_measurement(m)
        ).mean_arterial_pressure
    )
