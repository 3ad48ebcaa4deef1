"""The in-process event bus behind `/v1/events` (Server-Sent Events) and the kiosk page.

Contract for publishers (collector, uploader, API):

- `bus.publish(event_type, user_id, data)` appends one event and returns it. It never
  blocks, never fails for lack of subscribers, and may be called from the event loop or from
  any thread. `data` must be JSON-serialisable (it is serialised once, at publish time, so a
  bad payload fails the publisher, not the stream). Publish *after* the store committed.
- Events use Junction's webhook envelope (junction-digest.md §5.1): ``{"event_type",
  "user_id", "client_user_id", "team_id", "data"}``. Reading events are Junction's data
  events (`reading_event_type`, `Resource`): ``daily.data.<resource>.created`` for new
  readings, ``daily.data.<resource>.updated`` when stored readings change (e.g. assigned to
  a user), with ``data = {"user_id", "source": {"provider", "type", "app_id": null,
  "device_id"}, "data": [Junction samples], "reading_ids": [...]}``; the first read of a
  device's memory (the historical stage) gives one data-less
  ``historical.data.<resource>.created`` per resource with ``{"user_id", "start_date",
  "end_date", "provider"}``. Gateway events (`DEVICE_*`, `PAIRING_*`, `SYNC_*`,
  `KIOSK_*` below) have ``user_id`` set when they concern one person, else None.
- Ids are integers, strictly increasing for the life of the data directory: the bus starts at
  ``epoch << 32 | 1`` where `epoch` is bumped on every start (`next_epoch`), so an id from
  before a restart is always lower than any id after it.
- Only the newest `capacity` events are kept (a ring buffer). A subscriber resuming with a
  `Last-Event-ID` older than what is kept (or from another run) first gets one `GAP` event
  telling it to re-read `/v1/readings?updated_since=...`; then everything kept after that id.

Contract for subscribers: ``async with contextlib.aclosing(bus.subscribe(after=last_id)) as
events: async for event in events: ...`` (aclosing detaches at once on exit). A slow
subscriber never slows publishers; if it falls behind by more than `capacity` events, it gets a
`GAP` event and continues from the oldest kept event.
"""

import asyncio
import contextlib
import json
import logging
import threading
from collections import deque
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from drivers.readings import ReadingKind

_LOGGER = logging.getLogger(__name__)

DEFAULT_CAPACITY = 2048  # ~ a clinic day of readings and device events, a few MB at most
EPOCH_BITS = 32  # ids are epoch << 32 | sequence: 4 billion events per run
EPOCH_FILENAME = "events.epoch"

# Gateway (non-Junction) event types, namespaced so a Junction consumer can ignore them.
GAP = "gateway.events.gap"  # data: {"after_id", "oldest_id", "updated_since"}
DEVICE_SEEN = "gateway.device.seen"  # data: {"address", "name", "kind", "rssi", "next_step"}
DEVICE_LOST = "gateway.device.lost"  # data: {"address"}
DEVICE_CONNECTED = "gateway.device.connected"  # data: {"address"}
DEVICE_DISCONNECTED = "gateway.device.disconnected"  # data: {"address"}
DEVICE_FORGOTTEN = "gateway.device.forgotten"  # data: {"address"}
PAIRING_STARTED = "gateway.pairing.started"  # data: {"address"}
PAIRING_FINISHED = "gateway.pairing.finished"  # data: {"address", "ok", "message"}
SYNC_PROGRESS = "gateway.sync.progress"  # data: {"user_id", "resource", "status", "pending"}
KIOSK_SESSION_STARTED = "gateway.kiosk.session.started"  # data: {"id", "user_id", "device", …}
KIOSK_SESSION_ENDED = "gateway.kiosk.session.ended"  # data: {"id", "user_id"}


class Resource(StrEnum):
    """Junction resources (event slugs) the gateway's readings become (junction-digest §1.3).

    A glucose reading is one ``glucose`` sample; a blood-pressure reading one
    ``blood_pressure`` sample (`systolic`, `diastolic`) plus a ``heartrate`` sample when the
    cuff measured pulse (Junction's BP sample has no pulse); a body reading a ``weight``
    sample and a ``fat`` sample when the scale measured body fat.
    """

    GLUCOSE = "glucose"
    BLOOD_PRESSURE = "blood_pressure"
    HEARTRATE = "heartrate"
    WEIGHT = "weight"
    FAT = "fat"


