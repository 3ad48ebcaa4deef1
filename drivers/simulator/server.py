"""The simulated BlueZ: owns ``org.bluez`` on a bus and plays the scenario's devices.

Unmodified Bleak talks to it exactly as to bluetoothd. One `Simulator` per Bleak event loop:
Bleak keys its BlueZ manager by loop and has no way to notice a restarted ``org.bluez``.

No ``from __future__ import annotations`` here: dbus-fast reads the annotations at runtime.
"""

import asyncio
import contextlib
import contextvars
import logging
import time
from typing import Any

from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus

from drivers.simulator import bluez_errors, dbus_patch
from drivers.simulator.adapter import Adapter1, AdvertisementMonitorManager1
from drivers.simulator.agents import AgentManager1, Agents
from drivers.simulator.device import SimDevice

_LOGGER = logging.getLogger(__name__)

_SENDER: contextvars.ContextVar[str] = contextvars.ContextVar("sim_sender", default="")

# Real devices advertise every 20 ms - 1 s; Bleak's scan-start race drops an advert that lands
# before its callback is registered, so re-advertising often keeps scans short (tests use 20 ms).
DEFAULT_ADVERTISE_INTERVAL_S = 0.1
# bluetoothd's TemporaryTimeout: unpaired devices vanish this long after discovery stops.
DEFAULT_TEMPORARY_TIMEOUT_S = 30.0


class Discovery:
    """Discovery sessions per client (as BlueZ keeps them) and passive-scan monitors."""

    def __init__(self, simulator: "Simulator") -> None:
        self._sim = simulator
        self._sessions: dict[str, dict[str, Any]] = {}
        self._filters: dict[str, dict[str, Any]] = {}
        self._monitors: set[tuple[str, str]] = set()
        self.stopped_at = time.monotonic()

    @property
    def active(self) -> bool:
        """Whether some client runs an active discovery session."""
        return bool(self._sessions)

    @property
    def scanning(self) -> bool:
        """Whether devices should be reported at all (active or passive)."""
        return bool(self._sessions or self._monitors)

    def start(self, sender: str) -> None:
        """Adapter1.StartDiscovery."""
        if sender in self._sessions:
            raise bluez_errors.bluez_error("InProgress", "Operation already in progress")
        was_active = self.active
        self._sessions[sender] = self._filters.get(sender, {})
        if not was_active:
            self._sim.adapter.emit_properties_changed({"Discovering": True})
            self._sim.wake_advertiser()

    def stop(self, sender: str) -> None:
        """Adapter1.StopDiscovery."""
        if sender not in self._sessions:
            raise bluez_errors.bluez_error("Failed", "No discovery started")
        self._end(sender)

    def _end(self, sender: str) -> None:
        del self._sessions[sender]
        if not self.active:
            self.stopped_at = time.monotonic()
            self._sim.adapter.emit_properties_changed({"Discovering": False})

    def set_filter(self, sender: str, properties: dict[str, Any]) -> None:
        """Adapter1.SetDiscoveryFilter (an empty dict clears it)."""
        self._filters[sender] = {k: v.value for k, v in properties.items()}
        if sender in self._sessions:
            self._sessions[sender] = self._filters[sender]

    def add_monitor(self, sender: str, path: str) -> None:
        """AdvertisementMonitorManager1.RegisterMonitor."""
        self._monitors.add((sender, path))
        self._sim.wake_advertiser()

    def remove_monitor(self, sender: str, path: str) -> None:
        """AdvertisementMonitorManager1.UnregisterMonitor."""
        if (sender, path) not in self._monitors:
            raise bluez_errors.bluez_error("DoesNotExist", "Does Not Exist")
        self._monitors.discard((sender, path))

    def forget_sender(self, sender: str) -> None:
        """A client left the bus: its sessions, filter and monitors end with it."""
        if sender in self._sessions:
            self._end(sender)
        self._filters.pop(sender, None)
        self._monitors = {m for m in self._monitors if m[0] != sender}

    def wants(self, device: SimDevice) -> bool:
        """Whether any running scan would report this device (UUID filters)."""
        if self._monitors:
            return True
        advertised = {u.lower() for u in device.profile.advertised_uuids()}
        for session_filter in self._sessions.values():
            uuids = {str(u).lower() for u in session_filter.get("UUIDs", [])}
            if not uuids or uuids & advertised:
                return True
        return False


