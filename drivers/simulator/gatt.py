"""A device's GATT database, and its BlueZ D-Bus objects (GattService1, …Characteristic1, …).

Profiles build `Service`/`Characteristic` models with plain Python callbacks; the simulated
device exports them on connect. Paths follow BlueZ exactly, because Bleak parses them:
``<device>/serviceXXXX/charYYYY/descZZZZ`` with handles as 4 hex digits.

No ``from __future__ import annotations`` here: dbus-fast reads the annotations at runtime.
"""

import contextlib
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from dbus_fast import Message, Variant
from dbus_fast.annotations import (
    DBusBool,
    DBusBytes,
    DBusDict,
    DBusObjectPath,
    DBusSignature,
    DBusStr,
    DBusUInt16,
)
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

from drivers.simulator import bluez_errors

if TYPE_CHECKING:
    from drivers.simulator.device import SimDevice

GATT_SERVICE = "org.bluez.GattService1"
GATT_CHARACTERISTIC = "org.bluez.GattCharacteristic1"
GATT_DESCRIPTOR = "org.bluez.GattDescriptor1"

DBusStrList = Annotated[list[str], DBusSignature("as")]
DBusPathList = Annotated[list[str], DBusSignature("ao")]
DBusFdAndMtu = Annotated[list[int], DBusSignature("hq")]

ReadHandler = Callable[[], bytes]
WriteHandler = Callable[[bytes], Awaitable[None] | None]
SubscribeHandler = Callable[[], None]


@dataclass
class Descriptor:
    """A GATT descriptor (read-only value)."""

    uuid: str
    value: bytes = b""
    flags: list[str] = field(default_factory=lambda: ["read"])
    handle: int = 0


@dataclass
class Characteristic:
    """A GATT characteristic with the behaviour a profile gives it.

    `protected` characteristics refuse reads, writes and subscriptions until the device is
    bonded (when the device demands bonding at all).
    """

    uuid: str
    flags: list[str]
    value: bytes = b""
    on_read: ReadHandler | None = None
    on_write: WriteHandler | None = None
    on_subscribe: SubscribeHandler | None = None
    on_unsubscribe: SubscribeHandler | None = None
    protected: bool = True
    descriptors: list[Descriptor] = field(default_factory=list)
    handle: int = 0
    # Filled in at export time:
    iface: "CharacteristicInterface | None" = None

    @property
    def subscribed(self) -> bool:
        """Whether any client has notifications or indications enabled."""
        return self.iface is not None and self.iface.has_subscribers

    async def notify(self, value: bytes) -> bool:
        """Send a notification/indication; False if nobody listens or the link is down."""
        if self.iface is None:
            return False
        return await self.iface.send_value(value)


@dataclass
class Service:
    """A primary GATT service."""

    uuid: str
    characteristics: list[Characteristic]
    handle: int = 0


def assign_handles(services: list[Service]) -> None:
    """Give every attribute a handle the way a GATT server lays them out."""
    handle = 0x000A
    for service in services:
        service.handle = handle
        handle += 1
        for char in service.characteristics:
            char.handle = handle
            handle += 2  # declaration + value
            for desc in char.descriptors:
                desc.handle = handle
                handle += 1
        handle = (handle + 0x0F) & ~0x0F  # services start on round handles, as BlueZ shows


class ServiceInterface1(ServiceInterface):
    """org.bluez.GattService1."""

    def __init__(self, service: Service, device_path: str) -> None:
        super().__init__(GATT_SERVICE)
        self._service = service
        self._device_path = device_path

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return self._service.uuid

    @dbus_property(access=PropertyAccess.READ)
    def Device(self) -> DBusObjectPath:
        return self._device_path

    @dbus_property(access=PropertyAccess.READ)
    def Primary(self) -> DBusBool:
        return True

    @dbus_property(access=PropertyAccess.READ)
    def Includes(self) -> DBusPathList:
        return []


