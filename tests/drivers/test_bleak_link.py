"""BleakLink against the simulated BlueZ: GATT operations, link loss, pairing, errors, scanning."""

import asyncio

import pytest
from bleak.exc import (
    BleakDBusError,
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
)

from drivers.bleak_link import BleakLink, BleakRadio, pair_device, scan, translate
from drivers.devices.base import Advertisement, Cursor
from drivers.devices.sig_glucose import SigGlucoseDriver
from drivers.errors import (
    DeviceNotFoundError,
    DisconnectedError,
    LinkError,
    LinkTimeoutError,
    PairingError,
    ProtocolError,
)
from drivers.gatt import racp, uuids
from drivers.link import GattLink, wait_for
from tests.drivers.devices.helpers import bleak_link, context_for
from tests.drivers.simulator.scenarios import CUFF, METER, cuff, meter

PROTECTED = meter(5, extra="passkey = 123456")
ADVERT = Advertisement(address=METER, name="meter+00012345", service_uuids=(uuids.GLUCOSE_SERVICE,))


@pytest.mark.parametrize("scenario", [meter(3)])
async def test_read_write_subscribe_and_characteristic_queries(simulator):
    async with bleak_link(METER) as link:
        assert isinstance(link, GattLink)
        assert link.is_connected
        assert await link.read(uuids.MANUFACTURER_NAME) == b"Roche"
        assert link.has_characteristic(uuids.RECORD_ACCESS_CONTROL_POINT)
        assert not link.has_characteristic(uuids.WEIGHT_MEASUREMENT)
        assert link.can_write(uuids.RECORD_ACCESS_CONTROL_POINT)
        assert not link.can_write(uuids.CURRENT_TIME)  # read-only clock in this scenario
        answers: asyncio.Queue[bytes] = asyncio.Queue()
        await link.subscribe(uuids.RECORD_ACCESS_CONTROL_POINT, answers.put_nowait)
        await link.write(uuids.RECORD_ACCESS_CONTROL_POINT, racp.count_all())
        assert racp.parse_racp(await asyncio.wait_for(answers.get(), 5)).number_of_records == 3
        await link.unsubscribe(uuids.RECORD_ACCESS_CONTROL_POINT)
    assert not link.is_connected
    assert link.disconnected.is_set()


@pytest.mark.parametrize("scenario", [meter(3)])
async def test_att_error_becomes_protocol_error_naming_the_device(simulator):
    async with bleak_link(METER) as link:
        with pytest.raises(ProtocolError, match=f"^{METER}: .*CCCD_IMPROPERLY_CONFIGURED"):
            await link.write(uuids.RECORD_ACCESS_CONTROL_POINT, racp.report_all())


@pytest.mark.parametrize("scenario", [meter(3)])
async def test_device_drop_sets_the_event_and_operations_raise_disconnected(simulator):
    async with bleak_link(METER) as link:
        simulator.device(METER).drop_link("test")
        await asyncio.wait_for(link.disconnected.wait(), 2)
        assert not link.is_connected
        assert not link.has_characteristic(uuids.GLUCOSE_FEATURE)
        with pytest.raises(DisconnectedError, match=METER):
            await link.read(uuids.GLUCOSE_FEATURE)
        await link.unsubscribe(uuids.GLUCOSE_MEASUREMENT)  # a no-op when down


@pytest.mark.parametrize("scenario", [meter(3)])
async def test_wait_for_races_the_disconnect(simulator):
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    async with bleak_link(METER) as link:
        asyncio.get_running_loop().call_later(0.05, simulator.device(METER).drop_link)
        with pytest.raises(DisconnectedError, match="RACP response"):
            await wait_for(link, never, timeout_s=5, what="RACP response")
    assert never.cancelled()


@pytest.mark.parametrize("scenario", [meter(3)])
async def test_wait_for_times_out_with_a_remedy(simulator):
    async with bleak_link(METER) as link:
        never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with pytest.raises(LinkTimeoutError, match=r"in range, then retry$"):
            await wait_for(link, never, timeout_s=0.05, what="RACP response")


