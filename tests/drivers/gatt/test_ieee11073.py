import contextlib
import math
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import ParseError
from drivers.gatt.ieee11073 import (
    DayOfWeek,
    Special,
    decode_date_time,
    decode_float,
    decode_sfloat,
    encode_date_time,
    encode_float,
    encode_sfloat,
    float_special,
    sfloat_special,
)
from drivers.readings import DeviceTime


def test_sfloat_reference_value():
    # §5 #16 (Nordic DataTest): 0xF065 = exponent 0xF (-1), mantissa 0x065 (101) -> 10.1
    assert decode_sfloat(bytes([0x65, 0xF0])) == 10.1


def test_sfloat_glucose_120_mg_dl():
    # §5 extra: 0xB078 = exponent 0xB (-5), mantissa 0x078 (120) -> 1.2e-3 kg/L = 120 mg/dL
    assert decode_sfloat(bytes([0x78, 0xB0])) == 0.0012


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (bytes([0x0C, 0x10]), 120.0),  # exponent +1, mantissa 12
        (bytes([0xFF, 0x0F]), -1.0),  # exponent 0, mantissa 0xFFF = -1
        (bytes([0x00, 0x08 | 0xF0]), -204.8),  # exponent -1, mantissa 0x800 = -2048
        (bytes([0x0A, 0x70]), 1e8),  # exponent +7: BSP's "1.0" is 1e8 under the spec
        (bytes([0x00, 0x00]), 0.0),
    ],
)
def test_sfloat_exponent_and_mantissa_are_twos_complement(data, expected):
    assert decode_sfloat(data) == expected


@pytest.mark.parametrize(
    ("data", "special", "check"),
    [
        # §5 #17: specials live at exponent 0
        (bytes([0xFF, 0x07]), Special.NAN, math.isnan),
        (bytes([0x00, 0x08]), Special.NRES, math.isnan),
        (bytes([0xFE, 0x07]), Special.POSITIVE_INFINITY, lambda v: v == math.inf),
        (bytes([0x02, 0x08]), Special.NEGATIVE_INFINITY, lambda v: v == -math.inf),
        (bytes([0x01, 0x08]), Special.RESERVED, math.isnan),
    ],
)
def test_sfloat_specials_decode_like_nordic_and_stay_distinguishable(data, special, check):
    assert check(decode_sfloat(data))
    assert sfloat_special(data) is special


def test_sfloat_mantissa_0x7ff_is_a_number_away_from_exponent_0():
    # 0x17FF: exponent +1, mantissa 2047 -> 20470, not NaN
    assert decode_sfloat(bytes([0xFF, 0x17])) == 20470.0
    assert sfloat_special(bytes([0xFF, 0x17])) is None


def test_float_reference_value():
    # §5 #18: exponent 0xFE (-2), mantissa 0x12D687 (1234567) -> 12345.67
    assert decode_float(bytes([0x87, 0xD6, 0x12, 0xFE])) == 12345.67


def test_float_37_degrees():
    # exponent 0xFF (-1), mantissa 0x000172 (370); BSP's 0x7F exponent would be 3.7e129
    assert decode_float(bytes([0x72, 0x01, 0x00, 0xFF])) == 37.0


@pytest.mark.parametrize(
    ("data", "special", "check"),
    [
        # §5 #19: exponent byte 0 with reserved mantissas
        (bytes([0xFF, 0xFF, 0x7F, 0x00]), Special.NAN, math.isnan),
        (bytes([0x00, 0x00, 0x80, 0x00]), Special.NRES, math.isnan),
        (bytes([0xFE, 0xFF, 0x7F, 0x00]), Special.POSITIVE_INFINITY, lambda v: v == math.inf),
        (bytes([0x02, 0x00, 0x80, 0x00]), Special.NEGATIVE_INFINITY, lambda v: v == -math.inf),
        (bytes([0x01, 0x00, 0x80, 0x00]), Special.RESERVED, math.isnan),
    ],
)
def test_float_specials(data, special, check):
    assert check(decode_float(data))
    assert float_special(data) is special


@pytest.mark.parametrize("data", [b"", b"\x01", b"\x01\x02\x03"])
def test_sfloat_needs_exactly_two_bytes(data):
    with pytest.raises(ParseError) as info:
        decode_sfloat(data)
    assert info.value.field == "sfloat"


