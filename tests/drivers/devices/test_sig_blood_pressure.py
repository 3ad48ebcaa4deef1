"""The BP driver against scripted cuffs (FakeLink)."""

import asyncio

import pytest

from drivers.devices.base import Advertisement, Cursor, NoticeCode
from drivers.devices.sig_blood_pressure import SigBloodPressureDriver, blood_pressure_flags
from drivers.gatt import uuids
from drivers.gatt.blood_pressure import BloodPressureMeasurement, BloodPressureStatus
from drivers.readings import DeviceTime, PressureUnit, ReadingFlag
from drivers.simulator.encoding import encode_blood_pressure_measurement
from drivers.testing import FakeLink
from tests.drivers.devices.helpers import NOW, context_for, fixed_clock

ADDRESS = "C0:FF:EE:00:00:0B"
ADVERT = Advertisement(address=ADDRESS, name="BM54", service_uuids=(uuids.BLOOD_PRESSURE_SERVICE,))
DRIVER = SigBloodPressureDriver(idle_s=0.05, total_s=1)


def measurement(**overrides) -> bytes:
    values = {
        "systolic": 120.0,
        "diastolic": 80.0,
        "mean_arterial_pressure": 93.0,
        "timestamp": DeviceTime(2026, 11, 20, 7, 0, 0),
        "pulse_rate": 70.0,
        "user_id": 1,
    }
    values.update(overrides)
    return encode_blood_pressure_measurement(BloodPressureMeasurement(**values))


def cuff(packets: list[bytes], *, hang_up: bool = True, values=None) -> FakeLink:
    def start(link: FakeLink) -> None:
        for packet in packets:
            link.notify(uuids.BLOOD_PRESSURE_MEASUREMENT, packet)
        if hang_up:
            link.drop_later()

    return FakeLink(
        ADDRESS,
        "BM54",
        values=values or {uuids.MANUFACTURER_NAME: b"Beurer GmbH"},
        notifiable=(uuids.BLOOD_PRESSURE_MEASUREMENT,),
        on_subscribe={uuids.BLOOD_PRESSURE_MEASUREMENT: start},
    )


async def collect(link: FakeLink, driver=DRIVER, **context):
    return await driver.collect(
        link, Cursor(), context_for(driver, ADVERT, clock=fixed_clock, **context)
    )


async def test_stream_ends_when_the_cuff_hangs_up():
    transfer = await collect(
        cuff([measurement(), measurement(timestamp=DeviceTime(2026, 11, 20, 8, 0, 0))])
    )
    assert transfer.complete
    assert len(transfer.readings) == 2
    assert transfer.match is not None
    assert transfer.match.provider == "beurer_ble"
    assert transfer.cursor == Cursor()


async def test_stream_ends_after_idle_when_the_cuff_stays_connected():
    link = cuff([measurement()], hang_up=False)
    transfer = await collect(link)
    assert transfer.complete
    assert len(transfer.readings) == 1
    assert link.is_connected  # the caller hangs up, after saving


async def test_total_cap_marks_a_still_streaming_cuff_incomplete():
    async def trickle(link: FakeLink) -> None:
        for minute in range(60):
            link.notify(
                uuids.BLOOD_PRESSURE_MEASUREMENT,
                measurement(timestamp=DeviceTime(2026, 11, 20, 9, minute, 0)),
            )
            await asyncio.sleep(0.01)

    tasks = []
    link = FakeLink(
        ADDRESS,
        notifiable=(uuids.BLOOD_PRESSURE_MEASUREMENT,),
        on_subscribe={
            uuids.BLOOD_PRESSURE_MEASUREMENT: lambda lk: tasks.append(
                asyncio.ensure_future(trickle(lk))
            )
        },
    )
    sunk: list = []
    transfer = await collect(
        link, SigBloodPressureDriver(idle_s=0.5, total_s=0.1), sink=sunk.extend
    )
    # The cap stops indications before collect returns: what the cuff sends after that is
    # not taken (it would be confirmed by BlueZ and erased with nobody keeping it).
    assert uuids.BLOOD_PRESSURE_MEASUREMENT not in link.subscribed
    await asyncio.sleep(0.05)
    tasks[0].cancel()
    assert not transfer.complete
    assert NoticeCode.CAPPED in {n.code for n in transfer.notices}
    assert 3 <= len(transfer.readings) < 60
    assert [r.id for r in sunk] == [r.id for r in transfer.readings]