class Simulator:
    """A simulated BlueZ with one adapter (hci0) and the given devices.

    Args:
        bus_address: The private bus to own ``org.bluez`` on (never the host's system bus).
        advertise_interval_s: How often in-range devices re-advertise while scanning.
        temporary_timeout_s: How long unpaired devices stay after discovery stops.
    """

    def __init__(
        self,
        bus_address: str,
        *,
        advertise_interval_s: float = DEFAULT_ADVERTISE_INTERVAL_S,
        temporary_timeout_s: float = DEFAULT_TEMPORARY_TIMEOUT_S,
    ) -> None:
        self.bus_address = bus_address
        self.advertise_interval_s = advertise_interval_s
        self.temporary_timeout_s = temporary_timeout_s
        self.adapter_path = "/org/bluez/hci0"
        self.adapter_address = "00:1A:7D:DA:71:13"
        self.powered = True
        self.devices: dict[str, SimDevice] = {}
        self.discovery = Discovery(self)
        self.agents = Agents(self)
        self.adapter = Adapter1(self)
        self._bus: MessageBus | None = None
        self._advertiser: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @property
    def bus(self) -> MessageBus:
        """The simulator's own bus connection."""
        if self._bus is None:
            msg = "simulator: not started; call `await simulator.start()` first"
            raise RuntimeError(msg)
        return self._bus

    def current_sender(self) -> str:
        """Unique bus name of the client whose method call is being handled."""
        return _SENDER.get()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Connect, take ``org.bluez`` and begin advertising."""
        dbus_patch.apply()
        bus = MessageBus(bus_address=self.bus_address, bus_type=BusType.SYSTEM)
        bus._negotiate_unix_fd = True
        self._bus = await bus.connect()
        self._bus.add_message_handler(self._on_message)
        await self._bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="AddMatch",
                signature="s",
                body=["type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged'"],
            )
        )
        self._bus.export("/org/bluez", AgentManager1(self))
        self._bus.export(self.adapter_path, self.adapter)
        self._bus.export(self.adapter_path, AdvertisementMonitorManager1(self))
        await self._bus.request_name("org.bluez")
        self._advertiser = asyncio.create_task(self._advertise_forever())

    async def stop(self) -> None:
        """Drop every link and leave the bus."""
        if self._advertiser is not None:
            self._advertiser.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._advertiser
            self._advertiser = None
        for device in self.devices.values():
            device.profile.on_disconnect(device)
        if self._bus is not None:
            self._bus.disconnect()
            with contextlib.suppress(Exception):
                await self._bus.wait_for_disconnect()  # type: ignore[no-untyped-call]
            self._bus = None

    def _on_message(self, msg: Message) -> bool:
        if msg.message_type == MessageType.METHOD_CALL:
            _SENDER.set(msg.sender or "")
        elif (
            msg.message_type == MessageType.SIGNAL
            and msg.member == "NameOwnerChanged"
            and msg.body[0].startswith(":")
            and not msg.body[2]
        ):
            self._forget_sender(msg.body[0])
        return False  # never "handled": dbus-fast dispatches to the exported objects

    def _forget_sender(self, sender: str) -> None:
        self.discovery.forget_sender(sender)
        self.agents.forget_sender(sender)
        for device in self.devices.values():
            device.forget_sender(sender)

    # ------------------------------------------------------------------ devices
    def add(self, device: SimDevice) -> SimDevice:
        """Add a device; it is exported once a scan hears it (or now, if already bonded)."""
        self.devices[device.address] = device
        if device.paired:
            self._export(device)
        self.wake_advertiser()
        return device

    def device(self, address: str) -> SimDevice:
        """The simulated device with this address."""
        return self.devices[address.upper()]

    def remove_device(self, path: str) -> None:
        """Adapter1.RemoveDevice: unpair and forget until it is heard again."""
        for device in self.devices.values():
            if device.path == path and device.exported:
                device.unpair()
                self._unexport(device)
                return
        raise bluez_errors.does_not_exist()

    def set_in_range(self, address: str, in_range: bool) -> None:
        """Move a device out of (or back into) radio range; out of range drops its link."""
        device = self.device(address)
        device.faults.out_of_range = not in_range
        if not in_range:
            device.drop_link("out of range")
        self.wake_advertiser()

    def _export(self, device: SimDevice) -> None:
        if not device.exported:
            self.bus.export(device.path, device.iface)
            device.exported = True

    def _unexport(self, device: SimDevice) -> None:
        if device.exported:
            self.bus.unexport(device.path, device.iface)
            device.exported = False

    # ------------------------------------------------------------------ advertising
    def wake_advertiser(self) -> None:
        """Advertise now rather than at the next interval."""
        self._wake.set()

    async def _advertise_forever(self) -> None:
        while True:
            self._advertise_once()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.advertise_interval_s)

    def _advertise_once(self) -> None:
        if not self.powered:
            return
        now = time.monotonic()
        for device in self.devices.values():
            limit = device.faults.idle_disconnect_s
            if device.connected and limit and device.idle_for(now) > limit:
                device.drop_link(f"idle for {limit:g} s")
        if self.discovery.scanning:
            for device in self.devices.values():
                if device.faults.out_of_range or device.connected:
                    continue  # connected peripherals stop advertising, as most health devices do
                if not device.profile.advertising():
                    continue
                if not self.discovery.wants(device):
                    continue
                if device.exported:
                    device.readvertise()
                else:
                    self._export(device)
            return
        idle = time.monotonic() - self.discovery.stopped_at
        if idle < self.temporary_timeout_s:
            return
        for device in self.devices.values():
            if device.exported and not device.paired and not device.connected:
                self._unexport(device)
