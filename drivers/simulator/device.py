"""A simulated peripheral: its radio state, pairing, faults, and its org.bluez.Device1 object.

No ``from __future__ import annotations`` here: dbus-fast reads the annotations at runtime.
"""

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from dbus_fast import Variant
from dbus_fast.annotations import (
    DBusBool,
    DBusInt16,
    DBusObjectPath,
    DBusSignature,
    DBusStr,
)
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

from drivers.simulator import bluez_errors
from drivers.simulator.gatt import (
    Characteristic,
    CharacteristicInterface,
    Service,
    assign_handles,
    export_gatt,
)

if TYPE_CHECKING:
    from dbus_fast.aio import MessageBus

    from drivers.simulator.profiles.base import Profile
    from drivers.simulator.server import Simulator

_LOGGER = logging.getLogger(__name__)

DEVICE_INTERFACE = "org.bluez.Device1"

DBusStrList = Annotated[list[str], DBusSignature("as")]
DBusManufacturerData = Annotated[dict[int, Variant], DBusSignature("a{qv}")]
DBusServiceData = Annotated[dict[str, Variant], DBusSignature("a{sv}")]


@dataclass
class AttFault:
    """Answer an operation on a characteristic with an ATT error, `times` times (0 = always)."""

    uuid: str
    operation: str  # read | write | notify
    code: int
    times: int = 1


@dataclass
class Faults:
    """Misbehaviour a scenario (or a test, at run time) asks of a device."""

    drop_link_after: int | None = None  # first connection drops after N records
    drop_link_every: int | None = None  # every connection drops after N records
    connect_failures: int = 0  # the next N Connect calls fail
    connect_latency_s: float = 0.0
    att_errors: list[AttFault] = field(default_factory=list)
    notify_interval_s: float = 0.0  # pacing between notifications (connection interval)
    out_of_range: bool = False
    # Health devices hang up an idle link after a while (and then advertise again); this is
    # also what frees a device whose central died without disconnecting.
    idle_disconnect_s: float = 10.0


@dataclass
class Pairing:
    """How the device bonds. `method` is passkey | pin | confirm | just_works."""

    method: str = "passkey"
    passkey: int | None = None


class SimDevice:
    """One simulated peripheral, owned by a `Simulator`."""

    def __init__(
        self,
        simulator: "Simulator",
        *,
        address: str,
        name: str | None,
        profile: "Profile",
        pairing: Pairing | None = None,
        faults: Faults | None = None,
        rssi: int = -60,
        mtu: int = 185,
    ) -> None:
        self.simulator = simulator
        self.address = address.upper()
        self.name = name
        self.profile = profile
        self.pairing = pairing
        self.faults = faults or Faults()
        self.base_rssi = rssi
        self.rssi = rssi
        self.mtu = mtu
        self.path = f"{simulator.adapter_path}/dev_{self.address.replace(':', '_')}"
        self.connected = False
        self.services_resolved = False
        self.paired = False
        self.trusted = False
        self.exported = False
        self.connections = 0  # completed connects, so faults can target "the first one"
        self.last_activity = time.monotonic()
        self.services: list[Service] = profile.services(self)
        assign_handles(self.services)
        self._gatt_objects: list[tuple[str, Any]] = []
        self.iface = Device1(self)

    # ------------------------------------------------------------------ plumbing
    @property
    def bus(self) -> "MessageBus":
        """The simulator's D-Bus connection."""
        return self.simulator.bus

    def current_sender(self) -> str:
        """The unique bus name of the client whose call is being handled."""
        return self.simulator.current_sender()

    @property
    def needs_bonding(self) -> bool:
        """Whether protected attributes are refused until the device is bonded."""
        return self.pairing is not None and self.pairing.method != "just_works"

    def characteristic(self, uuid: str) -> Characteristic:
        """Find a characteristic by UUID (full or 16-bit hex)."""
        want = uuid.lower()
        for service in self.services:
            for char in service.characteristics:
                if char.uuid == want or char.uuid[4:8] == want:
                    return char
        raise KeyError(uuid)

    def advertised(self) -> dict[str, Any]:
        """Device1 properties an advertisement carries."""
        return {
            "RSSI": self.rssi,
            "UUIDs": self.profile.advertised_uuids(),
            "ManufacturerData": {
                k: Variant("ay", v) for k, v in self.profile.manufacturer_data().items()
            },
            "ServiceData": {k: Variant("ay", v) for k, v in self.profile.service_data().items()},
        }

    def readvertise(self) -> None:
        """One more advertisement: RSSI wobbles by a dB or two, as it does over the air."""
        self.rssi = self.base_rssi + random.randint(-2, 2)  # noqa: S311 - not crypto
        self.iface.emit_properties_changed({"RSSI": self.rssi})

    # ------------------------------------------------------------------ GATT gatekeeping
    def touch(self) -> None:
        """Note link activity (GATT requests, notifications): the idle timer restarts."""
        self.last_activity = time.monotonic()

    def idle_for(self, now: float) -> float:
        """Seconds since the last link activity."""
        return now - self.last_activity

    async def gatt_gate(self, char: Characteristic, operation: str) -> None:
        """Refuse a GATT operation the way BlueZ would, or let it through."""
        if not self.connected:
            raise bluez_errors.not_connected()
        self.touch()
        for fault in self.faults.att_errors:
            if fault.operation == operation and char.uuid[4:8] == fault.uuid.lower()[-4:]:
                if fault.times == 1:
                    self.faults.att_errors.remove(fault)
                elif fault.times > 1:
                    fault.times -= 1
                raise bluez_errors.att_error(fault.code)
        if char.protected and self.needs_bonding and not self.paired:
            raise bluez_errors.att_error(bluez_errors.ATT_INSUFFICIENT_AUTHENTICATION)

    # ------------------------------------------------------------------ link
    async def connect(self) -> None:
        """Device1.Connect: establish the link, then resolve services."""
        if self.faults.connect_latency_s:
            await asyncio.sleep(self.faults.connect_latency_s)
        if self.faults.out_of_range:
            await asyncio.sleep(min(self.faults.connect_latency_s or 1.0, 1.0))
            raise bluez_errors.bluez_error("Failed", "Software caused connection abort")
        if self.faults.connect_failures > 0:
            self.faults.connect_failures -= 1
            raise bluez_errors.bluez_error("Failed", "Software caused connection abort")
        if self.connected:
            raise bluez_errors.bluez_error("AlreadyConnected", "Already Connected")
        self.connected = True
        self.connections += 1
        self.touch()
        self.iface.emit_properties_changed({"Connected": True})
        self._gatt_objects = export_gatt(self, self.services)
        for path, iface in self._gatt_objects:
            self.bus.export(path, iface)
        self.services_resolved = True
        self.iface.emit_properties_changed({"ServicesResolved": True})
        self.profile.on_connect(self)

    def drop_link(self, reason: str = "link loss") -> None:
        """End the connection from the device side (link loss, or the device hangs up)."""
        if not self.connected:
            return
        _LOGGER.debug("%s: link down (%s)", self.address, reason)
        self.profile.on_disconnect(self)
        self.connected = False
        self.services_resolved = False
        self.iface.emit_properties_changed({"ServicesResolved": False, "Connected": False})
        for path, iface in reversed(self._gatt_objects):
            if isinstance(iface, CharacteristicInterface):
                iface.reset()
            self.bus.unexport(path, iface)
        self._gatt_objects = []

    def forget_sender(self, sender: str) -> None:
        """A client's D-Bus connection closed: its notify sessions end (as in BlueZ)."""
        for _, iface in self._gatt_objects:
            if isinstance(iface, CharacteristicInterface):
                iface.drop_sender(sender)

    async def pair(self) -> None:
        """Device1.Pair: connect if needed, then bond through the registered agent."""
        if self.paired:
            raise bluez_errors.bluez_error("AlreadyExists", "Already Exists")
        if not self.connected:
            await self.connect()
        if self.pairing is not None and self.pairing.method != "just_works":
            await self.simulator.agents.authenticate(self, self.current_sender())
        self.paired = True
        self.iface.emit_properties_changed({"Paired": True, "Bonded": True})

    def unpair(self) -> None:
        """Forget the bond (Adapter1.RemoveDevice)."""
        self.drop_link("removed")
        self.paired = False
        self.trusted = False


