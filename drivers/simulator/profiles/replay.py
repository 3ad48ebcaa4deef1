"""A simulated device that plays a capture back (`edge-gateway simulate --replay FILE`).

The GATT database is the recorded one. Each connection plays the next recorded transfer (the
last one again once all were played, so a re-read finds the same records): a read answers
the next recorded read of that characteristic, a write or a subscription moves past the next
recorded one, and the notifications recorded after it go out in order, with their recorded
spacing (capped at 1 s); a recorded device hang-up hangs up.

No ``from __future__ import annotations`` here: dbus-fast reads annotations in this package.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from drivers.capture import Capture, CapturedTransfer
from drivers.errors import ParseError
from drivers.gatt import uuids
from drivers.gatt.current_time import build_current_time, parse_current_time
from drivers.gatt.ieee11073 import DayOfWeek
from drivers.readings import DeviceTime
from drivers.recording import Direction, Frame
from drivers.simulator.gatt import Characteristic, Service
from drivers.simulator.profiles.base import Profile, cccd

if TYPE_CHECKING:
    from drivers.simulator.device import SimDevice

_LOGGER = logging.getLogger(__name__)

MAX_GAP_S = 1.0
_WRITES = (Direction.WRITE, Direction.COMMAND)


class ReplayProfile(Profile):
    """Serves a `Capture` (see the module docstring)."""

    def __init__(self, capture: Capture) -> None:
        # Profile.__init__ wants a scenario spec; a replay has none, so set what it sets.
        self.capture = capture
        self.records_sent = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._hangup = None
        self._stream_task = None
        self._played = 0
        self._frames: tuple[Frame, ...] = ()
        self._i = 0
        self._chars: dict[str, Characteristic] = {}
        self._device: SimDevice | None = None
        self._pumping: asyncio.Task[None] | None = None
        self._transfer_now: CapturedTransfer | None = None

    # ------------------------------------------------------------------ database
    def health_services(self, device: "SimDevice") -> list[Service]:
        """Every recorded service (the common ones included: they were recorded too)."""
        return self.services(device)

    def services(self, device: "SimDevice") -> list[Service]:
        """The recorded GATT database."""
        services = []
        for service_uuid, chars in self.capture.services.items():
            built = []
            for char_uuid, flags in chars.items():
                char = Characteristic(
                    char_uuid,
                    list(flags),
                    on_read=self._reader(char_uuid),
                    on_write=self._writer(char_uuid),
                    on_subscribe=self._subscriber(char_uuid),
                    protected=False,
                    descriptors=[cccd()] if {"notify", "indicate"} & set(flags) else [],
                )
                self._chars[char_uuid] = char
                built.append(char)
            services.append(Service(service_uuid, built))
        return services

    def advertised_uuids(self) -> list[str]:
        """The recorded advertisement's service UUIDs."""
        return [
            uuids.sig_uuid(int(u, 16)) if len(u) == 4 else u
            for u in self.capture.advert.get("service_uuids", [])
        ]

    def manufacturer_data(self) -> dict[int, bytes]:
        """The recorded manufacturer data."""
        raw = self.capture.advert.get("manufacturer_data") or {}
        return {int(k): bytes.fromhex(v) for k, v in raw.items()}

    def service_data(self) -> dict[str, bytes]:
        """The recorded service data."""
        raw = self.capture.advert.get("service_data") or {}
        return {
            (uuids.sig_uuid(int(k, 16)) if len(k) == 4 else k): bytes.fromhex(v)
            for k, v in raw.items()
        }

    # ------------------------------------------------------------------ connections
    def _transfer(self) -> CapturedTransfer | None:
        transfers = self.capture.transfers
        if not transfers:
            return None
        return transfers[min(self._played, len(transfers) - 1)]

    def on_connect(self, device: "SimDevice") -> None:
        """Start playing the next recorded transfer."""
        super().on_connect(device)
        transfer = self._transfer()
        self._frames = transfer.frames if transfer else ()
        self._transfer_now = transfer
        self._i = 0
        self._device = device
        self._played += 1

    def on_disconnect(self, device: "SimDevice") -> None:
        """Stop playing."""
        super().on_disconnect(device)
        self._pumping = None

    # ------------------------------------------------------------------ playing
    def _consume(self, directions: tuple[Direction, ...], uuid: str) -> Frame | None:
        for j in range(self._i, len(self._frames)):
            frame = self._frames[j]
            if frame.direction in directions and frame.characteristic == uuid:
                self._i = j + 1
                self._pump()
                return frame
        return None

    def _reader(self, uuid: str) -> Callable[[], bytes]:
        def read() -> bytes:
            frame = self._consume((Direction.READ,), uuid)
            if frame is None:  # out of order: any recorded value of it
                frame = next(
                    (
                        f
                        for t in self.capture.transfers
                        for f in t.frames
                        if f.direction is Direction.READ and f.characteristic == uuid
                    ),
                    None,
                )
            if frame is None:
                return b""
            return self._clock_now(frame.data) if uuid == uuids.CURRENT_TIME else frame.data

        return read

    def _clock_now(self, recorded: bytes) -> bytes:
        """The recorded Current Time moved on by the time since the recording.

        The gateway compares the device clock with its own: served unchanged, a capture
        replayed days later would show a clock days behind (a skew it never had) and its
        readings would be flagged `clock_corrected`.
        """
        transfer = self._transfer_now
        if transfer is None:
            return recorded
        try:
            current = parse_current_time(recorded)
        except ParseError:
            return recorded
        shown = current.time.wall_clock()
        if shown is None:
            return recorded
        elapsed = datetime.now(UTC) - transfer.started_at
        moved = DeviceTime.from_datetime(shown + elapsed)
        return build_current_time(
            replace(current, time=moved, day_of_week=DayOfWeek((shown + elapsed).isoweekday()))
        )

    def _writer(self, uuid: str) -> Callable[[bytes], None]:
        def write(_value: bytes) -> None:
            self._consume(_WRITES, uuid)

        return write

    def _subscriber(self, uuid: str) -> Callable[[], None]:
        def subscribed() -> None:
            self._consume((Direction.SUBSCRIBE,), uuid)

        return subscribed

    def _pump(self) -> None:
        if self._pumping is None or self._pumping.done():
            self._pumping = asyncio.get_running_loop().create_task(self._deliver())
            self._tasks.add(self._pumping)
            self._pumping.add_done_callback(self._task_done)

    async def _deliver(self) -> None:
        await asyncio.sleep(0)  # after the GATT reply that caused it
        device = self._device
        while device is not None and self._i < len(self._frames):
            frame = self._frames[self._i]
            if frame.direction not in (Direction.NOTIFY, Direction.DROP):
                return
            previous = self._frames[self._i - 1] if self._i else None
            gap = frame.mono_s - previous.mono_s if previous is not None else 0.0
            if gap > 0:
                await asyncio.sleep(min(gap, MAX_GAP_S))
            self._i += 1
            if frame.direction is Direction.DROP:
                device.drop_link("recorded hang-up")
                return
            char = self._chars.get(frame.characteristic)
            if char is not None:
                await char.notify(frame.data)
