"""BP cuff and scale drivers over real Bleak against the simulator."""

import asyncio

import pytest

from drivers.devices.base import Cursor, NoticeCode
from drivers.devices.sig_blood_pressure import SigBloodPressureDriver
from drivers.devices.sig_scale import SigScaleDriver
from drivers.gatt import uuids
from drivers.readings import (
    BloodPressureReading,
    BodyReading,
    MassUnit,
    PressureUnit,
    ReadingFlag,
)
from drivers.simulator.scenario import parse_scenario
from tests.drivers.devices.helpers import NOW, collect_over_bleak, fixed_clock
from tests.drivers.simulator.scenarios import CUFF, SCALE, cuff, scale

# Short idle timers: the simulated devices hang up 0.2 s after their last record anyway.
BP = SigBloodPressureDriver(idle_s=0.5, total_s=5)
SCALES = SigScaleDriver(idle_s=0.5, total_s=5)
BLS = (uuids.BLOOD_PRESSURE_SERVICE,)
WSS = (uuids.WEIGHT_SCALE_SERVICE, uuids.BODY_COMPOSITION_SERVICE)
USERS = "users = [ { index = 1, consent = 1234 }, { index = 2, consent = 42 } ]"


@pytest.mark.parametrize("scenario", [cuff()])
async def test_bp_stream_keeps_units_users_status_and_untimed_records(simulator):
    transfer = await collect_over_bleak(
        CUFF, "BLEsmart_00000116", BLS, Cursor(), driver=BP, clock=fixed_clock
    )
    assert transfer.complete
    assert transfer.match is not None
    assert (transfer.match.brand, transfer.match.provider) == ("Omron", "omron_ble")
    readings: list[BloodPressureReading] = list(transfer.readings)  # type: ignore[arg-type]
    assert len(readings) == 3
    mmhg, kpa, untimed = readings
    assert (mmhg.systolic, mmhg.diastolic, mmhg.pulse_bpm, mmhg.unit) == (
        128,
        82,
        68,
        PressureUnit.MMHG,
    )
    assert mmhg.user_index == 1
    assert (kpa.unit, kpa.user_index, kpa.measurement_status) == (PressureUnit.KPA, 2, 4)
    assert kpa.systolic == pytest.approx(16.1)
    assert ReadingFlag.IRREGULAR_PULSE in kpa.flags
    assert untimed.device_time is None
    assert ReadingFlag.NO_DEVICE_TIME in untimed.flags
    assert untimed.received_at == NOW
    assert len({r.id for r in readings}) == 3


@pytest.mark.parametrize("scenario", [cuff()])
async def test_cuff_erases_on_send_so_a_second_read_is_empty(simulator):
    first = await collect_over_bleak(CUFF, "BLEsmart_00000116", BLS, Cursor(), driver=BP)
    second = await collect_over_bleak(CUFF, "BLEsmart_00000116", BLS, first.cursor, driver=BP)
    assert len(first.readings) == 3
    assert second.readings == ()
    assert second.complete


@pytest.mark.parametrize("scenario", [scale(users=USERS)])
async def test_scale_readings_per_user_with_consent_codes(simulator):
    transfer = await collect_over_bleak(
        SCALE, "BF720", WSS, Cursor(), driver=SCALES, consent_codes={1: 1234, 2: 42}
    )
    assert transfer.match is not None
    assert (transfer.match.brand, transfer.match.provider) == ("Beurer", "beurer_ble")
    readings: list[BodyReading] = list(transfer.readings)  # type: ignore[arg-type]
    by_user = {r.user_index: r for r in readings}
    assert set(by_user) == {1, 2}
    assert (by_user[1].weight, by_user[1].unit, by_user[1].fat_percent) == (
        pytest.approx(82.4),
        MassUnit.KG,
        pytest.approx(24.1),
    )
    assert (by_user[2].weight, by_user[2].unit) == (pytest.approx(150.2), MassUnit.LB)
    unsuccessful = [n for n in transfer.notices if n.code is NoticeCode.MEASUREMENT_UNSUCCESSFUL]
    assert [n.user_index for n in unsuccessful] == [2]


@pytest.mark.parametrize("scenario", [scale(users=USERS)])
async def test_scale_wrong_consent_code_is_reported_and_other_users_still_read(simulator):
    transfer = await collect_over_bleak(
        SCALE, "BF720", WSS, Cursor(), driver=SCALES, consent_codes={1: 1234, 2: 9999}
    )
    assert {r.user_index for r in transfer.readings} == {1}
    refused = [n for n in transfer.notices if n.code is NoticeCode.CONSENT_REFUSED]
    assert [n.user_index for n in refused] == [2]


@pytest.mark.parametrize("scenario", [scale(users=USERS)])
async def test_scale_without_consent_codes_says_so(simulator):
    transfer = await collect_over_bleak(SCALE, "BF720", WSS, Cursor(), driver=SCALES)
    assert transfer.readings == ()
    assert NoticeCode.CONSENT_MISSING in {n.code for n in transfer.notices}


@pytest.mark.parametrize("scenario", [scale()])
async def test_scale_without_user_data_service_streams_everything(simulator):
    transfer = await collect_over_bleak(SCALE, "BF720", WSS, Cursor(), driver=SCALES)
    assert {r.user_index for r in transfer.readings} == {1, 2}
    assert NoticeCode.CONSENT_MISSING not in {n.code for n in transfer.notices}


def _long_cuff(records: int) -> str:
    rows = ",\n".join(
        f'{{ time = "2026-11-20T{i // 60:02d}:{i % 60:02d}:00", systolic = {110 + i % 30}, '
        "diastolic = 80 }"
        for i in range(records)
    )
    return f"""
[[devices]]
kind = "blood_pressure"
address = "{CUFF}"
name = "BLEsmart_00000116"
manufacturer = "OMRON HEALTHCARE"
erase_after_send = true
faults = {{ notify_interval_ms = 40 }}
records = [
{rows}
]
"""


@pytest.mark.parametrize("scenario", [parse_scenario(_long_cuff(60))])
async def test_the_cap_stops_indications_so_nothing_is_erased_unkept(simulator):
    """700 records at 50 ms against the 30 s cap, scaled down: cap 0.6 s, 60 records at 40 ms.

    Every record the cuff erased (its indication was delivered) is in what the driver
    returned; the rest is still on the cuff for the next read.
    """
    sunk: list = []
    capped = SigBloodPressureDriver(idle_s=0.5, total_s=0.6)
    transfer = await collect_over_bleak(
        CUFF, "BLEsmart_00000116", BLS, Cursor(), driver=capped, sink=sunk.extend
    )
    await asyncio.sleep(0.3)  # anything the cuff still sent would be erased by now
    remaining = simulator.device(CUFF).profile.records  # type: ignore[attr-defined]
    assert not transfer.complete
    assert NoticeCode.CAPPED in {n.code for n in transfer.notices}
    assert 5 < len(transfer.readings) < 60
    assert len(transfer.readings) + len(remaining) == 60
    assert [r.id for r in sunk] == [r.id for r in transfer.readings]
    rest = await collect_over_bleak(CUFF, "BLEsmart_00000116", BLS, Cursor(), driver=BP)
    assert len(rest.readings) == len(remaining)
