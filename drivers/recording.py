"""Keeping every frame: a `GattLink` that records the conversation it carries.

When a device quirk is found after the fact (a ketone stored as glucose, a meter numbering
newest-first), the bytes are the only evidence. `RecordingLink` wraps any `GattLink` and
notes every value read, written or notified, with the characteristic, the direction, the
gateway's wall-clock and monotonic receive times and a connection id, plus the answers the
driver got about the GATT database (`has_characteristic`, `can_write`) and a device-side
hang-up, so the conversation can be played back offline (`drivers.playback`) through a later
driver and served again by the simulator (`edge-gateway simulate --replay`).

Frames hold health data: this module never logs them.
"""

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from drivers.link import GattLink, NotifyCallback

# Bluetooth Base UUID (Core Spec Vol 3 Part B §2.5.1): SIG 16-bit UUIDs are stored short.
_BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"


class Direction(StrEnum):
    """What a frame is, seen from the gateway."""

    READ = "r"  # a value the gateway read
    WRITE = "w"  # a value the gateway wrote with response
    COMMAND = "c"  # a value the gateway wrote without response
    NOTIFY = "n"  # a notification or indication the device sent
    SUBSCRIBE = "s"  # the gateway enabled notifications (no bytes)
    DROP = "d"  # the device side hung up (no bytes; no characteristic)


def short_uuid(full: str) -> str:
    """``"00002a18-0000-1000-8000-00805f9b34fb"`` → ``"2a18"``; other UUIDs unchanged."""
    full = full.lower()
    if full.startswith("0000") and full.endswith(_BASE_SUFFIX) and len(full) == 36:
        return full[4:8]
    return full


def full_uuid(stored: str) -> str:
    """Inverse of `short_uuid` (a 4-hex-digit SIG UUID → the full 128-bit form)."""
    if len(stored) == 4:
        return f"0000{stored.lower()}{_BASE_SUFFIX}"
    return stored.lower()


@dataclass(frozen=True, slots=True)
class Frame:
    """One GATT value on the wire, in conversation order.

    Attributes:
        seq: Position in the connection's conversation (0, 1, …).
        direction: Read, write, notification, subscription or drop.
        characteristic: Full lower-case 128-bit UUID ("" for a drop).
        data: The value bytes (empty for a subscription or drop).
        at: Gateway wall-clock receive (or send) time, aware UTC.
        mono_s: Seconds since the connection was wrapped (monotonic clock), for timing.
    """

    seq: int
    direction: Direction
    characteristic: str
    data: bytes
    at: datetime
    mono_s: float


