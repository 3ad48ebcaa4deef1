import contextlib
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import ParseError
from drivers.gatt import (
    BloodPressureFeature,
    BloodPressureMeasurement,
    BloodPressureStatus,
    IntermediateCuffPressure,
    PulseRateRange,
    parse_blood_pressure_feature,
    parse_blood_pressure_measurement,
    parse_intermediate_cuff_pressure,
)
from drivers.readings import DeviceTime, PressureUnit

S = BloodPressureStatus

# §5 #5, Nordic BloodPressureMeasurementDataCallbackTest
NORDIC_FULL = bytes(
    [
        0x1E,  # flags: mmHg, timestamp, pulse, user id, status
        0x8A, 0x00,  # systolic SFLOAT 138
        0x58, 0x00,  # diastolic 88
        0x78, 0x00,  # mean arterial pressure 120
        0x00, 0x00,  # year 0 (unknown)
        0x04,  # month 4
        0x11,  # day 17
        0x14,  # hour 20
        0x29,  # minute 41
        0x3B,  # second 59
        0x3C, 0x00,  # pulse 60
        0x01,  # user id 1
        0x27, 0x00,  # status: body movement, cuff loose, irregular pulse, improper position
    ]
)  # fmt: skip


def test_nordic_full_record():
    m = parse_blood_pressure_measurement(NORDIC_FULL)
    assert m == BloodPressureMeasurement(
        systolic=138.0,
        diastolic=88.0,
        mean_arterial_pressure=120.0,
        unit=PressureUnit.MMHG,
        timestamp=DeviceTime(0, 4, 17, 20, 41, 59),
        pulse_rate=60.0,
        user_id=1,
        status=S.BODY_MOVEMENT | S.CUFF_TOO_LOOSE | S.IRREGULAR_PULSE | S.IMPROPER_POSITION,
    )
    assert m.status.pulse_rate_range is PulseRateRange.WITHIN_RANGE
    assert m.timestamp.wall_clock() is None  # year 0: the device did not know the date


def test_nordic_kpa_record():
    # §5 #6
    data = bytes(
        [
            0x15,  # flags: kPa, pulse, status
            0xBD, 0xF0,  # systolic mantissa 189, exponent -1: 18.9 kPa
            0x0B, 0x00,  # diastolic 11
            0x9F, 0xF0,  # MAP 15.9
            0x3C, 0x00,  # pulse 60
            0x12, 0x00,  # status: cuff loose, pulse-rate range 2 (below lower limit)
        ]
    )  # fmt: skip
    m = parse_blood_pressure_measurement(data)
    assert m == BloodPressureMeasurement(
        systolic=18.9,
        diastolic=11.0,
        mean_arterial_pressure=15.9,
        unit=PressureUnit.KPA,
        pulse_rate=60.0,
        status=S.CUFF_TOO_LOOSE | S.PULSE_RATE_BELOW_LOWER_LIMIT,
    )
    assert m.status.pulse_rate_range is PulseRateRange.BELOW_LOWER_LIMIT


def test_nordic_minimal_record():
    # §5 #7: flags 0 (mmHg, nothing optional), three SFLOATs
    data = bytes([0x00, 0xBD, 0xF0, 0x0B, 0x00, 0x9F, 0xF0])
    assert parse_blood_pressure_measurement(data) == BloodPressureMeasurement(
        systolic=18.9, diastolic=11.0, mean_arterial_pressure=15.9
    )


def test_nordic_timestamp_missing_is_rejected():
    # §5 #8: flags 0x03 (kPa, timestamp) but only the three pressures follow
    with pytest.raises(ParseError) as info:
        parse_blood_pressure_measurement(bytes([0x03, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07]))
    assert (info.value.field, info.value.offset) == ("timestamp", 7)


