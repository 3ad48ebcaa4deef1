"""Encoders for the simulated devices: the exact inverses of the `drivers.gatt` parsers.

Each takes the frozen dataclass its parser returns and gives the characteristic value, so
``parse_x(encode_x(m)) == m`` for every `m` a parser can produce (NaN aside, since NaN != NaN).
Optional fields that are None are left out and their flag cleared. Floats are written with an
exact SFLOAT encoding when one exists (`drivers.gatt.ieee11073.encode_sfloat`).

Inconsistent input (a concentration without a unit, a BMI without a height, a value too large
for its field) raises `ValueError`: these are programming errors in a scenario, not wire data.
"""

import struct

from drivers.gatt.blood_pressure import BloodPressureMeasurement, IntermediateCuffPressure
from drivers.gatt.body_composition import (
    IMPEDANCE_SCALE,
    PERCENT_SCALE,
    BodyCompositionMeasurement,
)
from drivers.gatt.current_time import CurrentTime, build_current_time
from drivers.gatt.glucose import (
    GlucoseContext,
    GlucoseMeasurement,
    GlucoseSampleType,
    Health,
    MedicationUnit,
    SampleLocation,
    Tester,
)
from drivers.gatt.ieee11073 import decode_sfloat, encode_date_time, encode_sfloat
from drivers.gatt.racp import RacpOpCode, RacpOperator, RacpResponse
from drivers.gatt.user_data import UserControlOpCode, UserControlResponse
from drivers.gatt.weight_scale import (
    BMI_SCALE,
    HEIGHT_SCALE,
    MASS_SCALE,
    MEASUREMENT_UNSUCCESSFUL,
    WeightMeasurement,
)
from drivers.readings import DeviceTime, GlucoseUnit, MassUnit, PressureUnit

_U16 = struct.Struct("<H")
_S16 = struct.Struct("<h")


def _u16(value: int, field: str) -> bytes:
    if not 0 <= value <= 0xFFFF:
        msg = f"{field} {value} is outside 0..65535"
        raise ValueError(msg)
    return _U16.pack(value)


def _u8(value: int, field: str) -> bytes:
    if not 0 <= value <= 0xFF:
        msg = f"{field} {value} is outside 0..255"
        raise ValueError(msg)
    return bytes((value,))


def _scaled(value: float, scale: int, field: str, limit: int = 0xFFFF) -> bytes:
    raw = round(value * scale)
    if not 0 <= raw <= limit:
        msg = f"{field} {value} is outside what its uint16 field holds (max {limit / scale})"
        raise ValueError(msg)
    return _U16.pack(raw)


# Meters write kg/L in mg/dL steps (10^-5: 120 mg/dL is 78 B0), mol/L in 0.1 mmol/L (10^-4).
_GLUCOSE_EXPONENT = {GlucoseUnit.KG_PER_L: -5, GlucoseUnit.MOL_PER_L: -4}


def _sfloat_like_a_meter(value: float, exponent: int) -> bytes:
    """The meter's usual exponent when it encodes `value` exactly, else any exact form."""
    try:
        encoded = encode_sfloat(value, exponent)
    except ValueError:
        return encode_sfloat(value)
    return encoded if decode_sfloat(encoded) == value else encode_sfloat(value)


def _both(a: object, b: object, names: str) -> bool:
    """Whether a pair of fields sharing one flag is present; half a pair is an error."""
    if (a is None) != (b is None):
        msg = f"{names} share one flag: give both or neither"
        raise ValueError(msg)
    return a is not None


