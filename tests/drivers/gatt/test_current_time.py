import contextlib
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import ParseError
from drivers.gatt import AdjustReason, CurrentTime, DayOfWeek, parse_current_time
from drivers.gatt.current_time import build_current_time
from drivers.readings import DeviceTime

# The 10-byte write openScale sends (§3.2)
CTS = bytes(
    [
        0xEA, 0x07,  # year 2026
        0x0B,  # month 11
        0x17,  # day 23
        0x13,  # hour 19
        0x2D,  # minute 45
        0x07,  # second 7
        0x01,  # day of week: Monday
        0x80,  # fractions256: 128/256 s
        0x01,  # adjust reason: manual time update
    ]
)  # fmt: skip
VALUE = CurrentTime(
    time=DeviceTime(2026, 11, 23, 19, 45, 7),
    day_of_week=DayOfWeek.MONDAY,
    fractions256=128,
    adjust_reason=AdjustReason.MANUAL_TIME_UPDATE,
)


def test_parse():
    assert parse_current_time(CTS) == VALUE


def test_build():
    assert build_current_time(VALUE) == CTS


def test_from_datetime():
    value = CurrentTime.from_datetime(
        datetime(2026, 11, 23, 19, 45, 7, 500_000),  # noqa: DTZ001 - device wall time
        AdjustReason.MANUAL_TIME_UPDATE,
    )
    assert value == VALUE


def test_lost_clock_is_kept_raw():
    # Year 0, day of week unknown, reserved adjust-reason bit 7
    data = bytes([0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80])
    value = parse_current_time(data)
    assert value.time.wall_clock() is None
    assert value.day_of_week is DayOfWeek.UNKNOWN
    assert value.adjust_reason == 0x80


@pytest.mark.parametrize("length", range(len(CTS)))
def test_truncated(length):
    with pytest.raises(ParseError):
        parse_current_time(CTS[:length])


def test_build_rejects_fields_that_do_not_fit():
    with pytest.raises(ValueError, match=r"0\.\.255"):
        build_current_time(CurrentTime(time=VALUE.time, fractions256=256))


@given(st.binary(max_size=12))
def test_random_bytes_give_a_time_or_parse_error(data):
    with contextlib.suppress(ParseError):
        parse_current_time(data)


@given(st.binary(min_size=10, max_size=10))
def test_build_inverts_parse(data):
    assert build_current_time(parse_current_time(data)) == data
