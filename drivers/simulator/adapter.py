"""org.bluez.Adapter1 and org.bluez.AdvertisementMonitorManager1 for the simulated hci0.

No ``from __future__ import annotations`` here: dbus-fast reads the annotations at runtime.
"""

from typing import TYPE_CHECKING, Annotated

from dbus_fast.annotations import (
    DBusBool,
    DBusDict,
    DBusObjectPath,
    DBusSignature,
    DBusStr,
    DBusUInt32,
)
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

from drivers.simulator import bluez_errors

if TYPE_CHECKING:
    from drivers.simulator.server import Simulator

DBusStrList = Annotated[list[str], DBusSignature("as")]

# Filter keys BlueZ accepts in SetDiscoveryFilter; anything else is InvalidArguments.
_FILTER_KEYS = {
    "UUIDs",
    "RSSI",
    "Pathloss",
    "Transport",
    "DuplicateData",
    "Discoverable",
    "Pattern",
}


class Adapter1(ServiceInterface):
    """org.bluez.Adapter1."""

    def __init__(self, simulator: "Simulator") -> None:
        super().__init__("org.bluez.Adapter1")
        self._sim = simulator

    @dbus_method()
    def StartDiscovery(self) -> None:
        self._sim.discovery.start(self._sim.current_sender())

    @dbus_method()
    def StopDiscovery(self) -> None:
        self._sim.discovery.stop(self._sim.current_sender())

    @dbus_method()
    def SetDiscoveryFilter(self, properties: DBusDict) -> None:
        unknown = set(properties) - _FILTER_KEYS
        if unknown:
            raise bluez_errors.bluez_error("InvalidArguments", "Invalid arguments in method call")
        self._sim.discovery.set_filter(self._sim.current_sender(), properties)

    @dbus_method()
    def GetDiscoveryFilters(self) -> DBusStrList:
        return sorted(_FILTER_KEYS)

    @dbus_method()
    def RemoveDevice(self, device: DBusObjectPath) -> None:
        self._sim.remove_device(device)

    @dbus_property(access=PropertyAccess.READ)
    def Address(self) -> DBusStr:
        return self._sim.adapter_address

    @dbus_property(access=PropertyAccess.READ)
    def AddressType(self) -> DBusStr:
        return "public"

    @dbus_property(access=PropertyAccess.READ)
    def Name(self) -> DBusStr:
        return "edge-gateway-sim"

    @dbus_property(access=PropertyAccess.READ)
    def Alias(self) -> DBusStr:
        return "edge-gateway-sim"

    @dbus_property(access=PropertyAccess.READ)
    def Class(self) -> DBusUInt32:
        return 0

    @dbus_property(access=PropertyAccess.READ)
    def Powered(self) -> DBusBool:
        return self._sim.powered

    @dbus_property(access=PropertyAccess.READ)
    def Discoverable(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Pairable(self) -> DBusBool:
        return True

    @dbus_property(access=PropertyAccess.READ)
    def Discovering(self) -> DBusBool:
        return self._sim.discovery.active

    @dbus_property(access=PropertyAccess.READ)
    def UUIDs(self) -> DBusStrList:
        return []

    @dbus_property(access=PropertyAccess.READ)
    def Roles(self) -> DBusStrList:
        return ["central", "peripheral"]

    @dbus_property(access=PropertyAccess.READ)
    def Modalias(self) -> DBusStr:
        return "usb:v1D6Bp0246d054F"


class AdvertisementMonitorManager1(ServiceInterface):
    """org.bluez.AdvertisementMonitorManager1: passive scanning registers monitors here."""

    def __init__(self, simulator: "Simulator") -> None:
        super().__init__("org.bluez.AdvertisementMonitorManager1")
        self._sim = simulator

    @dbus_method()
    def RegisterMonitor(self, application: DBusObjectPath) -> None:
        self._sim.discovery.add_monitor(self._sim.current_sender(), application)

    @dbus_method()
    def UnregisterMonitor(self, application: DBusObjectPath) -> None:
        self._sim.discovery.remove_monitor(self._sim.current_sender(), application)

    @dbus_property(access=PropertyAccess.READ)
    def SupportedMonitorTypes(self) -> DBusStrList:
        return ["or_patterns"]

    @dbus_property(access=PropertyAccess.READ)
    def SupportedFeatures(self) -> DBusStrList:
        return []
