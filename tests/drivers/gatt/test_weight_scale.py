import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import ParseError
from drivers.gatt import (
    HeightResolution,
    MassResolution,
    WeightMeasurement,
    WeightScaleFeature,
    parse_weight_measurement,
    parse_weight_scale_feature,
)
from drivers.readings import DeviceTime, MassUnit

CHRISTMAS = DeviceTime(2023, 12, 25, 14, 30, 45)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # §5 #20: flags 0 (SI), weight 0x36B0 = 14000 x 0.005 kg
        (bytes([0x00, 0xB0, 0x36]), WeightMeasurement(weight=70.0)),
        # §5 #21: flags 1 (imperial), weight 0x3D54 = 15700 x 0.01 lb
        (bytes([0x01, 0x54, 0x3D]), WeightMeasurement(weight=157.0, unit=MassUnit.LB)),
        # §5 #22: flags 2 (timestamp), 70.0 kg, 2023-12-25 14:30:45
        (
            bytes([0x02, 0xB0, 0x36, 0xE7, 0x07, 0x0C, 0x19, 0x0E, 0x1E, 0x2D]),
            WeightMeasurement(weight=70.0, timestamp=CHRISTMAS),
        ),
        # §5 #23: flags 0x0C (user, BMI + height): 70.0 kg, user 5, BMI 0x00F5 = 24.5,
        # height 0x06D6 = 1750 x 0.001 m
        (
            bytes([0x0C, 0xB0, 0x36, 0x05, 0xF5, 0x00, 0xD6, 0x06]),
            WeightMeasurement(weight=70.0, user_id=5, bmi=24.5, height=1.75),
        ),
        # §5 #24: flags 0x0F (imperial, timestamp, user, BMI + height): 157 lb, user 3,
        # BMI 24.5, height 0x02A8 = 680 x 0.1 in
        (
            bytes(
                [
                    0x0F,
                    0x54,
                    0x3D,
                    0xE7,
                    0x07,
                    0x0C,
                    0x19,
                    0x0E,
                    0x1E,
                    0x2D,
                    0x03,
                    0xF5,
                    0x00,
                    0xA8,
                    0x02,
                ]
            ),
            WeightMeasurement(
                weight=157.0,
                unit=MassUnit.LB,
                timestamp=CHRISTMAS,
                user_id=3,
                bmi=24.5,
                height=68.0,
            ),
        ),
        # §5 #25: flags 4 (user), weight 0x1388 = 5000 x 0.005 kg, user 2
        (bytes([0x04, 0x88, 0x13, 0x02]), WeightMeasurement(weight=25.0, user_id=2)),
    ],
)
def test_vectors(data, expected):
    assert parse_weight_measurement(data) == expected


def test_measurement_unsuccessful_is_a_value_not_an_error():
    m = parse_weight_measurement(bytes([0x04, 0xFF, 0xFF, 0x01]))
    assert m == WeightMeasurement(weight=None, user_id=1)
    assert m.measurement_unsuccessful


def test_largest_weight():
    assert parse_weight_measurement(bytes([0x00, 0xFE, 0xFF])).weight == 327.67


def test_reserved_flag_bits_are_ignored():
    assert parse_weight_measurement(bytes([0xF0, 0xB0, 0x36])) == WeightMeasurement(weight=70.0)


@pytest.mark.parametrize(
    ("data", "field", "offset"),
    [
        (b"", "flags", 0),
        (bytes([0x00, 0xB0]), "weight", 1),
        (bytes([0x02, 0xB0, 0x36, 0xE7, 0x07]), "timestamp", 3),
        (bytes([0x04, 0xB0, 0x36]), "user_id", 3),
        (bytes([0x08, 0xB0, 0x36, 0xF5, 0x00]), "height", 5),
    ],
)
def test_truncated(data, field, offset):
    with pytest.raises(ParseError) as info:
        parse_weight_measurement(data)
    assert (info.value.field, info.value.offset) == (field, offset)


@given(st.binary(max_size=20))
def test_random_bytes_give_a_measurement_or_parse_error(data):
    with contextlib.suppress(ParseError):
        parse_weight_measurement(data)


def test_feature():
    # 0x000001BF: time stamp, multiple users, BMI (bits 0-2); mass resolution 7 (bits 3-6:
    # 0.005 kg); height resolution 3 (bits 7-9: 0.001 m)
    features = parse_weight_scale_feature(bytes([0xBF, 0x01, 0x00, 0x00]))
    assert WeightScaleFeature.MULTIPLE_USERS in features
    assert WeightScaleFeature.BMI in features
    assert features.mass_resolution is MassResolution.KG_0_005_OR_LB_0_01
    assert features.height_resolution is HeightResolution.M_0_001_OR_IN_0_1


def test_feature_without_resolution():
    features = parse_weight_scale_feature(bytes([0x01, 0x00, 0x00, 0x00]))
    assert features == WeightScaleFeature.TIME_STAMP
    assert features.mass_resolution is MassResolution.NOT_SPECIFIED


@given(st.binary(max_size=6))
def test_random_bytes_give_features_or_parse_error(data):
    with contextlib.suppress(ParseError):
        parse_weight_scale_feature(data)