def test_toolbox_full_record():
    # §5 #9
    data = bytes(
        [
            0x1F,  # flags: kPa, timestamp, pulse, user id, status
            0x79, 0x00,  # systolic 121 (synthetic with the kPa flag)
            0x51, 0x00,  # diastolic 81
            0x6A, 0x00,  # MAP 106
            0xE4, 0x07, 0x05, 0x15, 0x0A, 0x1E, 0x2D,  # 2020-05-21 10:30:45
            0x48, 0x00,  # pulse 72
            0x01,  # user 1
            0x06, 0x00,  # status: cuff loose, irregular pulse
        ]
    )  # fmt: skip
    assert parse_blood_pressure_measurement(data) == BloodPressureMeasurement(
        systolic=121.0,
        diastolic=81.0,
        mean_arterial_pressure=106.0,
        unit=PressureUnit.KPA,
        timestamp=DeviceTime(2020, 5, 21, 10, 30, 45),
        pulse_rate=72.0,
        user_id=1,
        status=S.CUFF_TOO_LOOSE | S.IRREGULAR_PULSE,
    )


def test_toolbox_user_only():
    # §5 #10: flags 0x08 (user id), 72/81/64, user 1
    data = bytes([0x08, 0x48, 0x00, 0x51, 0x00, 0x40, 0x00, 0x01])
    assert parse_blood_pressure_measurement(data) == BloodPressureMeasurement(
        systolic=72.0, diastolic=81.0, mean_arterial_pressure=64.0, user_id=1
    )


@pytest.mark.parametrize(
    ("status", "pulse_range"),
    [
        (0x0000, PulseRateRange.WITHIN_RANGE),
        (0x0008, PulseRateRange.ABOVE_UPPER_LIMIT),
        (0x0010, PulseRateRange.BELOW_LOWER_LIMIT),
        (0x0018, PulseRateRange(3)),  # reserved
    ],
)
def test_pulse_rate_range_field(status, pulse_range):
    data = bytes([0x10, 0x78, 0x00, 0x50, 0x00, 0x5D, 0x00, *status.to_bytes(2, "little")])
    assert parse_blood_pressure_measurement(data).status.pulse_rate_range == pulse_range


def test_reserved_status_bits_are_kept():
    data = bytes([0x10, 0x78, 0x00, 0x50, 0x00, 0x5D, 0x00, 0x40, 0x80])
    assert parse_blood_pressure_measurement(data).status == 0x8040


def test_reserved_flag_bits_are_ignored():
    minimal = bytes([0x00, 0x78, 0x00, 0x50, 0x00, 0x5D, 0x00])
    assert parse_blood_pressure_measurement(
        bytes([0xE0]) + minimal[1:]
    ) == parse_blood_pressure_measurement(minimal)


def test_unknown_map_is_nan():
    data = bytes([0x00, 0x78, 0x00, 0x50, 0x00, 0x00, 0x08])  # MAP is NRes
    assert math.isnan(parse_blood_pressure_measurement(data).mean_arterial_pressure)


@pytest.mark.parametrize("length", range(len(NORDIC_FULL)))
def test_every_truncation_is_a_parse_error(length):
    with pytest.raises(ParseError):
        parse_blood_pressure_measurement(NORDIC_FULL[:length])


def test_intermediate_cuff_pressure():
    data = bytes(
        [
            0x04,  # flags: mmHg, pulse
            0x8C, 0x00,  # current cuff pressure 140
            0xFF, 0x07,  # diastolic unused (NaN)
            0xFF, 0x07,  # MAP unused (NaN)
            0x3E, 0x00,  # pulse 62
        ]
    )  # fmt: skip
    assert parse_intermediate_cuff_pressure(data) == IntermediateCuffPressure(
        cuff_pressure=140.0, pulse_rate=62.0
    )


@given(st.binary(max_size=24))
def test_random_bytes_give_a_measurement_or_parse_error(data):
    for parse in (parse_blood_pressure_measurement, parse_intermediate_cuff_pressure):
        with contextlib.suppress(ParseError):
            parse(data)


def test_feature():
    # 0x0021: body movement detection, multiple bond; bit 8 (BLS 1.1, unknown here) kept
    features = parse_blood_pressure_feature(bytes([0x21, 0x01]))
    assert BloodPressureFeature.BODY_MOVEMENT_DETECTION in features
    assert BloodPressureFeature.MULTIPLE_BOND in features
    assert BloodPressureFeature.CUFF_FIT_DETECTION not in features
    assert features == 0x0121


@given(st.binary(max_size=4))
def test_random_bytes_give_features_or_parse_error(data):
    with contextlib.suppress(ParseError):
        parse_blood_pressure_feature(data)
