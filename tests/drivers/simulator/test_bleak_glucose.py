"""Unmodified Bleak against the simulated glucose meter."""

import asyncio

import pytest
from bleak import BleakClient, BleakScanner

from drivers.gatt import parse_glucose_measurement, parse_racp, racp, uuids
from drivers.simulator.server import Simulator
from tests.drivers.simulator.scenarios import METER, meter


async def read_records(client: BleakClient, request: bytes) -> tuple[list[int], bytes]:
    """Subscribe, write a RACP request, collect sequence numbers until the RACP response."""
    sequences: list[int] = []
    done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def on_measurement(_: object, data: bytearray) -> None:
        sequences.append(parse_glucose_measurement(bytes(data)).sequence)

    def on_racp(_: object, data: bytearray) -> None:
        if not done.done():
            done.set_result(bytes(data))

    await client.start_notify(uuids.GLUCOSE_MEASUREMENT, on_measurement)
    await client.start_notify(uuids.RECORD_ACCESS_CONTROL_POINT, on_racp)
    await client.write_gatt_char(uuids.RECORD_ACCESS_CONTROL_POINT, request, response=True)
    response = await asyncio.wait_for(done, 10)
    return sequences, response


@pytest.mark.parametrize("scenario", [meter(3)])
async def test_scan_finds_the_meter_with_its_advertisement(simulator: Simulator):
    found = await BleakScanner.discover(timeout=0.3, return_adv=True)
    assert METER in found
    device, adv = found[METER]
    assert device.name == "meter+00012345"
    assert uuids.GLUCOSE_SERVICE in adv.service_uuids
    assert adv.rssi < 0


@pytest.mark.parametrize("scenario", [meter(3)])
async def test_passive_scan_finds_the_meter(simulator: Simulator):
    from bleak.args.bluez import BlueZScannerArgs, OrPattern

    args = BlueZScannerArgs(or_patterns=[OrPattern(0, 0x01, b"\x06")])
    async with BleakScanner(scanning_mode="passive", bluez=args) as scanner:
        async for device, _ in scanner.advertisement_data():
            if device.address == METER:
                break


@pytest.mark.parametrize("scenario", [meter(1000)])
async def test_thousand_record_racp_transfer_is_complete_and_in_order(simulator: Simulator):
    async with BleakClient(METER, timeout=10) as client:
        sequences, response = await read_records(client, racp.report_all())
    assert sequences == list(range(1, 1001))
    assert parse_racp(response).response_code == racp.RacpResponseCode.SUCCESS


@pytest.mark.parametrize("scenario", [meter(40)])
async def test_incremental_report_and_count(simulator: Simulator):
    async with BleakClient(METER, timeout=10) as client:
        sequences, _ = await read_records(client, racp.report_greater_or_equal(35))
        assert sequences == [35, 36, 37, 38, 39, 40]
        count_response: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        await client.stop_notify(uuids.RECORD_ACCESS_CONTROL_POINT)
        await client.start_notify(
            uuids.RECORD_ACCESS_CONTROL_POINT, lambda _, d: count_response.set_result(bytes(d))
        )
        await client.write_gatt_char(
            uuids.RECORD_ACCESS_CONTROL_POINT, racp.count_greater_or_equal(30), response=True
        )
        assert parse_racp(await asyncio.wait_for(count_response, 5)).number_of_records == 11


@pytest.mark.parametrize("scenario", [meter(0)])
async def test_empty_meter_answers_no_records_found(simulator: Simulator):
    async with BleakClient(METER, timeout=10) as client:
        sequences, response = await read_records(client, racp.report_all())
    assert sequences == []
    assert parse_racp(response).response_code == racp.RacpResponseCode.NO_RECORDS_FOUND


@pytest.mark.parametrize("scenario", [meter(5)])
async def test_device_information_and_battery_are_readable(simulator: Simulator):
    async with BleakClient(METER, timeout=10) as client:
        assert await client.read_gatt_char(uuids.MANUFACTURER_NAME) == b"Roche"
        assert (await client.read_gatt_char(uuids.BATTERY_LEVEL))[0] == 87