def encode_glucose_measurement(m: GlucoseMeasurement) -> bytes:
    """Glucose Measurement (0x2A18) value.

    A concentration needs a `unit`; a missing sample type or location is written as capillary
    whole blood from a finger.
    """
    flags = 0
    body = bytearray(_u16(m.sequence, "sequence") + encode_date_time(m.base_time))
    if m.time_offset is not None:
        flags |= 0x01
        if not -0x8000 <= m.time_offset <= 0x7FFF:
            msg = f"time offset {m.time_offset} min is outside sint16"
            raise ValueError(msg)
        body += _S16.pack(m.time_offset)
    if m.concentration is not None:
        if m.unit is None:
            msg = "a glucose concentration needs a unit (GlucoseUnit.KG_PER_L or MOL_PER_L)"
            raise ValueError(msg)
        flags |= 0x02 | (0x04 if m.unit is GlucoseUnit.MOL_PER_L else 0)
        sample_type = m.sample_type
        if sample_type is None:
            sample_type = GlucoseSampleType.CAPILLARY_WHOLE_BLOOD
        location = SampleLocation.FINGER if m.sample_location is None else m.sample_location
        body += _sfloat_like_a_meter(m.concentration, _GLUCOSE_EXPONENT[m.unit])
        body.append((location & 0x0F) << 4 | (sample_type & 0x0F))
    if m.sensor_status is not None:
        flags |= 0x08
        body += _u16(m.sensor_status, "sensor status")
    if m.context_follows:
        flags |= 0x10
    return bytes((flags,)) + bytes(body)


def encode_glucose_context(c: GlucoseContext) -> bytes:
    """Glucose Measurement Context (0x2A34) value.

    Tester and health share a byte; a missing one is written as "not available".
    """
    flags = 0
    body = bytearray(_u16(c.sequence, "sequence"))
    if c.extended_flags is not None:
        flags |= 0x80
        body += _u8(c.extended_flags, "extended flags")
    if _both(c.carbohydrate_id, c.carbohydrate_kg, "carbohydrate_id and carbohydrate_kg"):
        flags |= 0x01
        body += _u8(c.carbohydrate_id or 0, "carbohydrate id")
        body += encode_sfloat(c.carbohydrate_kg or 0.0)
    if c.meal is not None:
        flags |= 0x02
        body += _u8(c.meal, "meal")
    if c.tester is not None or c.health is not None:
        flags |= 0x04
        tester = Tester.NOT_AVAILABLE if c.tester is None else c.tester
        health = Health.NOT_AVAILABLE if c.health is None else c.health
        body.append((health & 0x0F) << 4 | (tester & 0x0F))
    if _both(c.exercise_duration_s, c.exercise_intensity_percent, "exercise duration/intensity"):
        flags |= 0x08
        body += _u16(c.exercise_duration_s or 0, "exercise duration")
        body += _u8(c.exercise_intensity_percent or 0, "exercise intensity")
    if _both(c.medication_id, c.medication, "medication_id and medication"):
        flags |= 0x10 | (0x20 if c.medication_unit is MedicationUnit.LITERS else 0)
        body += _u8(c.medication_id or 0, "medication id")
        body += encode_sfloat(c.medication or 0.0)
    if c.hba1c_percent is not None:
        flags |= 0x40
        body += encode_sfloat(c.hba1c_percent)
    return bytes((flags,)) + bytes(body)


def encode_racp_response(r: RacpResponse) -> bytes:
    """RACP (0x2A52) response indication: general response or number of records."""
    if r.op_code is RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE:
        return encode_number_of_records(r.number_of_records or 0)
    if r.request_op_code is None or r.response_code is None:
        msg = "a RACP general response needs request_op_code and response_code"
        raise ValueError(msg)
    return bytes((RacpOpCode.RESPONSE_CODE, RacpOperator.NULL, r.request_op_code, r.response_code))


def encode_number_of_records(count: int) -> bytes:
    """``05 00 <count>``: uint16 as the spec says; 4 bytes above 65535 (Nordic reads both)."""
    if not 0 <= count <= 0xFFFFFFFF:
        msg = f"record count {count} is outside 0..2^32-1"
        raise ValueError(msg)
    width = 2 if count <= 0xFFFF else 4
    return bytes((RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE, RacpOperator.NULL)) + (
        count.to_bytes(width, "little")
    )


def _bp_tail(
    unit: PressureUnit,
    timestamp: DeviceTime | None,
    pulse_rate: float | None,
    user_id: int | None,
    status: int | None,
) -> tuple[int, bytes]:
    flags = 0x01 if unit is PressureUnit.KPA else 0
    tail = bytearray()
    if timestamp is not None:
        flags |= 0x02
        tail += encode_date_time(timestamp)
    if pulse_rate is not None:
        flags |= 0x04
        tail += encode_sfloat(pulse_rate)
    if user_id is not None:
        flags |= 0x08
        tail += _u8(user_id, "user id")
    if status is not None:
        flags |= 0x10
        tail += _u16(status, "measurement status")
    return flags, bytes(tail)