async def test_each_record_reaches_the_sink_as_its_indication_arrives():
    """Nothing waits for the end of the stream: the gateway saves each record at once."""
    seen_before_end: list[int] = []
    sunk: list = []

    def start(link: FakeLink) -> None:
        async def send() -> None:
            for minute in range(3):
                link.notify(
                    uuids.BLOOD_PRESSURE_MEASUREMENT,
                    measurement(timestamp=DeviceTime(2026, 11, 20, 9, minute, 0)),
                )
                await asyncio.sleep(0.02)
                seen_before_end.append(len(sunk))
            link.drop_later()

        tasks.append(asyncio.ensure_future(send()))

    tasks: list = []
    link = FakeLink(
        ADDRESS,
        notifiable=(uuids.BLOOD_PRESSURE_MEASUREMENT,),
        on_subscribe={uuids.BLOOD_PRESSURE_MEASUREMENT: start},
    )
    transfer = await collect(link, sink=sunk.extend)
    assert seen_before_end == [1, 2, 3]
    assert [r.id for r in sunk] == [r.id for r in transfer.readings]


async def test_untimed_records_are_kept_flagged_with_distinct_ids():
    untimed = measurement(timestamp=None, user_id=None)
    transfer = await collect(cuff([untimed, untimed]))
    assert len(transfer.readings) == 2
    assert len({r.id for r in transfer.readings}) == 2
    for reading in transfer.readings:
        assert ReadingFlag.NO_DEVICE_TIME in reading.flags
        assert reading.received_at == NOW
        assert reading.device_time is None


async def test_year_zero_timestamp_counts_as_untimed_but_raw_fields_are_kept():
    transfer = await collect(cuff([measurement(timestamp=DeviceTime(0, 4, 17, 20, 41, 59))]))
    (reading,) = transfer.readings
    assert ReadingFlag.NO_DEVICE_TIME in reading.flags
    assert reading.device_time == DeviceTime(0, 4, 17, 20, 41, 59)


async def test_kpa_unit_and_unknown_user_and_missing_map_kept_as_sent():
    packet = measurement(
        systolic=18.9,
        diastolic=11.0,
        mean_arterial_pressure=float("nan"),
        unit=PressureUnit.KPA,
        user_id=0xFF,
        pulse_rate=None,
    )
    (reading,) = (await collect(cuff([packet]))).readings
    assert reading.unit is PressureUnit.KPA
    assert reading.systolic == pytest.approx(18.9)
    assert reading.user_index is None
    assert reading.mean_arterial is None
    assert reading.pulse_bpm is None


async def test_malformed_packet_is_skipped_and_the_rest_kept():
    transfer = await collect(cuff([b"\x1e\x8a", measurement()]))
    assert len(transfer.readings) == 1


async def test_cuff_that_hangs_up_before_subscribe_gives_an_empty_transfer():
    link = cuff([])
    link.drop()
    transfer = await collect(link)
    assert transfer.readings == ()
    assert transfer.complete


@pytest.mark.parametrize(
    ("bits", "flags"),
    [
        (0x0027, {"body_movement", "cuff_too_loose", "irregular_pulse", "improper_position"}),
        (0x0008, {"pulse_above_range"}),
        (0x0010, {"pulse_below_range"}),
        (0x0018, set()),  # pulse range 3 is reserved: neither
        (0x0000, set()),
    ],
)
def test_every_status_bit_becomes_a_flag(bits, flags):
    assert {f.value for f in blood_pressure_flags(BloodPressureStatus(bits))} == flags


async def test_status_bits_raw_and_flagged_and_historical():
    (reading,) = (
        await collect(cuff([measurement(status=BloodPressureStatus(0x0027))]), historical=True)
    ).readings
    assert reading.measurement_status == 0x0027
    assert ReadingFlag.HISTORICAL in reading.flags
    assert ReadingFlag.IRREGULAR_PULSE in reading.flags
