"""Playing a recorded conversation back: a `GattLink` whose device is a recording.

`PlaybackLink` serves the frames a `drivers.recording.RecordingLink` stored, so today's
driver can run offline over yesterday's bytes (`edge-gateway reparse`). The driver's calls
are matched to the recording in order: a read returns the value recorded for the next read of
that characteristic, a write or subscription consumes the next recorded one, and the
notifications recorded after it are delivered, in order, once it returns, as BlueZ would.
A recorded device hang-up drops the link at that point; the end of the recording does too,
once the driver has nothing left to ask (so a driver waiting for more never hangs).

The link also keeps the recording's clock: `clock()` is the receive time of the last frame
played, which a driver gets as `CollectContext.clock`, so receive times, clock skew and the
ids of records without a device time come out as they did when recorded.
"""

import asyncio
from collections.abc import Sequence
from datetime import datetime

from drivers.errors import DisconnectedError, ProtocolError
from drivers.link import NotifyCallback
from drivers.recording import Direction, Frame, GattShape

# How many event-loop turns the end of a recording waits before it drops the link: enough
# for a driver to react to the last value (parse, sink, ask again), never a wall-clock wait.
_SETTLE_TURNS = 50

_WRITES = (Direction.WRITE, Direction.COMMAND)


class PlaybackLink:
    """A `GattLink` that plays one recorded connection back (see the module docstring).

    Attributes:
        unmatched: Driver calls the recording had no frame for, as ``(direction, uuid)``:
            the driver now talks differently to the device (worth a look when reparsing).
    """

    def __init__(
        self,
        address: str,
        name: str | None,
        frames: Sequence[Frame],
        *,
        shape: GattShape | None = None,
        started_at: datetime,
    ) -> None:
        """Play `frames` (in `seq` order) as the device at `address`.

        The clock starts at `started_at` (aware UTC).
        """
        self._address = address.upper()
        self._name = name
        self._frames = sorted(frames, key=lambda f: f.seq)
        self._shape = shape or GattShape()
        self._now = started_at
        self._i = 0
        self._callbacks: dict[str, NotifyCallback] = {}
        self._disconnected = asyncio.Event()
        self._pump_task: asyncio.Task[None] | None = None
        self.unmatched: list[tuple[Direction, str]] = []

    # ------------------------------------------------------------------ the clock
    def clock(self) -> datetime:
        """The receive time of the last frame played (the start time before any)."""
        return self._now

    # ------------------------------------------------------------------ GattLink
    @property
    def address(self) -> str:
        """The device address."""
        return self._address

    @property
    def name(self) -> str | None:
        """The advertised name."""
        return self._name

    @property
    def is_connected(self) -> bool:
        """True until the recording hangs up or `disconnect` is called."""
        return not self._disconnected.is_set()

    @property
    def disconnected(self) -> asyncio.Event:
        """Set when the link is down."""
        return self._disconnected

    def has_characteristic(self, uuid: str) -> bool:
        """As recorded (a characteristic the recording used is present)."""
        known = self._shape.knows(uuid)
        if known is not None:
            return known
        return any(f.characteristic == uuid.lower() for f in self._frames)

    def can_write(self, uuid: str) -> bool:
        """As recorded (a characteristic the recording wrote is writable)."""
        known = self._shape.writes(uuid)
        if known is not None:
            return known
        return any(
            f.direction in _WRITES and f.characteristic == uuid.lower() for f in self._frames
        )

    async def read(self, uuid: str) -> bytes:
        """The value recorded for the next read of `uuid`."""
        self._require_up(uuid)
        frame = self._consume((Direction.READ,), uuid)
        if frame is None:
            # Not at this point in the conversation: any recorded value will do (a driver
            # that now reads Device Information in another order still gets the strings).
            frame = next(
                (
                    f
                    for f in self._frames
                    if f.direction is Direction.READ and f.characteristic == uuid.lower()
                ),
                None,
            )
            if frame is None:
                self.unmatched.append((Direction.READ, uuid.lower()))
                msg = f"{self._address}: {uuid} was never read in the recording; nothing to play"
                raise ProtocolError(msg)
        await asyncio.sleep(0)
        return frame.data

    async def write(self, uuid: str, data: bytes, *, response: bool = True) -> None:
        """Consume the next recorded write of `uuid`; its answers follow."""
        del data  # the recording answers, whatever is written now
        self._require_up(uuid)
        if self._consume(_WRITES, uuid) is None:
            self.unmatched.append((Direction.WRITE if response else Direction.COMMAND, uuid))
        await asyncio.sleep(0)

    async def subscribe(self, uuid: str, callback: NotifyCallback) -> None:
        """Register `callback`; recorded notifications of `uuid` go to it."""
        self._require_up(uuid)
        self._callbacks[uuid.lower()] = callback
        if self._consume((Direction.SUBSCRIBE,), uuid) is None:
            self.unmatched.append((Direction.SUBSCRIBE, uuid.lower()))
            self._pump()
        await asyncio.sleep(0)

    async def unsubscribe(self, uuid: str) -> None:
        """Stop delivering `uuid`."""
        self._callbacks.pop(uuid.lower(), None)

    async def pair(self) -> None:
        """Nothing to do: the recording is already past any bonding."""

    async def disconnect(self) -> None:
        """Stop playing."""
        self._disconnected.set()
        if self._pump_task is not None and not self._pump_task.done():
            self._pump_task.cancel()

    # ------------------------------------------------------------------ playing
    def _require_up(self, uuid: str) -> None:
        if self._disconnected.is_set():
            msg = f"{self._address}: link down (recording ended) before {uuid}"
            raise DisconnectedError(msg)

    def _consume(self, directions: tuple[Direction, ...], uuid: str) -> Frame | None:
        """Move past the next recorded frame of this kind; start delivering what follows."""
        uuid = uuid.lower()
        for j in range(self._i, len(self._frames)):
            frame = self._frames[j]
            if frame.direction in directions and frame.characteristic == uuid:
                self._i = j + 1
                self._now = frame.at
                self._pump()
                return frame
        return None

    def _pump(self) -> None:
        if self._pump_task is None or self._pump_task.done():
            self._pump_task = asyncio.get_running_loop().create_task(self._deliver())

    async def _deliver(self) -> None:
        """Deliver notifications up to the next frame the driver must ask for."""
        await asyncio.sleep(0)  # after the call that caused them has returned
        while self._i < len(self._frames) and not self._disconnected.is_set():
            frame = self._frames[self._i]
            if frame.direction is Direction.NOTIFY:
                self._i += 1
                self._now = frame.at
                callback = self._callbacks.get(frame.characteristic)
                if callback is not None:
                    callback(frame.data)
                await asyncio.sleep(0)
            elif frame.direction is Direction.DROP:
                self._i += 1
                self._now = frame.at
                self._disconnected.set()
                return
            else:
                return  # the driver's next call moves on
        if not self._disconnected.is_set():
            # The recording ends here: whoever hung up then, the link is down now, once the
            # driver had its turns to react.
            for _ in range(_SETTLE_TURNS):
                await asyncio.sleep(0)
                if self._i < len(self._frames):
                    return  # cannot happen: nothing is left to consume
            self._disconnected.set()