Stage = Literal["daily", "historical"]
Change = Literal["created", "updated"]

SOURCE_TYPE = {
    ReadingKind.GLUCOSE: "fingerprick",
    ReadingKind.BLOOD_PRESSURE: "cuff",
    ReadingKind.BODY: "scale",
}


def reading_event_type(
    resource: Resource | str, *, stage: Stage = "daily", change: Change = "created"
) -> str:
    """Junction's data event type, e.g. ``daily.data.glucose.created``.

    ``daily.`` means incremental (new or changed data), ``historical.`` a finished backfill;
    only ``created`` exists for historical (junction-digest §3.4, §5.1).

    Raises:
        ValueError: Not a `Resource`, or a historical ``updated``.
    """
    if stage == "historical" and change != "created":
        msg = f"historical.data.{resource}.{change}: Junction has only historical …created"
        raise ValueError(msg)
    return f"{stage}.data.{Resource(resource).value}.{change}"


def reading_event_data(
    user_id: str | None,
    provider: str,
    kind: ReadingKind | str,
    device: str,
    samples: list[dict[str, Any]],
    reading_ids: list[str],
) -> dict[str, Any]:
    """The ``data`` of a daily data event: Junction's grouped ``{user_id, source, data}``.

    Args:
        user_id: The readings' user (None while unassigned).
        provider: Provider slug (``source.provider``).
        kind: Reading kind (sets ``source.type``: fingerprick, cuff or scale).
        device: Device address (``source.device_id``).
        samples: Junction samples ``{timestamp, timezone_offset, type, unit, value}`` (blood
            pressure: ``systolic``/``diastolic`` instead of ``value``).
        reading_ids: Gateway extension: the `/v1/readings/{id}` behind each sample, in order.
    """
    return {
        "user_id": user_id,
        "source": {
            "provider": provider,
            "type": SOURCE_TYPE[ReadingKind(kind)],
            "app_id": None,
            "device_id": device,
        },
        "data": samples,
        "reading_ids": reading_ids,
    }


def historical_event_data(
    user_id: str | None, provider: str, start_date: datetime, end_date: datetime
) -> dict[str, Any]:
    """The ``data`` of ``historical.data.<resource>.created``: the backfill's window, no samples.

    As Junction's (junction-digest §5.1): ``{user_id, start_date, end_date, provider}``; read
    the readings with ``GET /v1/readings?user_id=…&start_date=…&end_date=…`` (UTC, end
    exclusive).
    """
    return {
        "user_id": user_id,
        "start_date": start_date.astimezone(UTC).isoformat(),
        "end_date": end_date.astimezone(UTC).isoformat(),
        "provider": provider,
    }


@dataclass(frozen=True, slots=True)
class Event:
    """One published event.

    Attributes:
        id: Strictly increasing id (the SSE ``id:`` field).
        event_type: Junction-style type, e.g. ``daily.data.glucose.created``.
        user_id: The Junction user it concerns, or None.
        data: The payload (JSON-ready).
        created_at: When it was published (UTC).
        json: The serialised envelope, computed once.
    """

    id: int
    event_type: str
    user_id: str | None
    data: Mapping[str, Any]
    created_at: datetime
    json: str

    def envelope(self) -> dict[str, Any]:
        """The webhook-style envelope (what ``json`` holds)."""
        return envelope(self.event_type, self.user_id, self.data)


def envelope(event_type: str, user_id: str | None, data: Mapping[str, Any]) -> dict[str, Any]:
    """Junction's webhook envelope (junction-digest.md §5.1); no team or client ids locally."""
    return {
        "event_type": event_type,
        "user_id": user_id,
        "client_user_id": None,
        "team_id": None,
        "data": dict(data),
    }