@pytest.mark.parametrize("scenario", [meter(3)])
async def test_unknown_device_is_not_found(simulator):
    with pytest.raises(DeviceNotFoundError, match=r"^C0:FF:EE:99:99:99: not advertising"):
        await BleakLink.connect("C0:FF:EE:99:99:99", find_timeout_s=0.2)


@pytest.mark.parametrize("scenario", [meter(3)])
async def test_out_of_range_device_fails_to_connect_as_not_found(simulator):
    radio = BleakRadio(attempts=1)
    async with radio.advertisements() as adverts:
        async for advert in adverts:
            if advert.address == METER:
                break
    simulator.set_in_range(METER, False)
    with pytest.raises(DeviceNotFoundError, match=f"^{METER}: could not connect.*closer$"):
        async with radio.connect(advert):
            pass


@pytest.mark.parametrize("scenario", [meter(3, extra="faults = { connect_failures = 1 }")])
async def test_connect_retries_a_transient_failure(simulator):
    async with bleak_link(METER, attempts=2) as link:
        assert link.is_connected


@pytest.mark.parametrize("scenario", [PROTECTED])
async def test_passkey_device_pairs_through_the_agent_then_reads(simulator):
    await pair_device(METER, 123456, find_timeout_s=5)
    assert simulator.device(METER).paired
    driver = SigGlucoseDriver()
    async with bleak_link(METER) as link:
        transfer = await driver.collect(link, Cursor(), context_for(driver, ADVERT))
    assert [r.sequence for r in transfer.readings] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("scenario", [PROTECTED])
async def test_wrong_passkey_is_a_clear_pairing_error(simulator):
    hint = SigGlucoseDriver().match(ADVERT).pairing_hint  # type: ignore[union-attr]
    with pytest.raises(PairingError) as caught:
        await pair_device(METER, 111111, hint=hint, find_timeout_s=5)
    message = str(caught.value)
    assert message.startswith(f"{METER}: pairing failed: the passkey or PIN was wrong; ")
    assert message.endswith(hint)
    assert "Pairing > Pair device" in message
    assert not simulator.device(METER).paired


@pytest.mark.parametrize("scenario", [PROTECTED])
async def test_unbonded_read_of_a_protected_meter_asks_for_pairing(simulator):
    driver = SigGlucoseDriver()
    async with bleak_link(METER) as link:
        with pytest.raises(PairingError, match=f"^{METER}: .*needs a bonded device.*--pin"):
            await driver.collect(link, Cursor(), context_for(driver, ADVERT))


@pytest.mark.parametrize("scenario", [meter(2)])
async def test_scan_lists_adverts_without_bleak_types(simulator):
    found = await scan(0.2)
    (advert,) = [a for a in found if a.address == METER]
    assert isinstance(advert, Advertisement)
    assert advert.name == "meter+00012345"
    assert uuids.GLUCOSE_SERVICE in advert.service_uuids
    assert advert.rssi is not None
    assert advert.rssi < 0


@pytest.mark.parametrize("scenario", [cuff()])
async def test_radio_yields_adverts_and_connects_by_advert(simulator):
    radio = BleakRadio()
    async with radio.advertisements() as adverts:
        async for advert in adverts:
            if advert.address == CUFF:
                break
    async with radio.connect(advert) as link:
        assert link.has_characteristic(uuids.BLOOD_PRESSURE_MEASUREMENT)
    assert not link.is_connected


