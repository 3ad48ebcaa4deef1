"""What every simulated health device shares.

The Profile contract, the device clock, the Device Information, Battery and Current Time
services, and task and pacing plumbing.

No ``from __future__ import annotations`` here: dbus-fast reads annotations in this package.
"""

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from drivers.gatt import uuids
from drivers.gatt.current_time import CurrentTime, parse_current_time
from drivers.gatt.ieee11073 import DayOfWeek
from drivers.readings import DeviceTime
from drivers.simulator import bluez_errors
from drivers.simulator.encoding import encode_current_time
from drivers.simulator.gatt import Characteristic, Descriptor, Service
from drivers.simulator.scenario import (
    BloodPressureDevice,
    GlucoseDevice,
    Resend,
    ScaleDevice,
    hex_bytes,
)

if TYPE_CHECKING:
    from drivers.simulator.device import SimDevice

_LOGGER = logging.getLogger(__name__)

AnySpec = GlucoseDevice | BloodPressureDevice | ScaleDevice

# How long a cuff or scale waits after its last indication before it hangs up.
HANGUP_DELAY_S = 0.2


class DeviceClock:
    """The device's wall clock: true time in the scenario's zone plus a skew, maybe wrong."""

    def __init__(self, zone: str, skew_s: float) -> None:
        self.zone = ZoneInfo(zone)
        self.skew_s = skew_s

    def now(self) -> datetime:
        """The naive wall-clock time the device shows now."""
        true_now = datetime.now(self.zone).replace(tzinfo=None)
        return true_now + timedelta(seconds=self.skew_s)

    def set(self, shown: datetime) -> None:
        """Set the clock so that it shows `shown` now (a Current Time write)."""
        true_now = datetime.now(self.zone).replace(tzinfo=None)
        self.skew_s = (shown - true_now).total_seconds()


_R = TypeVar("_R")


@dataclass(eq=False)
class Stored(Generic[_R]):
    """One record in a cuff's or scale's memory, with its "sent" mark."""

    record: _R
    sent: bool = False  # delivered to some client, ever
    sent_this_session: bool = False  # delivered since the current subscription started


class PushedRecords(Generic[_R]):
    """The memory of a device that pushes its records by indication (cuffs, scales).

    Real devices differ in what a new subscription gets (`Resend`): Omron-style devices keep a
    "sent" mark per record, set when the indication is delivered (BlueZ confirms indications
    itself, so delivered to BlueZ is delivered), and send only unmarked records; Beurer- and
    Medisana-style devices send every stored record on every connection. Either may erase a
    record once delivered. A record whose indication found no subscriber (the client left the
    bus, or the link dropped) stays unmarked.
    """

    def __init__(self, records: list[_R], *, resend: Resend, erase: bool) -> None:
        self.items: list[Stored[_R]] = [Stored(r) for r in records]
        self.resend = resend
        self.erase = erase

    @property
    def records(self) -> list[_R]:
        """Every record still stored, sent or not."""
        return [item.record for item in self.items]

    def new_session(self) -> None:
        """A subscription started (the first notify session after none)."""
        for item in self.items:
            item.sent_this_session = False

    def due(self) -> list[Stored[_R]]:
        """What the current subscription is still owed, in storage order."""
        if self.resend == "all":
            return [item for item in self.items if not item.sent_this_session]
        return [item for item in self.items if not item.sent]

    def delivered(self, item: Stored[_R]) -> None:
        """The record's indication reached a client: mark it, or erase it."""
        item.sent = item.sent_this_session = True
        if self.erase and item in self.items:
            self.items.remove(item)

    def __bool__(self) -> bool:
        """Whether anything is left to send to a new subscription."""
        return bool(self.due())


def cccd() -> Descriptor:
    """A Client Characteristic Configuration descriptor (BlueZ shows it; it manages it)."""
    return Descriptor(uuids.CCCD, b"\x00\x00", ["read", "write"])