def next_epoch(data_dir: Path) -> int:
    """Bump and return the run counter kept in `data_dir` (1 on a fresh directory).

    The file is replaced atomically; an unreadable counter restarts from the current time in
    seconds (still higher than any plausible counter), so ids never go backwards.
    """
    path = data_dir / EPOCH_FILENAME
    try:
        previous = int(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        previous = 0
    except (OSError, ValueError):
        _LOGGER.warning("%s unreadable; restarting event ids from the clock", path)
        previous = int(datetime.now(UTC).timestamp())
    epoch = previous + 1
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{epoch}\n", encoding="ascii")
    tmp.replace(path)
    return epoch


@dataclass(eq=False, slots=True)
class _Waiter:
    loop: asyncio.AbstractEventLoop
    wake: asyncio.Event


class EventBus:
    """A thread-safe ring buffer of events with async subscribers (see the module docstring)."""

    def __init__(self, *, capacity: int = DEFAULT_CAPACITY, epoch: int = 0) -> None:
        if capacity < 1:
            msg = f"event bus capacity {capacity}: must be at least 1"
            raise ValueError(msg)
        self._events: deque[Event] = deque(maxlen=capacity)
        self._first_id = (epoch << EPOCH_BITS) | 1
        self._next_id = self._first_id
        self._lock = threading.Lock()
        self._waiters: set[_Waiter] = set()

    @property
    def last_id(self) -> int:
        """The id of the newest event, or the id just before the first one of this run."""
        with self._lock:
            return self._next_id - 1

    def publish(self, event_type: str, user_id: str | None, data: Mapping[str, Any]) -> Event:
        """Append an event and wake subscribers.

        Args:
            event_type: e.g. ``daily.data.glucose.created`` or one of the ``gateway.*`` types.
            user_id: The Junction user the event concerns, or None.
            data: JSON-serialisable payload.

        Returns:
            The event, with its id.

        Raises:
            TypeError: `data` is not JSON-serialisable (nothing published).
            ValueError: `data` holds NaN/infinity or a circular reference (nothing published).
        """
        text = json.dumps(
            envelope(event_type, user_id, data), separators=(",", ":"), allow_nan=False
        )
        with self._lock:
            event = Event(self._next_id, event_type, user_id, data, datetime.now(UTC), text)
            self._next_id += 1
            self._events.append(event)
            waiters = list(self._waiters)
        for waiter in waiters:
            _wake(waiter)
        _LOGGER.debug("event %d %s", event.id, event_type)
        return event

    def since(self, after: int) -> tuple[list[Event], bool]:
        """Kept events with ids above `after`, and whether some after it are no longer kept.

        An `after` from the future (another run, a bogus id) counts as a gap with no events.
        """
        with self._lock:
            newest = self._next_id - 1
            oldest = self._events[0].id if self._events else self._next_id
            if after > newest:
                return [], True
            gap = after < oldest - 1
            if gap or after < oldest:
                return list(self._events), gap
            return list(self._events)[after - oldest + 1 :], False

    async def subscribe(self, after: int | None = None) -> AsyncGenerator[Event, None]:
        """Events with ids above `after` (None: only new ones), then live ones, forever.

        A gap (see `since`) is reported as one `GAP` event first, built here and not stored.
        """
        waiter = _Waiter(asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(waiter)
            cursor = self._next_id - 1 if after is None else after
        try:
            while True:
                waiter.wake.clear()
                events, gap = self.since(cursor)
                if gap:
                    yield self._gap_event(cursor, events)
                    cursor = events[0].id - 1 if events else self.last_id
                for event in events:
                    yield event
                    cursor = event.id
                if not events:
                    await waiter.wake.wait()
        finally:
            with self._lock:
                self._waiters.discard(waiter)

    def _gap_event(self, after: int, kept: list[Event]) -> Event:
        oldest = kept[0].id if kept else None
        since = kept[0].created_at.isoformat() if kept else datetime.now(UTC).isoformat()
        data = {"after_id": after, "oldest_id": oldest, "updated_since": since}
        text = json.dumps(envelope(GAP, None, data), separators=(",", ":"))
        # The gap event carries the id to resume from: the one just before the oldest kept.
        resume = (oldest - 1) if oldest is not None else self.last_id
        return Event(resume, GAP, None, data, datetime.now(UTC), text)

    @property
    def subscribers(self) -> int:
        """How many subscribers are attached (for /metrics and tests)."""
        with self._lock:
            return len(self._waiters)


def _wake(waiter: _Waiter) -> None:
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is waiter.loop:
        waiter.wake.set()
    else:
        with contextlib.suppress(RuntimeError):  # the subscriber's loop has closed
            waiter.loop.call_soon_threadsafe(waiter.wake.set)