@dataclass
class GattShape:
    """What the driver learned about the device's GATT database (for playback and replay).

    Attributes:
        present: Characteristic UUID → whether `has_characteristic` said yes.
        writable: Characteristic UUID → whether `can_write` said yes.
        services: Service UUID → characteristic UUID → BlueZ property flags (``"read"``,
            ``"indicate"``, …), when the link can list its database (`BleakLink`).
    """

    present: dict[str, bool] = field(default_factory=dict)
    writable: dict[str, bool] = field(default_factory=dict)
    services: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (short UUIDs)."""
        return {
            "present": {short_uuid(k): v for k, v in sorted(self.present.items())},
            "writable": {short_uuid(k): v for k, v in sorted(self.writable.items())},
            "services": {
                short_uuid(s): {short_uuid(c): list(p) for c, p in sorted(chars.items())}
                for s, chars in sorted(self.services.items())
            },
        }

    def knows(self, uuid: str) -> bool | None:
        """Whether the device has `uuid`, as recorded; None when it was never learned."""
        uuid = uuid.lower()
        if uuid in self.present:
            return self.present[uuid]
        if self.services:
            return any(uuid in chars for chars in self.services.values())
        return None

    def writes(self, uuid: str) -> bool | None:
        """Whether `uuid` accepts writes, as recorded; None when it was never learned."""
        uuid = uuid.lower()
        if uuid in self.writable:
            return self.writable[uuid]
        for chars in self.services.values():
            if uuid in chars:
                return bool({"write", "write-without-response"} & set(chars[uuid]))
        return None

    @classmethod
    def from_json(cls, value: object) -> "GattShape":
        """Rebuild from `to_json` output; anything unrecognised gives an empty shape."""
        if not isinstance(value, dict):
            return cls()

        def table(key: str) -> dict[str, bool]:
            raw = value.get(key)
            if not isinstance(raw, dict):
                return {}
            return {full_uuid(str(k)): bool(v) for k, v in raw.items()}

        raw_services = value.get("services")
        services: dict[str, dict[str, list[str]]] = {}
        if isinstance(raw_services, dict):
            for svc, chars in raw_services.items():
                if isinstance(chars, dict):
                    services[full_uuid(str(svc))] = {
                        full_uuid(str(c)): [str(p) for p in props]
                        for c, props in chars.items()
                        if isinstance(props, list)
                    }
        return cls(table("present"), table("writable"), services)


class FrameRecorder:
    """The frames of one connection, handed to the store in commit-sized pieces.

    `pending` is what has not been committed yet; `committed(n)` drops the first `n` of them
    once the store took them (a refused commit leaves them for the retry).
    """

    def __init__(self, *, now: Callable[[], datetime] | None = None) -> None:
        """Start recording; `now` is the wall clock (aware UTC), injectable for tests."""
        self.connection_id = uuid.uuid4().hex
        self.shape = GattShape()
        self.started_at = (now or _utc_now)()
        self._now = now or _utc_now
        self._t0 = time.monotonic()
        self._pending: list[Frame] = []
        self._next_seq = 0

    def note(self, direction: Direction, characteristic: str, data: bytes = b"") -> None:
        """Record one frame now."""
        self._pending.append(
            Frame(
                self._next_seq,
                direction,
                characteristic.lower(),
                bytes(data),
                self._now(),
                time.monotonic() - self._t0,
            )
        )
        self._next_seq += 1

    @property
    def pending(self) -> tuple[Frame, ...]:
        """Frames not yet committed, in order."""
        return tuple(self._pending)

    def committed(self, count: int) -> None:
        """The store took the first `count` pending frames."""
        del self._pending[:count]

    def wrap(self, link: GattLink) -> "RecordingLink":
        """A link that records into this recorder and otherwise behaves as `link`."""
        return RecordingLink(link, self)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class RecordingLink:
    """A `GattLink` that passes every call through to `inner` and records what went by.

    Errors of the inner link pass through unchanged (a failed read records nothing; a failed
    write stays recorded, as sent).
    """

    def __init__(self, inner: GattLink, recorder: FrameRecorder) -> None:
        """Record `inner`'s conversation into `recorder`."""
        self._inner = inner
        self.recorder = recorder
        listing = getattr(inner, "gatt_database", None)  # optional: BleakLink has it
        if callable(listing):
            recorder.shape.services = dict(listing())
        self._closing = False
        self._watch: asyncio.Task[None] | None = None
        try:
            self._watch = asyncio.get_running_loop().create_task(self._watch_drop())
        except RuntimeError:  # no loop: a drop is simply not recorded
            self._watch = None

    async def _watch_drop(self) -> None:
        await self._inner.disconnected.wait()
        if not self._closing:
            self.recorder.note(Direction.DROP, "")

    @property
    def address(self) -> str:
        """The device address (upper case)."""
        return self._inner.address

    @property
    def name(self) -> str | None:
        """The advertised name."""
        return self._inner.name

    @property
    def is_connected(self) -> bool:
        """True until the link drops."""
        return self._inner.is_connected

    @property
    def disconnected(self) -> asyncio.Event:
        """Set once the link is down."""
        return self._inner.disconnected

    def has_characteristic(self, uuid: str) -> bool:
        """Whether the device has the characteristic (the answer is recorded)."""
        answer = self._inner.has_characteristic(uuid)
        self.recorder.shape.present[uuid.lower()] = answer
        return answer

    def can_write(self, uuid: str) -> bool:
        """Whether the characteristic is writable (the answer is recorded)."""
        answer = self._inner.can_write(uuid)
        self.recorder.shape.writable[uuid.lower()] = answer
        return answer

    async def read(self, uuid: str) -> bytes:
        """Read and record the value."""
        value = await self._inner.read(uuid)
        self.recorder.note(Direction.READ, uuid, value)
        return value

    async def write(self, uuid: str, data: bytes, *, response: bool = True) -> None:
        """Record the value and write it.

        Noted before the call: a device answers a RACP request with notifications that
        arrive before the write's own response, and playback must keep that order.
        """
        self.recorder.note(Direction.WRITE if response else Direction.COMMAND, uuid, data)
        await self._inner.write(uuid, data, response=response)

    async def subscribe(self, uuid: str, callback: NotifyCallback) -> None:
        """Subscribe; every value is recorded before the driver's callback sees it."""
        recorder = self.recorder
        key = uuid.lower()

        def recording(value: bytes) -> None:
            recorder.note(Direction.NOTIFY, key, value)
            callback(value)

        # Noted before the call: a device may indicate the moment the CCCD is written.
        recorder.note(Direction.SUBSCRIBE, key)
        await self._inner.subscribe(uuid, recording)

    async def unsubscribe(self, uuid: str) -> None:
        """Stop notifications."""
        await self._inner.unsubscribe(uuid)

    async def pair(self) -> None:
        """Bond (not recorded: no value moves that a parser reads)."""
        await self._inner.pair()

    async def disconnect(self) -> None:
        """Hang up (a gateway hang-up is not recorded as a drop)."""
        if not self._inner.disconnected.is_set():
            self._closing = True
        await self._inner.disconnect()
        if self._watch is not None and not self._watch.done():
            self._watch.cancel()
