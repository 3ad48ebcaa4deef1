"""Device clocks: skew measurement and the CTS write policy."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from drivers.clock import ClockPolicy, check_clock, should_write, skew_seconds
from drivers.devices.base import Cursor
from drivers.errors import ProtocolError
from drivers.gatt import uuids
from drivers.gatt.current_time import CurrentTime, build_current_time, parse_current_time
from drivers.gatt.ieee11073 import encode_date_time
from drivers.readings import DeviceTime
from drivers.testing import FakeLink
from tests.drivers.devices.helpers import collect_over_bleak
from tests.drivers.simulator.scenarios import METER, meter

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BERLIN = "Europe/Berlin"


def clock() -> datetime:
    return NOW


def cts(value: DeviceTime) -> bytes:
    return build_current_time(CurrentTime(time=value))


def test_skew_reads_the_device_wall_clock_in_the_configured_zone():
    # 13:05 in Berlin (UTC+1 in November) is 12:05 UTC: five minutes ahead.
    ahead = DeviceTime(2026, 11, 23, 13, 5, 0)
    assert skew_seconds(ahead, NOW, ZoneInfo(BERLIN)) == 300
    assert skew_seconds(DeviceTime(0, 1, 1, 0, 0, 0), NOW, ZoneInfo(BERLIN)) is None


@pytest.mark.parametrize(
    ("policy", "skew", "writable", "expected"),
    [
        (ClockPolicy(write=False), 3600.0, True, False),  # config says no
        (ClockPolicy(write=True), 3600.0, False, False),  # device says no
        (ClockPolicy(write=True), 30.0, True, False),  # not worth it
        (ClockPolicy(write=True), -61.0, True, True),
        (ClockPolicy(write=True), None, True, True),  # clock lost its date
    ],
)
def test_write_policy(policy, skew, writable, expected):
    assert should_write(policy, skew, writable) is expected


async def test_measures_from_current_time_without_writing():
    link = FakeLink(values={uuids.CURRENT_TIME: cts(DeviceTime(2026, 11, 23, 11, 0, 0))})
    check = await check_clock(link, ClockPolicy(), clock=clock, zone="UTC")
    assert check.skew_s == -3600
    assert not check.written
    assert link.writes == []


async def test_falls_back_to_date_time():
    link = FakeLink(values={uuids.DATE_TIME: encode_date_time(DeviceTime(2026, 11, 23, 12, 0, 9))})
    check = await check_clock(link, ClockPolicy(), clock=clock, zone="UTC")
    assert check.skew_s == 9


async def test_no_clock_no_skew():
    check = await check_clock(FakeLink(), ClockPolicy(), clock=clock, zone="UTC")
    assert check.skew_s is None
    assert check.device_time is None


async def test_writes_local_wall_time_when_allowed():
    link = FakeLink(
        values={uuids.CURRENT_TIME: cts(DeviceTime(2026, 11, 23, 9, 0, 0))},
        writable=(uuids.CURRENT_TIME,),
    )
    check = await check_clock(link, ClockPolicy(write=True), clock=clock, zone=BERLIN)
    assert check.written
    ((uuid, value),) = link.writes
    assert uuid == uuids.CURRENT_TIME
    assert parse_current_time(value).time == DeviceTime(2026, 11, 23, 13, 0, 0)


async def test_refused_write_is_not_fatal():
    def refuse(_link: FakeLink, _value: bytes) -> None:
        msg = f"{_link.address}: write refused"
        raise ProtocolError(msg)

    link = FakeLink(
        values={uuids.CURRENT_TIME: cts(DeviceTime(2026, 11, 23, 9, 0, 0))},
        on_write={uuids.CURRENT_TIME: refuse},
    )
    check = await check_clock(link, ClockPolicy(write=True), clock=clock, zone="UTC")
    assert not check.written
    assert check.skew_s == -3 * 3600


@pytest.mark.parametrize("scenario", [meter(2, extra="clock_skew_s = -3600")])
async def test_transfer_carries_the_measured_skew_against_the_simulator(simulator):
    transfer = await collect_over_bleak(
        METER, "meter+00012345", (uuids.GLUCOSE_SERVICE,), Cursor(), zone="UTC"
    )
    assert transfer.clock_skew_s is not None
    assert -3605 < transfer.clock_skew_s < -3595
    assert all(r.clock_skew_s == transfer.clock_skew_s for r in transfer.readings)
    assert transfer.readings[0].device_time.year == 2026  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "scenario", [meter(1, extra="clock_skew_s = -3600\nclock_writable = true")]
)
async def test_cts_written_only_when_config_enables_it(simulator):
    kept = await collect_over_bleak(METER, "meter+00012345", (uuids.GLUCOSE_SERVICE,), Cursor())
    assert not kept.notices
    assert simulator.device(METER).profile.clock.skew_s == -3600
    await collect_over_bleak(
        METER,
        "meter+00012345",
        (uuids.GLUCOSE_SERVICE,),
        kept.cursor,
        clock_policy=ClockPolicy(write=True),
    )
    assert abs(simulator.device(METER).profile.clock.skew_s) < 2


@pytest.mark.parametrize("scenario", [meter(1, extra="clock_skew_s = -3600")])
async def test_read_only_clock_is_never_written(simulator):
    transfer = await collect_over_bleak(
        METER,
        "meter+00012345",
        (uuids.GLUCOSE_SERVICE,),
        Cursor(),
        clock_policy=ClockPolicy(write=True),
    )
    assert transfer.notices == ()
    assert simulator.device(METER).profile.clock.skew_s == -3600


async def test_a_guarded_clock_does_not_stop_the_transfer():
    from drivers.errors import PairingError

    link = FakeLink(
        values={uuids.CURRENT_TIME: cts(DeviceTime(2026, 11, 23, 9, 0, 0))},
        errors={uuids.CURRENT_TIME: PairingError("AA: needs a bond")},
    )
    check = await check_clock(link, ClockPolicy(), clock=clock, zone="UTC")
    assert check.skew_s is None
