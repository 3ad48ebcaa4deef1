"""The scale driver against scripted scales (FakeLink): merging, users, consent, unsuccessful."""

from drivers.devices.base import Advertisement, Cursor, NoticeCode
from drivers.devices.sig_scale import SigScaleDriver
from drivers.gatt import uuids
from drivers.gatt.body_composition import BodyCompositionMeasurement
from drivers.gatt.user_data import UserControlOpCode, UserControlResponse, UserControlResult
from drivers.gatt.weight_scale import WeightMeasurement
from drivers.readings import DeviceTime, MassUnit, ReadingFlag
from drivers.simulator.encoding import (
    encode_body_composition_measurement,
    encode_user_data_response,
    encode_weight_measurement,
)
from drivers.testing import FakeLink
from tests.drivers.devices.helpers import context_for, fixed_clock

ADDRESS = "C0:FF:EE:00:00:0C"
ADVERT = Advertisement(
    address=ADDRESS,
    name="SBF70",
    service_uuids=(uuids.WEIGHT_SCALE_SERVICE, uuids.BODY_COMPOSITION_SERVICE),
)
DRIVER = SigScaleDriver(idle_s=0.05, total_s=1)
T1 = DeviceTime(2026, 11, 20, 7, 5, 0)


def weight(value: float | None, user: int | None = 1, **kw) -> tuple[str, bytes]:
    m = WeightMeasurement(weight=value, timestamp=kw.pop("timestamp", T1), user_id=user, **kw)
    return uuids.WEIGHT_MEASUREMENT, encode_weight_measurement(m)


def body(fat: float | None, user: int | None = 1, **kw) -> tuple[str, bytes]:
    m = BodyCompositionMeasurement(
        body_fat_percent=fat, timestamp=kw.pop("timestamp", T1), user_id=user, **kw
    )
    return uuids.BODY_COMPOSITION_MEASUREMENT, encode_body_composition_measurement(m)


def scale_link(packets, *, uds: dict[int, int] | None = None) -> FakeLink:
    """A scale: streams `packets` once weights are on (after consent when `uds` is set)."""
    consented: set[int] = set()

    def stream(link: FakeLink) -> None:
        for uuid, value in packets:
            link.notify(uuid, value)
        link.drop_later()

    def control(link: FakeLink, value: bytes) -> None:
        slot, code = value[1], int.from_bytes(value[2:4], "little")
        ok = uds is not None and uds.get(slot) == code
        if ok:
            consented.add(slot)
        result = UserControlResult.SUCCESS if ok else UserControlResult.USER_NOT_AUTHORIZED
        response = UserControlResponse(request_op_code=UserControlOpCode.CONSENT, result=result)
        link.notify(uuids.USER_CONTROL_POINT, encode_user_data_response(response))

    notifiable = [uuids.WEIGHT_MEASUREMENT, uuids.BODY_COMPOSITION_MEASUREMENT]
    on_write = {}
    if uds is not None:
        notifiable.append(uuids.USER_CONTROL_POINT)
        on_write[uuids.USER_CONTROL_POINT] = control
    return FakeLink(
        ADDRESS,
        "SBF70",
        values={uuids.MANUFACTURER_NAME: b"Sanitas"},
        notifiable=notifiable,
        on_write=on_write,
        on_subscribe={uuids.WEIGHT_MEASUREMENT: stream},
    )


async def collect(link: FakeLink, **context):
    return await DRIVER.collect(
        link, Cursor(), context_for(DRIVER, ADVERT, clock=fixed_clock, **context)
    )


async def test_weight_and_body_composition_merge_per_user():
    transfer = await collect(
        scale_link([weight(80.0, 1), body(20.5, 1), weight(60.0, 2), body(30.0, 2)])
    )
    by_user = {r.user_index: r for r in transfer.readings}
    assert (by_user[1].weight, by_user[1].fat_percent) == (80.0, 20.5)  # type: ignore[attr-defined]
    assert (by_user[2].weight, by_user[2].fat_percent) == (60.0, 30.0)  # type: ignore[attr-defined]
    assert transfer.match is not None
    assert transfer.match.provider == "beurer_ble"  # Sanitas is Beurer's brand