class Profile(ABC):
    """A simulated device family: its GATT database and what it does when a client talks."""

    def __init__(self, spec: AnySpec, zone: str) -> None:
        self.spec = spec
        self.clock = DeviceClock(zone, spec.clock_skew_s)
        self.records_sent = 0  # on the current connection
        self._tasks: set[asyncio.Task[Any]] = set()
        self._hangup: asyncio.Task[None] | None = None
        self._stream_task: asyncio.Task[None] | None = None

    @abstractmethod
    def health_services(self, device: "SimDevice") -> list[Service]:
        """The device family's own services."""

    @abstractmethod
    def advertised_uuids(self) -> list[str]:
        """Service UUIDs the device puts in its advertisements."""

    def advertising(self) -> bool:
        """Whether the device advertises now (meters always; cuffs and scales only with data)."""
        return True

    def manufacturer_data(self) -> dict[int, bytes]:
        """Manufacturer-specific advertisement data by company id (scenario's, if any)."""
        data = self.spec.advert_manufacturer_data
        return {int(company, 16): hex_bytes(payload) for company, payload in data.items()}

    def service_data(self) -> dict[str, bytes]:
        """Service data in advertisements by UUID (scenario's, if any)."""
        data = self.spec.advert_service_data
        return {uuids.sig_uuid(int(u, 16)): hex_bytes(v) for u, v in data.items()}

    def services(self, device: "SimDevice") -> list[Service]:
        """The whole GATT database: health services first, then the common ones."""
        return [*self.health_services(device), *self._common_services()]

    def on_connect(self, device: "SimDevice") -> None:
        """A client connected."""
        self.records_sent = 0

    def on_disconnect(self, device: "SimDevice") -> None:
        """The link went down: whatever the device was doing stops."""
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()

    # ------------------------------------------------------------------ helpers for profiles
    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run device behaviour in the background (after the GATT reply went out)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _LOGGER.error("simulated device task failed", exc_info=task.exception())

    async def pace(self, device: "SimDevice") -> None:
        """Wait one connection interval between notifications, if the scenario asks to."""
        interval = device.faults.notify_interval_s
        if interval:
            await asyncio.sleep(interval)

    def count_record(self, device: "SimDevice") -> bool:
        """Count a record sent; True if a link-loss fault fires now."""
        self.records_sent += 1
        faults = device.faults
        first = faults.drop_link_after
        if first is not None and device.connections == 1 and self.records_sent >= first:
            device.drop_link(f"fault: drop_link_after={first}")
            return True
        every = faults.drop_link_every
        if every is not None and self.records_sent >= every:
            device.drop_link(f"fault: drop_link_every={every}")
            return True
        return False

    @property
    def streaming(self) -> bool:
        """Whether a stream of records is in progress."""
        return self._stream_task is not None and not self._stream_task.done()

    def start_stream(self, coro: Coroutine[Any, Any, None]) -> None:
        """Start pushing records for a new subscription; a stream still running stops first.

        On a link a dead client left up, the next client's subscription is a new session:
        BlueZ ended the old one when its owner left the bus.
        """
        if self._stream_task is not None:
            self._stream_task.cancel()
        task = asyncio.get_running_loop().create_task(coro)
        self._stream_task = task
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    async def push_records(
        self,
        device: "SimDevice",
        memory: PushedRecords[_R],
        send: Callable[[_R], Awaitable[bool]],
        sendable: Callable[[_R], bool] = lambda _r: True,
    ) -> bool:
        """Indicate every due record, paced; True if all went out (the caller may hang up).

        `send` returns False when nobody listens any more (the client left the bus, or the
        link dropped): the stream stops there and that record keeps its "unsent" state.
        """
        while True:
            # Looked up afresh each time: consent given mid-stream makes more records due.
            item = next((i for i in memory.due() if sendable(i.record)), None)
            if item is None:
                break
            if not await send(item.record):
                return False
            memory.delivered(item)
            if self.count_record(device):
                return False
            await self.pace(device)
        return True

    def hang_up_later(self, device: "SimDevice") -> None:
        """Disconnect shortly, as cuffs and scales do after their last indication."""

        async def hang_up() -> None:
            await asyncio.sleep(HANGUP_DELAY_S)
            device.drop_link("device finished sending")

        # Not spawned: on_disconnect must not cancel the hang-up it is part of.
        self._hangup = asyncio.get_running_loop().create_task(hang_up())

    @staticmethod
    def device_time(value: datetime | None) -> DeviceTime | None:
        """A scenario time as the device's raw clock fields."""
        return None if value is None else DeviceTime.from_datetime(value)

    # ------------------------------------------------------------------ common services
    def _common_services(self) -> list[Service]:
        spec = self.spec
        info = [
            Characteristic(uuids.MANUFACTURER_NAME, ["read"], spec.manufacturer.encode()),
            Characteristic(uuids.MODEL_NUMBER, ["read"], spec.model.encode()),
            Characteristic(uuids.FIRMWARE_REVISION, ["read"], spec.firmware.encode()),
        ]
        if spec.serial:
            info.append(Characteristic(uuids.SERIAL_NUMBER, ["read"], spec.serial.encode()))
        for char in info:
            char.protected = False
        battery = Characteristic(
            uuids.BATTERY_LEVEL,
            ["read", "notify"],
            bytes([spec.battery]),
            protected=False,
            descriptors=[cccd()],
        )
        time_flags = ["read", "notify"] + (["write"] if spec.clock_writable else [])
        current_time = Characteristic(
            uuids.CURRENT_TIME,
            time_flags,
            on_read=self._read_clock,
            on_write=self._write_clock,
            descriptors=[cccd()],
        )
        return [
            Service(uuids.DEVICE_INFORMATION_SERVICE, info),
            Service(uuids.BATTERY_SERVICE, [battery]),
            Service(uuids.CURRENT_TIME_SERVICE, [current_time]),
        ]

    def _read_clock(self) -> bytes:
        now = self.clock.now()
        return encode_current_time(
            CurrentTime(time=DeviceTime.from_datetime(now), day_of_week=DayOfWeek(now.isoweekday()))
        )

    def _write_clock(self, value: bytes) -> None:
        if not self.spec.clock_writable:
            raise bluez_errors.att_error(bluez_errors.ATT_WRITE_NOT_PERMITTED)
        try:
            written = parse_current_time(value)
        except Exception as exc:
            raise bluez_errors.att_error(0x80) from exc
        shown = written.time.wall_clock()
        if shown is None:
            raise bluez_errors.att_error(0x80)
        self.clock.set(shown)
