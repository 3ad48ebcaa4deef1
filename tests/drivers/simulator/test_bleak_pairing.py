"""Bonding with a passkey through a registered agent, as BlueZ does it."""

import pytest
from bleak import BleakClient
from bleak.exc import BleakDBusError

from drivers.gatt import uuids
from drivers.pairing_agent import PairingAgent
from drivers.simulator.server import Simulator
from tests.drivers.simulator.scenarios import METER, meter
from tests.drivers.simulator.test_bleak_glucose import read_records

PROTECTED = meter(5, extra="passkey = 123456")


@pytest.mark.parametrize("scenario", [PROTECTED])
async def test_protected_meter_refuses_unbonded_reads(simulator: Simulator):
    async with BleakClient(METER, timeout=10) as client:
        with pytest.raises(BleakDBusError) as caught:
            await client.read_gatt_char(uuids.GLUCOSE_FEATURE)
    assert caught.value.dbus_error == "org.bluez.Error.NotPermitted"
    assert "Not paired" in str(caught.value)


@pytest.mark.parametrize("scenario", [PROTECTED])
async def test_bonds_with_the_right_passkey_then_reads(simulator: Simulator):
    asked: list[str] = []

    def passkey_for(address: str) -> int:
        asked.append(address)
        return 123456

    async with PairingAgent(passkey_for), BleakClient(METER, timeout=10, pair=True) as client:
        sequences, _ = await read_records(client, bytes([1, 1]))
    assert asked == [METER]
    assert sequences == [1, 2, 3, 4, 5]
    assert simulator.device(METER).paired


@pytest.mark.parametrize("scenario", [PROTECTED])
async def test_wrong_passkey_fails_with_authentication_failed(simulator: Simulator):
    async with PairingAgent(lambda _: 111111):
        client = BleakClient(METER, timeout=10, pair=True)
        with pytest.raises(BleakDBusError) as caught:
            await client.connect()
    assert caught.value.dbus_error == "org.bluez.Error.AuthenticationFailed"
    assert not simulator.device(METER).paired


@pytest.mark.parametrize("scenario", [PROTECTED])
async def test_pairing_without_an_agent_fails(simulator: Simulator):
    client = BleakClient(METER, timeout=10, pair=True)
    with pytest.raises(BleakDBusError) as caught:
        await client.connect()
    assert caught.value.dbus_error == "org.bluez.Error.AuthenticationFailed"


@pytest.mark.parametrize("scenario", [PROTECTED])
async def test_agent_without_a_passkey_rejects(simulator: Simulator):
    async with PairingAgent(lambda _: None):
        client = BleakClient(METER, timeout=10, pair=True)
        with pytest.raises(BleakDBusError) as caught:
            await client.connect()
    assert caught.value.dbus_error == "org.bluez.Error.AuthenticationRejected"


@pytest.mark.parametrize("scenario", [meter(2, extra='passkey = 4321\npairing = "pin"')])
async def test_pin_pairing(simulator: Simulator):
    async with PairingAgent(lambda _: 4321), BleakClient(METER, timeout=10, pair=True):
        assert simulator.device(METER).paired


@pytest.mark.parametrize("scenario", [PROTECTED])
async def test_unpair_removes_the_bond(simulator: Simulator):
    async with PairingAgent(lambda _: 123456):
        client = BleakClient(METER, timeout=10, pair=True)
        await client.connect()
        await client.unpair()
        await client.disconnect()  # unpair dropped the link; this closes Bleak's bus connection
    assert not simulator.device(METER).paired
    assert not simulator.device(METER).exported