class CharacteristicInterface(ServiceInterface):
    """org.bluez.GattCharacteristic1, with per-sender StartNotify and AcquireNotify."""

    def __init__(self, char: Characteristic, service_path: str, device: "SimDevice") -> None:
        super().__init__(GATT_CHARACTERISTIC)
        self._char = char
        self._service_path = service_path
        self._device = device
        self.path = f"{service_path}/char{char.handle:04x}"
        self._notify_senders: set[str] = set()
        self._acquired: socket.socket | None = None
        char.iface = self

    @property
    def has_subscribers(self) -> bool:
        """Whether StartNotify or AcquireNotify is active."""
        return bool(self._notify_senders) or self._acquired is not None

    # ------------------------------------------------------------------ properties
    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return self._char.uuid

    @dbus_property(access=PropertyAccess.READ)
    def Service(self) -> DBusObjectPath:
        return self._service_path

    @dbus_property(access=PropertyAccess.READ)
    def Value(self) -> DBusBytes:
        return self._char.value

    @dbus_property(access=PropertyAccess.READ)
    def Notifying(self) -> DBusBool:
        return self.has_subscribers

    @dbus_property(access=PropertyAccess.READ)
    def NotifyAcquired(self) -> DBusBool:
        return self._acquired is not None

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> DBusStrList:
        return self._char.flags

    @dbus_property(access=PropertyAccess.READ)
    def MTU(self) -> DBusUInt16:
        return self._device.mtu

    # ------------------------------------------------------------------ methods
    @dbus_method()
    async def ReadValue(self, options: DBusDict) -> DBusBytes:
        await self._device.gatt_gate(self._char, "read")
        if "read" not in self._char.flags:
            raise bluez_errors.att_error(bluez_errors.ATT_READ_NOT_PERMITTED)
        value = self._char.on_read() if self._char.on_read else self._char.value
        offset = int(options["offset"].value) if "offset" in options else 0
        if offset > len(value):
            raise bluez_errors.att_error(bluez_errors.ATT_INVALID_OFFSET)
        return value[offset:]

    @dbus_method()
    async def WriteValue(self, value: DBusBytes, options: DBusDict) -> None:
        await self._device.gatt_gate(self._char, "write")
        kind = options["type"].value if "type" in options else "request"
        allowed = {"request": "write", "command": "write-without-response"}.get(kind, "write")
        if allowed not in self._char.flags and "write" not in self._char.flags:
            raise bluez_errors.att_error(bluez_errors.ATT_WRITE_NOT_PERMITTED)
        if self._char.on_write is not None:
            result = self._char.on_write(bytes(value))
            if result is not None:
                await result
        else:
            self._char.value = bytes(value)

    @dbus_method()
    async def StartNotify(self) -> None:
        if not {"notify", "indicate"} & set(self._char.flags):
            raise bluez_errors.bluez_error("NotSupported", "Operation is not supported")
        await self._device.gatt_gate(self._char, "notify")
        sender = self._device.current_sender()
        if self._acquired is not None:
            raise bluez_errors.bluez_error("NotPermitted", "Notify acquired")
        if sender in self._notify_senders:
            return
        first = not self.has_subscribers
        self._notify_senders.add(sender)
        if first:
            self.emit_properties_changed({"Notifying": True})
            self._subscribed()

    @dbus_method()
    def StopNotify(self) -> None:
        sender = self._device.current_sender()
        if sender not in self._notify_senders:
            raise bluez_errors.bluez_error("Failed", "No notify session started")
        self.drop_sender(sender)

    @dbus_method()
    async def AcquireNotify(self, options: DBusDict) -> DBusFdAndMtu:
        if not {"notify", "indicate"} & set(self._char.flags):
            raise bluez_errors.bluez_error("NotSupported", "Operation is not supported")
        await self._device.gatt_gate(self._char, "notify")
        if self.has_subscribers:
            raise bluez_errors.bluez_error("InProgress", "Notify already started")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        self._acquired = ours
        self.emit_properties_changed({"NotifyAcquired": True, "Notifying": True})
        self._subscribed()
        fd = os.dup(theirs.fileno())
        theirs.close()
        return [fd, self._device.mtu]

    # ------------------------------------------------------------------ simulator side
    def _subscribed(self) -> None:
        if self._char.on_subscribe is not None:
            self._char.on_subscribe()

    def drop_sender(self, sender: str) -> None:
        """Forget a client's notify session (StopNotify, or its D-Bus connection closed)."""
        if sender not in self._notify_senders:
            return
        self._notify_senders.discard(sender)
        if not self.has_subscribers:
            self.emit_properties_changed({"Notifying": False})
            if self._char.on_unsubscribe is not None:
                self._char.on_unsubscribe()

    def reset(self) -> None:
        """Drop every subscription (link loss or disconnect); the CCCD is forgotten."""
        self._notify_senders.clear()
        if self._acquired is not None:
            self._acquired.close()
            self._acquired = None
        self._char.iface = None

    async def send_value(self, value: bytes) -> bool:
        """Deliver a notification to whoever subscribed; False if nobody did."""
        self._char.value = value
        self._device.touch()
        if self._acquired is not None:
            try:
                self._acquired.send(value)
            except OSError:
                # The client closed its end: that is how AcquireNotify sessions stop.
                with contextlib.suppress(OSError):
                    self._acquired.close()
                self._acquired = None
                self.emit_properties_changed({"NotifyAcquired": False, "Notifying": False})
                return False
            return True
        if not self._notify_senders:
            return False
        bus = self._device.bus
        message = Message.new_signal(
            self.path,
            "org.freedesktop.DBus.Properties",
            "PropertiesChanged",
            "sa{sv}as",
            [GATT_CHARACTERISTIC, {"Value": Variant("ay", value)}, []],
        )
        # Awaiting the send is the backpressure that keeps long RACP bursts intact.
        await bus.send(message)
        return True