def encode_blood_pressure_measurement(m: BloodPressureMeasurement) -> bytes:
    """Blood Pressure Measurement (0x2A35) value."""
    flags, tail = _bp_tail(m.unit, m.timestamp, m.pulse_rate, m.user_id, m.status)
    pressures = (m.systolic, m.diastolic, m.mean_arterial_pressure)
    return bytes((flags,)) + b"".join(encode_sfloat(p) for p in pressures) + tail


def encode_intermediate_cuff_pressure(m: IntermediateCuffPressure) -> bytes:
    """Intermediate Cuff Pressure (0x2A36) value; diastolic and MAP are sent as NaN."""
    flags, tail = _bp_tail(m.unit, m.timestamp, m.pulse_rate, m.user_id, m.status)
    nan = encode_sfloat(float("nan"))
    return bytes((flags,)) + encode_sfloat(m.cuff_pressure) + nan + nan + tail


def encode_weight_measurement(m: WeightMeasurement) -> bytes:
    """Weight Measurement (0x2A9D) value; ``weight=None`` is sent as "unsuccessful" (0xFFFF)."""
    flags = 0x01 if m.unit is MassUnit.LB else 0
    if m.weight is None:
        body = bytearray(_U16.pack(MEASUREMENT_UNSUCCESSFUL))
    else:
        body = bytearray(_scaled(m.weight, MASS_SCALE[m.unit], "weight", 0xFFFE))
    if m.timestamp is not None:
        flags |= 0x02
        body += encode_date_time(m.timestamp)
    if m.user_id is not None:
        flags |= 0x04
        body += _u8(m.user_id, "user id")
    if _both(m.bmi, m.height, "bmi and height"):
        flags |= 0x08
        body += _scaled(m.bmi or 0.0, BMI_SCALE, "bmi")
        body += _scaled(m.height or 0.0, HEIGHT_SCALE[m.unit], "height")
    return bytes((flags,)) + bytes(body)


def encode_body_composition_measurement(m: BodyCompositionMeasurement) -> bytes:
    """Body Composition Measurement (0x2A9C) packet; ``body_fat_percent=None`` is 0xFFFF."""
    flags = 0x0001 if m.unit is MassUnit.LB else 0
    mass = MASS_SCALE[m.unit]
    if m.body_fat_percent is None:
        body = bytearray(_U16.pack(MEASUREMENT_UNSUCCESSFUL))
    else:
        body = bytearray(_scaled(m.body_fat_percent, PERCENT_SCALE, "body fat", 0xFFFE))
    if m.timestamp is not None:
        flags |= 1 << 1
        body += encode_date_time(m.timestamp)
    if m.user_id is not None:
        flags |= 1 << 2
        body += _u8(m.user_id, "user id")
    scaled_fields = (
        (3, m.basal_metabolism_kj, 1, "basal metabolism"),
        (4, m.muscle_percent, PERCENT_SCALE, "muscle percentage"),
        (5, m.muscle_mass, mass, "muscle mass"),
        (6, m.fat_free_mass, mass, "fat free mass"),
        (7, m.soft_lean_mass, mass, "soft lean mass"),
        (8, m.body_water_mass, mass, "body water mass"),
        (9, m.impedance_ohm, IMPEDANCE_SCALE, "impedance"),
        (10, m.weight, mass, "weight"),
        (11, m.height, HEIGHT_SCALE[m.unit], "height"),
    )
    for bit, value, scale, name in scaled_fields:
        if value is not None:
            flags |= 1 << bit
            body += _scaled(value, scale, name)
    if m.multiple_packet:
        flags |= 1 << 12
    return _U16.pack(flags) + bytes(body)


def encode_current_time(value: CurrentTime) -> bytes:
    """Current Time (0x2A2B) value, as a device returns it on read."""
    return build_current_time(value)


def encode_user_data_response(r: UserControlResponse) -> bytes:
    """User Control Point (0x2A9F) response indication ``20 <op> <result> [index] [param]``."""
    out = bytes((UserControlOpCode.RESPONSE_CODE, r.request_op_code, r.result))
    if r.user_index is not None:
        out += _u8(r.user_index, "user index")
    return out + r.parameter
