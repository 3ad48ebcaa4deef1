"""Unmodified Bleak against the simulated glucose meter."""

import asyncio

import pytest
from bleak import BleakClient, BleakScanner

from drivers.gatt import parse_glucose_measurement, parse_racp, racp, uuids
from drivers.simulator.scenario import Scenario, parse_scenario
from drivers.simulator.server import Simulator

METER = "C0:FF:EE:00:00:01"


def _meter_scenario(records: int, faults: str = "") -> Scenario:
    rows = ",\n".join(
        f'{{ seq = {i}, time = "2026-11-20T{(i // 60) % 24:02d}:{i % 60:02d}:00", '
        f"mg_dl = {80 + i % 200} }}"
        for i in range(1, records + 1)
    )
    return parse_scenario(
        f"""
[[devices]]
kind = "glucose"
address = "{METER}"
name = "meter+00012345"
manufacturer = "Roche"
{faults}
records = [
{rows}
]
"""
    )


async def _read_records(client: BleakClient, request: bytes) -> tuple[list[int], bytes]:
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


@pytest.mark.parametrize("scenario", [_meter_scenario(3)])
async def test_scan_finds_the_meter_with_its_advertisement(simulator: Simulator):
    found = await BleakScanner.discover(timeout=0.3, return_adv=True)
    assert METER in found
    device, adv = found[METER]
    assert device.name == "meter+00012345"
    assert adv.local_name == "meter+00012345"
    assert uuids.GLUCOSE_SERVICE in adv.service_uuids
    assert adv.rssi < 0


@pytest.mark.parametrize("scenario", [_meter_scenario(1000)])
async def test_thousand_record_racp_transfer_is_complete_and_in_order(simulator: Simulator):
    async with BleakClient(METER, timeout=10) as client:
        sequences, response = await _read_records(client, racp.report_all())
    assert sequences == list(range(1, 1001))
    assert parse_racp(response).response_code == racp.RacpResponseCode.SUCCESS