class DescriptorInterface(ServiceInterface):
    """org.bluez.GattDescriptor1."""

    def __init__(self, desc: Descriptor, char_path: str, device: "SimDevice") -> None:
        super().__init__(GATT_DESCRIPTOR)
        self._desc = desc
        self._char_path = char_path
        self._device = device
        self.path = f"{char_path}/desc{desc.handle:04x}"

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return self._desc.uuid

    @dbus_property(access=PropertyAccess.READ)
    def Characteristic(self) -> DBusObjectPath:
        return self._char_path

    @dbus_property(access=PropertyAccess.READ)
    def Value(self) -> DBusBytes:
        return self._desc.value

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> DBusStrList:
        return self._desc.flags

    @dbus_method()
    async def ReadValue(self, options: DBusDict) -> DBusBytes:
        if not self._device.connected:
            raise bluez_errors.not_connected()
        return self._desc.value

    @dbus_method()
    async def WriteValue(self, value: DBusBytes, options: DBusDict) -> None:
        if not self._device.connected:
            raise bluez_errors.not_connected()
        self._desc.value = bytes(value)


def export_gatt(device: "SimDevice", services: list[Service]) -> list[tuple[str, Any]]:
    """Build the D-Bus objects for a device's GATT database.

    Returns:
        (path, interface) pairs in export order: services, then their characteristics, then
        their descriptors.
    """
    objects: list[tuple[str, Any]] = []
    for service in services:
        service_path = f"{device.path}/service{service.handle:04x}"
        objects.append((service_path, ServiceInterface1(service, device.path)))
        for char in service.characteristics:
            char_iface = CharacteristicInterface(char, service_path, device)
            objects.append((char_iface.path, char_iface))
            for desc in char.descriptors:
                desc_iface = DescriptorInterface(desc, char_iface.path, device)
                objects.append((desc_iface.path, desc_iface))
    return objects