async def test_multi_packet_body_composition_is_merged_before_pairing():
    packets = [
        weight(80.0, 1),
        body(20.5, 1, multiple_packet=True, muscle_percent=40.0),
        body(20.5, 1, impedance_ohm=500.0),
    ]
    (reading,) = (await collect(scale_link(packets))).readings
    assert reading.fat_percent == 20.5  # type: ignore[attr-defined]


async def test_body_composition_for_another_user_is_its_own_reading():
    transfer = await collect(scale_link([weight(80.0, 1), body(25.0, 2, weight=70.0)]))
    by_user = {r.user_index: r for r in transfer.readings}
    assert by_user[1].fat_percent is None  # type: ignore[attr-defined]
    assert (by_user[2].weight, by_user[2].fat_percent) == (70.0, 25.0)  # type: ignore[attr-defined]


async def test_unsuccessful_measurement_is_reported_not_stored():
    transfer = await collect(scale_link([weight(None, 1), body(None, 1), weight(81.0, 1)]))
    assert [r.weight for r in transfer.readings] == [81.0]  # type: ignore[attr-defined]
    codes = [n.code for n in transfer.notices]
    assert codes.count(NoticeCode.MEASUREMENT_UNSUCCESSFUL) == 1


async def test_pounds_unknown_user_and_untimed_weights():
    packets = [weight(150.2, 0xFF, unit=MassUnit.LB, timestamp=None)]
    (reading,) = (await collect(scale_link(packets))).readings
    assert reading.unit is MassUnit.LB
    assert reading.user_index is None
    assert ReadingFlag.NO_DEVICE_TIME in reading.flags


async def test_consent_is_given_per_stored_slot_before_weights_are_enabled():
    link = scale_link([weight(80.0, 1)], uds={1: 1234})
    transfer = await collect(link, consent_codes={1: 1234})
    assert len(transfer.readings) == 1
    consent_writes = [v for u, v in link.writes if u == uuids.USER_CONTROL_POINT]
    assert consent_writes == [bytes([0x02, 1]) + (1234).to_bytes(2, "little")]
    assert transfer.notices == ()


async def test_refused_consent_is_a_notice_naming_the_slot():
    link = scale_link([], uds={1: 1234})
    transfer = await collect(link, consent_codes={1: 1})
    (notice,) = transfer.notices
    assert notice.code is NoticeCode.CONSENT_REFUSED
    assert notice.user_index == 1
    assert notice.message.startswith(ADDRESS)


async def test_uds_scale_without_codes_asks_for_them():
    transfer = await collect(scale_link([], uds={1: 1234}))
    assert [n.code for n in transfer.notices] == [NoticeCode.CONSENT_MISSING]


async def test_a_whole_measurement_reaches_the_sink_before_the_stream_ends():
    """Weight + complete body composition is saved at once; a lone weight after `HOLD_S`."""
    import asyncio

    from drivers.devices.sig_scale import HOLD_S

    sunk: list = []
    counts: list[int] = []
    t2 = DeviceTime(2026, 11, 20, 7, 6, 0)

    def stream(link: FakeLink) -> None:
        async def send() -> None:
            for uuid, value in (weight(80.0), body(20.0)):
                link.notify(uuid, value)
            await asyncio.sleep(0.02)
            counts.append(len(sunk))  # merged pair: whole, so handed over already
            link.notify(*weight(81.0, timestamp=t2))
            await asyncio.sleep(0.02)
            counts.append(len(sunk))  # a weight alone may still get its body composition
            await asyncio.sleep(HOLD_S + 0.05)
            counts.append(len(sunk))  # ... until the hold expires
            link.drop_later()

        tasks.append(asyncio.ensure_future(send()))

    tasks: list = []
    link = FakeLink(
        ADDRESS,
        "SBF70",
        notifiable=(uuids.WEIGHT_MEASUREMENT, uuids.BODY_COMPOSITION_MEASUREMENT),
        on_subscribe={uuids.WEIGHT_MEASUREMENT: stream},
    )
    driver = SigScaleDriver(idle_s=1, total_s=5)
    transfer = await driver.collect(
        link, Cursor(), context_for(driver, ADVERT, clock=fixed_clock, sink=sunk.extend)
    )
    assert counts == [1, 1, 2]
    assert [r.id for r in sunk] == [r.id for r in transfer.readings]
    assert sunk[0].fat_percent == 20.0
