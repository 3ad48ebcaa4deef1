import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import ParseError
from drivers.gatt import (
    BodyCompositionFeature,
    BodyCompositionMeasurement,
    HeightResolution,
    MassResolution,
    merge_body_composition,
    parse_body_composition_feature,
    parse_body_composition_measurement,
)
from drivers.readings import DeviceTime, MassUnit


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # §5 #26: flags 0x000C (user, basal metabolism); fat 0x0078 = 12.0 %; user 5;
        # BMR 0x0640 = 1600 kJ
        (
            bytes([0x0C, 0x00, 0x78, 0x00, 0x05, 0x40, 0x06]),
            BodyCompositionMeasurement(body_fat_percent=12.0, user_id=5, basal_metabolism_kj=1600),
        ),
        # §5 #27: flags 0x0030 (muscle %, muscle mass); fat 10.0 %; muscle 0x00C8 = 20.0 %;
        # muscle mass 0x0BB8 = 3000 x 0.005 kg
        (
            bytes([0x30, 0x00, 0x64, 0x00, 0xC8, 0x00, 0xB8, 0x0B]),
            BodyCompositionMeasurement(
                body_fat_percent=10.0, muscle_percent=20.0, muscle_mass=15.0
            ),
        ),
        # §5 #28: flags 0x01C0 (fat free, soft lean, body water); fat 8.0 %; 0x2EE0 = 60.0 kg;
        # 0x2710 = 50.0 kg; 0x1F40 = 40.0 kg
        (
            bytes([0xC0, 0x01, 0x50, 0x00, 0xE0, 0x2E, 0x10, 0x27, 0x40, 0x1F]),
            BodyCompositionMeasurement(
                body_fat_percent=8.0, fat_free_mass=60.0, soft_lean_mass=50.0, body_water_mass=40.0
            ),
        ),
        # §5 #29: flags 0x0E00 (impedance, weight, height); fat 7.0 %; 0x1F40 = 800.0 ohm;
        # weight 0x36B0 = 70.0 kg; height 0x03E8 = 1.000 m
        (
            bytes([0x00, 0x0E, 0x46, 0x00, 0x40, 0x1F, 0xB0, 0x36, 0xE8, 0x03]),
            BodyCompositionMeasurement(
                body_fat_percent=7.0, impedance_ohm=800.0, weight=70.0, height=1.0
            ),
        ),
        # §5 #30: flags 0x0003 (imperial, timestamp); fat 0x0096 = 15.0 %; 2024-06-20 10:30:00
        (
            bytes([0x03, 0x00, 0x96, 0x00, 0xE8, 0x07, 0x06, 0x14, 0x0A, 0x1E, 0x00]),
            BodyCompositionMeasurement(
                body_fat_percent=15.0,
                unit=MassUnit.LB,
                timestamp=DeviceTime(2024, 6, 20, 10, 30, 0),
            ),
        ),
        # §5 #31: flags 0, fat 0xFFFF = measurement unsuccessful
        (bytes([0x00, 0x00, 0xFF, 0xFF]), BodyCompositionMeasurement(body_fat_percent=None)),
    ],
)
def test_vectors(data, expected):
    assert parse_body_composition_measurement(data) == expected


def test_unsuccessful_flag():
    assert parse_body_composition_measurement(bytes(2) + b"\xff\xff").measurement_unsuccessful


def test_imperial_masses_and_height():
    # flags 0x0C01: imperial, weight, height; fat 20.0 %; 15700 x 0.01 lb; 680 x 0.1 in
    data = bytes([0x01, 0x0C, 0xC8, 0x00, 0x54, 0x3D, 0xA8, 0x02])
    assert parse_body_composition_measurement(data) == BodyCompositionMeasurement(
        body_fat_percent=20.0, unit=MassUnit.LB, weight=157.0, height=68.0
    )


def test_reserved_flag_bits_are_ignored():
    assert parse_body_composition_measurement(
        bytes([0x00, 0xE0, 0x46, 0x00])
    ) == BodyCompositionMeasurement(body_fat_percent=7.0)


FIRST_PACKET = bytes(
    [
        0x0E, 0x10,  # flags 0x100E: timestamp, user, basal metabolism, multiple packet
        0xC8, 0x00,  # fat 20.0 %
        0xEA, 0x07, 0x0B, 0x14, 0x07, 0x1E, 0x00,  # 2026-11-20 07:30:00
        0x02,  # user 2
        0x40, 0x1F,  # basal metabolism 8000 kJ
    ]
)  # fmt: skip
SECOND_PACKET = bytes(
    [
        0x04, 0x1C,  # flags 0x1C04: user, weight, height, multiple packet
        0xC8, 0x00,  # fat 20.0 %
        0x02,  # user 2
        0xB0, 0x36,  # weight 70.0 kg
        0xD6, 0x06,  # height 1.750 m
    ]
)  # fmt: skip


def test_multiple_packet_flag_and_merge():
    first = parse_body_composition_measurement(FIRST_PACKET)
    second = parse_body_composition_measurement(SECOND_PACKET)
    assert first.multiple_packet
    assert second.multiple_packet
    assert merge_body_composition([first, second]) == BodyCompositionMeasurement(
        body_fat_percent=20.0,
        timestamp=DeviceTime(2026, 11, 20, 7, 30, 0),
        user_id=2,
        basal_metabolism_kj=8000,
        weight=70.0,
        height=1.75,
    )


def test_merge_rejects_mixed_units_and_nothing():
    lb = BodyCompositionMeasurement(body_fat_percent=20.0, unit=MassUnit.LB)
    with pytest.raises(ParseError):
        merge_body_composition([BodyCompositionMeasurement(body_fat_percent=20.0), lb])
    with pytest.raises(ParseError):
        merge_body_composition([])


@pytest.mark.parametrize("length", range(len(FIRST_PACKET)))
def test_every_truncation_is_a_parse_error(length):
    with pytest.raises(ParseError):
        parse_body_composition_measurement(FIRST_PACKET[:length])


@given(st.binary(max_size=32))
def test_random_bytes_give_a_measurement_or_parse_error(data):
    with contextlib.suppress(ParseError):
        parse_body_composition_measurement(data)


def test_feature():
    # 0x0001BFFF: every field (bits 0-10); mass resolution 7 (bits 11-14: 0.005 kg);
    # height resolution 3 (bits 15-17: 0.001 m)
    features = parse_body_composition_feature(bytes([0xFF, 0xBF, 0x01, 0x00]))
    assert BodyCompositionFeature.IMPEDANCE in features
    assert BodyCompositionFeature.HEIGHT in features
    assert features.mass_resolution is MassResolution.KG_0_005_OR_LB_0_01
    assert features.height_resolution is HeightResolution.M_0_001_OR_IN_0_1


def test_feature_truncated():
    with pytest.raises(ParseError) as info:
        parse_body_composition_feature(bytes([0xFF, 0xBF, 0x01]))
    assert (info.value.field, info.value.offset) == ("features", 0)


@given(st.binary(max_size=6))
def test_random_bytes_give_features_or_parse_error(data):
    with contextlib.suppress(ParseError):
        parse_body_composition_feature(data)