@pytest.mark.parametrize("data", [b"", b"\x01\x02\x03", b"\x01\x02\x03\x04\x05"])
def test_float_needs_exactly_four_bytes(data):
    with pytest.raises(ParseError):
        decode_float(data)


def test_encode_sfloat_with_the_devices_exponent():
    assert encode_sfloat(0.0012, -5) == bytes([0x78, 0xB0])
    assert encode_sfloat(18.9, -1) == bytes([0xBD, 0xF0])


def test_encode_sfloat_picks_an_exact_form():
    assert encode_sfloat(10.1) == bytes([0x65, 0xF0])
    assert encode_sfloat(138.0) == bytes([0x8A, 0x00])
    assert decode_sfloat(encode_sfloat(0.0012)) == 0.0012


def test_encode_sfloat_rounds_when_nothing_is_exact():
    assert decode_sfloat(encode_sfloat(1 / 3)) == pytest.approx(1 / 3, rel=1e-3)


def test_encode_specials():
    assert encode_sfloat(math.nan) == bytes([0xFF, 0x07])
    assert encode_sfloat(math.inf) == bytes([0xFE, 0x07])
    assert encode_sfloat(-math.inf) == bytes([0x02, 0x08])
    assert encode_float(math.nan) == bytes([0xFF, 0xFF, 0x7F, 0x00])
    assert encode_float(-math.inf) == bytes([0x02, 0x00, 0x80, 0x00])


def test_encode_float_reference_value():
    assert encode_float(12345.67, -2) == bytes([0x87, 0xD6, 0x12, 0xFE])
    assert decode_float(encode_float(12345.67)) == 12345.67


@pytest.mark.parametrize(
    ("value", "exponent"), [(1.0, 8), (1.0, -9), (2046.0, 0), (1e12, None), (1e300, None)]
)
def test_encode_sfloat_rejects_what_does_not_fit(value, exponent):
    with pytest.raises(ValueError, match=r"exponent|fit|too large"):
        encode_sfloat(value, exponent)


@given(st.binary(min_size=2, max_size=2))
def test_every_sfloat_decodes_and_reencodes_to_the_same_value(data):
    value = decode_sfloat(data)
    if not math.isnan(value):
        assert decode_sfloat(encode_sfloat(value)) == value


@given(st.binary(min_size=4, max_size=4))
def test_every_float_decodes_and_reencodes_to_the_same_value(data):
    value = decode_float(data)
    if not math.isnan(value):
        assert decode_float(encode_float(value)) == value


@given(st.binary(max_size=6))
def test_random_bytes_give_a_float_or_parse_error(data):
    for decode in (decode_sfloat, decode_float, decode_date_time):
        with contextlib.suppress(ParseError):
            decode(data)


def test_date_time():
    # year 0x07E4 (2020), month 5, day 21, 10:30:45
    data = bytes([0xE4, 0x07, 0x05, 0x15, 0x0A, 0x1E, 0x2D])
    assert decode_date_time(data) == DeviceTime(2020, 5, 21, 10, 30, 45)
    assert encode_date_time(DeviceTime(2020, 5, 21, 10, 30, 45)) == data


def test_date_time_unknown_year_and_impossible_month_are_kept():
    # year 0 (unknown); month 13 as i-SENS meters send after their offset wraps
    assert decode_date_time(bytes([0, 0, 13, 1, 0, 0, 0])) == DeviceTime(0, 13, 1, 0, 0, 0)


def test_date_time_needs_seven_bytes():
    with pytest.raises(ParseError) as info:
        decode_date_time(bytes(6))
    assert info.value.field == "date_time"


def test_encode_date_time_rejects_fields_that_do_not_fit():
    with pytest.raises(ValueError, match="does not fit"):
        encode_date_time(DeviceTime(70000, 1, 1, 0, 0, 0))


def test_day_of_week():
    assert DayOfWeek.of(date(2026, 11, 23)) is DayOfWeek.MONDAY
    assert DayOfWeek.of(date(2026, 11, 29)) is DayOfWeek.SUNDAY
    assert DayOfWeek(9).name == "RESERVED_9"