class Device1(ServiceInterface):
    """org.bluez.Device1 for one simulated peripheral."""

    def __init__(self, device: SimDevice) -> None:
        super().__init__(DEVICE_INTERFACE)
        self._d = device

    @dbus_method()
    async def Connect(self) -> None:
        await self._d.connect()

    @dbus_method()
    async def Disconnect(self) -> None:
        self._d.drop_link("disconnect requested")

    @dbus_method()
    async def Pair(self) -> None:
        await self._d.pair()

    @dbus_method()
    def CancelPairing(self) -> None:
        self._d.simulator.agents.cancel(self._d)

    @dbus_property(access=PropertyAccess.READ)
    def Address(self) -> DBusStr:
        return self._d.address

    @dbus_property(access=PropertyAccess.READ)
    def AddressType(self) -> DBusStr:
        return "public"

    @dbus_property(access=PropertyAccess.READ)
    def Name(self) -> DBusStr:
        return self._d.name or ""

    @dbus_property()
    def Alias(self) -> DBusStr:
        # BlueZ's rule, which Bleak relies on: with no name, the alias is the dashed address.
        return self._d.name or self._d.address.replace(":", "-")

    @Alias.setter  # type: ignore[no-redef]
    def Alias(self, value: DBusStr) -> None:
        self._d.name = value

    @dbus_property(access=PropertyAccess.READ)
    def Adapter(self) -> DBusObjectPath:
        return self._d.simulator.adapter_path

    @dbus_property(access=PropertyAccess.READ)
    def Connected(self) -> DBusBool:
        return self._d.connected

    @dbus_property(access=PropertyAccess.READ)
    def ServicesResolved(self) -> DBusBool:
        return self._d.services_resolved

    @dbus_property(access=PropertyAccess.READ)
    def Paired(self) -> DBusBool:
        return self._d.paired

    @dbus_property(access=PropertyAccess.READ)
    def Bonded(self) -> DBusBool:
        return self._d.paired

    @dbus_property()
    def Trusted(self) -> DBusBool:
        return self._d.trusted

    @Trusted.setter  # type: ignore[no-redef]
    def Trusted(self, value: DBusBool) -> None:
        self._d.trusted = value

    @dbus_property(access=PropertyAccess.READ)
    def Blocked(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ)
    def LegacyPairing(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ)
    def RSSI(self) -> DBusInt16:
        return self._d.rssi

    @dbus_property(access=PropertyAccess.READ)
    def UUIDs(self) -> DBusStrList:
        return self._d.profile.advertised_uuids()

    @dbus_property(access=PropertyAccess.READ)
    def ManufacturerData(self) -> DBusManufacturerData:
        return self._d.advertised()["ManufacturerData"]  # type: ignore[no-any-return]

    @dbus_property(access=PropertyAccess.READ)
    def ServiceData(self) -> DBusServiceData:
        return self._d.advertised()["ServiceData"]  # type: ignore[no-any-return]

    @dbus_property(access=PropertyAccess.READ)
    def Modalias(self) -> DBusStr:
        return "bluetooth:v0000p0000d0000"
