"""Pairing for the API and the kiosk page: bond through the gateway's BlueZ agent."""

import logging
from typing import Protocol, runtime_checkable

from dbus_fast import BusType, DBusError, Message, MessageType
from dbus_fast.aio import MessageBus

from drivers.bleak_link import BleakRadio, pair_device
from drivers.errors import DeviceNotFoundError, LinkError, PairingError
from gateway.services import PairingResult
from gateway.store import Database, StoreError, aio
from gateway.store import devices as device_store
from gateway.store.devices import BondState

BLUEZ = "org.bluez"

_LOGGER = logging.getLogger(__name__)


class BlePairing:
    """`PairingControl` over the real (or simulated) BlueZ."""

    def __init__(self, *, adapter: str | None = None, radio: BleakRadio | None = None) -> None:
        """Pair on `adapter`; with the collector's `radio`, use the device its scan found."""
        self._adapter = adapter
        self._radio = radio

    async def pair(self, address: str, passkey: int | None) -> PairingResult:
        """Bond with `address`; errors become a one-line message for the person."""
        device = self._radio.device(address) if self._radio is not None else None
        try:
            await pair_device(address, passkey, adapter=self._adapter, device=device)
        except PairingError as exc:
            return PairingResult(paired=False, message=str(exc))
        except DeviceNotFoundError as exc:
            return PairingResult(paired=False, message=str(exc))
        except LinkError as exc:
            _LOGGER.warning("%s: pairing failed: %s", address, exc)
            return PairingResult(paired=False, message=str(exc))
        return PairingResult(paired=True, message=f"{address}: paired")

    async def remove_bond(self, address: str) -> None:
        """Forgetting is local: BlueZ drops the unused bond when the device re-pairs."""
        _LOGGER.info("%s: forgotten by the gateway", address)

    async def bonded(self, address: str) -> bool | None:
        """Whether BlueZ holds a bond with `address` (Device1.Paired), None if unknown.

        A device may have been paired by `edge-gateway pair` in another process or by
        `bluetoothctl`: BlueZ, not the gateway's database, is the authority on bonds.
        """
        path = f"/org/bluez/{self._adapter or 'hci0'}/dev_{address.upper().replace(':', '_')}"
        try:
            bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        except (OSError, DBusError) as exc:
            _LOGGER.debug("%s: bond state unknown (%s)", address, exc)
            return None
        try:
            reply = await bus.call(
                Message(
                    destination=BLUEZ,
                    path=path,
                    interface="org.freedesktop.DBus.Properties",
                    member="Get",
                    signature="ss",
                    body=["org.bluez.Device1", "Paired"],
                )
            )
        finally:
            bus.disconnect()
        if reply is None or reply.message_type is not MessageType.METHOD_RETURN:
            return None
        return bool(reply.body[0].value)


@runtime_checkable
class BondSource(Protocol):
    """Something that knows whether BlueZ holds a bond (`BlePairing` does)."""

    async def bonded(self, address: str) -> bool | None:
        """True/False from BlueZ, None when it cannot tell."""
        ...


async def refresh_bond_state(db: Database, source: BondSource, address: str) -> None:
    """Store BlueZ's bond state for `address` (after a read: the bond may be from elsewhere)."""
    bonded = await source.bonded(address)
    if bonded is None:
        return
    state = BondState.BONDED if bonded else BondState.NONE
    try:
        known = await aio.call(device_store.get_device, db, address)
        if known is not None and known.bond_state is not state:
            await aio.call(device_store.set_bond_state, db, address, state)
    except StoreError as exc:
        _LOGGER.warning("%s: bond state not stored: %s", address, exc)
