"""Link loss mid-transfer: what Bleak sees, and that a re-read on reconnect is complete."""

import asyncio

import pytest
from bleak import BleakClient
from bleak.exc import BleakError

from drivers.gatt import parse_glucose_measurement, racp, uuids
from drivers.simulator.server import Simulator
from tests.drivers.simulator.scenarios import METER, meter
from tests.drivers.simulator.test_bleak_glucose import read_records

DROPPY = meter(300, extra="faults = { drop_link_after = 120 }")


@pytest.mark.parametrize("scenario", [DROPPY])
async def test_link_drop_mid_transfer_then_full_reread(simulator: Simulator):
    disconnected = asyncio.Event()
    sequences: list[int] = []
    client = BleakClient(METER, timeout=10, disconnected_callback=lambda _: disconnected.set())
    await client.connect()
    await client.start_notify(
        uuids.GLUCOSE_MEASUREMENT,
        lambda _, d: sequences.append(parse_glucose_measurement(bytes(d)).sequence),
    )
    await client.start_notify(uuids.RECORD_ACCESS_CONTROL_POINT, lambda _, d: None)
    await client.write_gatt_char(uuids.RECORD_ACCESS_CONTROL_POINT, racp.report_all(), True)
    await asyncio.wait_for(disconnected.wait(), 5)

    assert sequences == list(range(1, 121))
    assert not client.is_connected
    # After a drop Bleak has thrown its services away; this is the error callers see.
    with pytest.raises(BleakError, match="Service Discovery has not been performed yet"):
        await client.read_gatt_char(uuids.GLUCOSE_FEATURE)
    await client.disconnect()  # a no-op now, and must not hang

    async with BleakClient(METER, timeout=10) as again:
        rest, _ = await read_records(again, racp.report_greater_or_equal(121))
    assert rest == list(range(121, 301))


@pytest.mark.parametrize("scenario", [meter(3)])
async def test_device_out_of_range_fails_connect(simulator: Simulator):
    from bleak import BleakScanner
    from bleak.exc import BleakDBusError

    device = await BleakScanner.find_device_by_address(METER, timeout=5)
    assert device is not None
    simulator.set_in_range(METER, False)
    with pytest.raises(BleakDBusError, match="Software caused connection abort"):
        async with BleakClient(device, timeout=5):
            pass


@pytest.mark.parametrize("scenario", [meter(3, extra="faults = { connect_failures = 1 }")])
async def test_connect_failure_then_success(simulator: Simulator):
    from bleak.exc import BleakDBusError

    with pytest.raises(BleakDBusError):
        async with BleakClient(METER, timeout=5):
            pass
    async with BleakClient(METER, timeout=5) as client:
        assert client.is_connected
