"""Blood-pressure and scale indications: stream on subscribe, units and users intact."""

import asyncio

import pytest
from bleak import BleakClient

from drivers.gatt import (
    parse_blood_pressure_measurement,
    parse_body_composition_measurement,
    parse_weight_measurement,
    uuids,
)
from drivers.gatt.user_data import consent, parse_user_control_response
from drivers.readings import MassUnit, PressureUnit
from drivers.simulator.server import Simulator
from tests.drivers.simulator.scenarios import CUFF, SCALE, cuff, scale


async def _collect_until_hangup(client: BleakClient, uuid: str, done: asyncio.Event) -> list[bytes]:
    frames: list[bytes] = []
    await client.start_notify(uuid, lambda _, d: frames.append(bytes(d)))
    await asyncio.wait_for(done.wait(), 5)
    return frames


@pytest.mark.parametrize("scenario", [cuff()])
async def test_cuff_streams_indications_then_hangs_up_and_erases(simulator: Simulator):
    done = asyncio.Event()
    client = BleakClient(CUFF, timeout=10, disconnected_callback=lambda _: done.set())
    await client.connect()
    frames = await _collect_until_hangup(client, uuids.BLOOD_PRESSURE_MEASUREMENT, done)
    await client.disconnect()  # after a device hang-up this only closes Bleak's bus connection
    readings = [parse_blood_pressure_measurement(f) for f in frames]

    assert [(r.systolic, r.diastolic, r.unit) for r in readings] == [
        (128, 82, PressureUnit.MMHG),
        (16.1, 10.5, PressureUnit.KPA),
        (121, 79, PressureUnit.MMHG),
    ]
    assert [r.user_id for r in readings] == [1, 2, None]
    assert readings[0].pulse_rate == 68
    assert readings[1].status is not None
    assert int(readings[1].status) == 4  # irregular pulse
    assert readings[2].timestamp is None
    # "Data can be downloaded once": a second connection gets nothing.
    assert simulator.device(CUFF).profile.records == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("scenario", [scale()])
async def test_scale_sends_weights_and_body_composition(simulator: Simulator):
    done = asyncio.Event()
    client = BleakClient(SCALE, timeout=10, disconnected_callback=lambda _: done.set())
    await client.connect()
    body: list[bytes] = []
    await client.start_notify(
        uuids.BODY_COMPOSITION_MEASUREMENT, lambda _, d: body.append(bytes(d))
    )
    frames = await _collect_until_hangup(client, uuids.WEIGHT_MEASUREMENT, done)
    await client.disconnect()
    weights = [parse_weight_measurement(f) for f in frames]

    assert [(w.weight, w.unit, w.user_id) for w in weights] == [
        (82.4, MassUnit.KG, 1),
        (150.2, MassUnit.LB, 2),
        (None, MassUnit.KG, 2),
    ]
    assert weights[2].measurement_unsuccessful
    compositions = [parse_body_composition_measurement(f) for f in body]
    assert compositions[0].body_fat_percent == 24.1
    assert compositions[0].user_id == 1


@pytest.mark.parametrize(
    "scenario",
    [scale(users="users = [{ index = 1, consent = 1234 }, { index = 2, consent = 42 }]")],
)
async def test_scale_holds_user_readings_until_consent(simulator: Simulator):
    async with BleakClient(SCALE, timeout=10) as client:
        weights: list[int | None] = []
        responses: list[bytes] = []
        await client.start_notify(
            uuids.WEIGHT_MEASUREMENT,
            lambda _, d: weights.append(parse_weight_measurement(bytes(d)).user_id),
        )
        await client.start_notify(uuids.USER_CONTROL_POINT, lambda _, d: responses.append(bytes(d)))
        await asyncio.sleep(0.1)
        assert weights == []  # everything belongs to a consent-protected user

        await client.write_gatt_char(uuids.USER_CONTROL_POINT, consent(1, 9999), response=True)
        await client.write_gatt_char(uuids.USER_CONTROL_POINT, consent(1, 1234), response=True)
        for _ in range(50):
            if weights:
                break
            await asyncio.sleep(0.02)

    results = [parse_user_control_response(r).result.name for r in responses]
    assert results == ["USER_NOT_AUTHORIZED", "SUCCESS"]
    assert weights == [1]