@pytest.mark.parametrize(
    ("error", "kind", "text"),
    [
        (BleakDBusError("org.bluez.Error.AuthenticationFailed", []), PairingError, "wrong"),
        (BleakDBusError("org.bluez.Error.AuthenticationRejected", []), PairingError, "agent"),
        (BleakGATTProtocolError(0x05), PairingError, "bonded"),
        (BleakGATTProtocolError(0x80), ProtocolError, "refused"),
        (BleakDeviceNotFoundError("x"), DeviceNotFoundError, "not found"),
        (BleakError("Service Discovery has not been performed yet"), DisconnectedError, "lost"),
        (TimeoutError(), LinkTimeoutError, "timed out"),
        (FileNotFoundError("bus"), LinkError, "D-Bus"),
        (
            BleakDBusError(
                "org.freedesktop.DBus.Error.ServiceUnknown",
                ["The name org.bluez was not provided by any .service files"],
            ),
            LinkError,
            "bluetoothd is not running on the system bus; start it (`systemctl start bluetooth`)",
        ),
        (
            BleakDBusError("org.bluez.Error.Failed", ["Software caused connection abort"]),
            DisconnectedError,
            "lost",
        ),
    ],
)
def test_translate_maps_every_family_and_leads_with_the_device(error, kind, text):
    translated = translate(error, "AA:BB:CC:DD:EE:FF", "read 2a18")
    assert type(translated) is kind
    assert str(translated).startswith("AA:BB:CC:DD:EE:FF: ")
    assert text in str(translated)


def test_translate_finds_a_pairing_failure_wrapped_by_the_retry_connector():
    from bleak_retry_connector import BleakConnectionError

    outer = BleakConnectionError("meter - AA: Failed to connect")
    outer.__cause__ = BleakDBusError("org.bluez.Error.AuthenticationFailed", [])
    translated = translate(outer, "AA:BB:CC:DD:EE:FF", "connect", "press the button")
    assert isinstance(translated, PairingError)
    assert str(translated).endswith("press the button")


class _FailingClient:
    """Stands in for a BleakClient whose read fails as BlueZ fails it on link loss."""

    is_connected = True

    def __init__(self, link: BleakLink, *, then_drop: bool) -> None:
        self._link = link
        self._then_drop = then_drop

    async def read_gatt_char(self, uuid: str) -> bytearray:
        if self._then_drop:  # Bleak's callback runs a moment after the failed call returns
            asyncio.get_running_loop().call_later(0.005, self._link._on_disconnected, self)
        msg = "org.bluez.Error.Failed"
        raise BleakDBusError(msg, ["Operation failed"])


@pytest.mark.parametrize(("then_drop", "kind"), [(True, DisconnectedError), (False, ProtocolError)])
async def test_an_operation_failing_just_before_the_drop_callback_reads_as_a_drop(then_drop, kind):
    link = BleakLink("AA:BB:CC:DD:EE:FF", None)
    link._client = _FailingClient(link, then_drop=then_drop)  # type: ignore[assignment]
    with pytest.raises(kind, match=r"^AA:BB:CC:DD:EE:FF: "):
        await link.read(uuids.GLUCOSE_FEATURE)


@pytest.mark.parametrize("scenario", [PROTECTED])
async def test_pairing_an_already_bonded_device_succeeds_at_once(simulator):
    await pair_device(METER, 123456, find_timeout_s=5)
    await pair_device(METER, None, find_timeout_s=5)
    assert simulator.device(METER).paired


@pytest.mark.parametrize("scenario", [PROTECTED])
async def test_pair_on_a_connected_link_uses_the_registered_agent(simulator):
    from drivers.pairing_agent import PairingAgent

    async with PairingAgent(lambda _address: 123456), bleak_link(METER) as link:
        await link.pair()
        assert await link.read(uuids.GLUCOSE_FEATURE)
    assert simulator.device(METER).paired


@pytest.mark.parametrize("scenario", [PROTECTED])
async def test_pair_on_a_connected_link_with_a_wrong_passkey(simulator):
    from drivers.pairing_agent import PairingAgent

    async with PairingAgent(lambda _address: 1), bleak_link(METER) as link:
        with pytest.raises(PairingError, match=r"passkey or PIN was wrong; .*--pin N`$"):
            await link.pair()
