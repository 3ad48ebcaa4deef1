"""The BlueZ errors Bleak documents and branches on, produced by the simulator."""

import asyncio

import pytest
from bleak import BleakClient
from bleak.exc import BleakDBusError, BleakDeviceNotFoundError, BleakGATTProtocolError

from drivers.gatt import parse_current_time, racp, uuids
from drivers.gatt.current_time import CurrentTime, build_current_time
from drivers.gatt.ieee11073 import DayOfWeek
from drivers.readings import DeviceTime
from drivers.simulator.server import Simulator
from tests.drivers.simulator.scenarios import METER, meter

ATT_FAULT = meter(
    3,
    extra='faults = { att_errors = [{ uuid = "2a51", op = "read", code = 0x80, times = 1 }] }',
)


@pytest.mark.parametrize("scenario", [meter(3)])
async def test_racp_write_without_indications_is_cccd_improperly_configured(
    simulator: Simulator,
):
    async with BleakClient(METER, timeout=10) as client:
        with pytest.raises(BleakGATTProtocolError) as caught:
            await client.write_gatt_char(uuids.RECORD_ACCESS_CONTROL_POINT, racp.report_all(), True)
    assert caught.value.code == 0xFD


@pytest.mark.parametrize("scenario", [ATT_FAULT])
async def test_injected_att_error_then_recovery(simulator: Simulator):
    async with BleakClient(METER, timeout=10) as client:
        with pytest.raises(BleakGATTProtocolError) as caught:
            await client.read_gatt_char(uuids.GLUCOSE_FEATURE)
        assert caught.value.code == 0x80
        assert len(await client.read_gatt_char(uuids.GLUCOSE_FEATURE)) == 2


@pytest.mark.parametrize("scenario", [meter(3)])
async def test_unknown_device_is_not_found(simulator: Simulator):
    with pytest.raises(BleakDeviceNotFoundError):
        async with BleakClient("C0:FF:EE:99:99:99", timeout=0.5):
            pass


@pytest.mark.parametrize("scenario", [meter(3)])
async def test_read_only_clock_refuses_writes(simulator: Simulator):
    async with BleakClient(METER, timeout=10) as client:
        with pytest.raises(BleakGATTProtocolError):
            await client.write_gatt_char(uuids.CURRENT_TIME, bytes(10), response=True)


@pytest.mark.parametrize(
    "scenario", [meter(3, extra="clock_skew_s = -3600\nclock_writable = true")]
)
async def test_device_clock_reads_skewed_and_can_be_set(simulator: Simulator):
    from datetime import UTC, datetime

    async with BleakClient(METER, timeout=10) as client:
        shown = parse_current_time(await client.read_gatt_char(uuids.CURRENT_TIME)).time
        skew = shown.wall_clock() - datetime.now(UTC).replace(tzinfo=None)  # type: ignore[operator]
        assert -3602 < skew.total_seconds() < -3598

        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        value = CurrentTime(time=DeviceTime.from_datetime(now), day_of_week=DayOfWeek.of(now))
        await client.write_gatt_char(uuids.CURRENT_TIME, build_current_time(value), True)
        shown = parse_current_time(await client.read_gatt_char(uuids.CURRENT_TIME)).time
        skew = shown.wall_clock() - datetime.now(UTC).replace(tzinfo=None)  # type: ignore[operator]
        assert abs(skew.total_seconds()) < 2


@pytest.mark.parametrize("scenario", [meter(200)])
async def test_acquire_notify_delivers_but_may_reorder_across_characteristics(
    simulator: Simulator,
):
    """AcquireNotify gives each characteristic its own socket: the gateway must not use it for
    RACP (bluez-simulator.md gotcha 4). Here we only check the path works end to end."""
    got: list[bytes] = []
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    async with BleakClient(METER, timeout=10) as client:
        await client.start_notify(
            uuids.GLUCOSE_MEASUREMENT,
            lambda _, d: got.append(bytes(d)),
            bluez={"use_start_notify": False},
        )
        await client.start_notify(
            uuids.RECORD_ACCESS_CONTROL_POINT,
            lambda _, d: done.done() or done.set_result(None),
        )
        await client.write_gatt_char(uuids.RECORD_ACCESS_CONTROL_POINT, racp.report_all(), True)
        await asyncio.wait_for(done, 5)
        for _ in range(100):
            if len(got) == 200:
                break
            await asyncio.sleep(0.01)
        assert simulator.device(METER).characteristic("2a18").iface.NotifyAcquired  # type: ignore[union-attr]
    assert len(got) == 200


@pytest.mark.parametrize("scenario", [meter(3)])
async def test_notify_sessions_are_per_sender_and_end_with_its_connection(
    simulator: Simulator, bus_guard: str
):
    from dbus_fast import Message
    from dbus_fast.aio import MessageBus

    char = simulator.device(METER).characteristic("2a18")
    async with BleakClient(METER, timeout=10):
        other = await MessageBus(bus_address=bus_guard).connect()
        reply = await other.call(
            Message(
                destination="org.bluez",
                path=char.iface.path,  # type: ignore[union-attr]
                interface="org.bluez.GattCharacteristic1",
                member="StartNotify",
            )
        )
        assert reply is not None
        assert reply.error_name is None
        assert char.subscribed
        other.disconnect()  # the other client goes away without StopNotify
        for _ in range(100):
            if not char.subscribed:
                break
            await asyncio.sleep(0.01)
        assert not char.subscribed


@pytest.mark.parametrize("scenario", [meter(3)])
async def test_stop_notify_without_start_fails_like_bluez(simulator: Simulator):
    async with BleakClient(METER, timeout=10) as client:
        with pytest.raises(BleakDBusError, match="No notify session started"):
            await client.stop_notify(uuids.GLUCOSE_MEASUREMENT)
