"""Which streams the uploader starts next: SDK priority order, fair across users.

Pure: the uploader passes what the outbox reports and what it has in flight, and gets back
the streams to start now. Rules (mobile-sdk-sync.md §3.4, and "do better" §6.7):

- a stream with a POST in flight, nothing due, or a held user is never started;
- users take turns (the least recently served user first), so one user's backlog cannot
  starve another's readings;
- within a user, resources go in priority order (lower number first). The one default,
  `DEFAULT_RESOURCE_ORDER` (also ``junction.resource_priority``'s default), is glucose, blood
  pressure, body: vitals before bulk data, as mobile-sdk-sync.md §6 "Copy" 5 asks ("vitals
  (BP, glucose) before bulk data"), and glucose first because a hypoglycaemic reading is
  the one a clinic must see soonest. The SDKs disagree with each other and with that
  advice (iOS: body 1, vitals 16; Android: body 11, blood pressure 21, glucose 22, §3.4);
  they order whole-history Health syncs, not a clinic's BLE readings;
- historical stage: a resource whose head (`StreamInfo.head`, the item it would send next)
  is historical waits ("deprioritized") while a higher-priority resource of the same user
  is sending historical items itself: its head is historical and it is making progress (due
  or in flight). Only the heads count: a few historical items queued behind a long daily
  backlog hold nothing back until they are next (issue 18: 8 historical glucose readings
  behind 100k daily ones held a BP reading for the whole drain). A higher-priority
  resource that is only waiting for a retry does not block either.
"""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from drivers.readings import ReadingKind
from sync.outbox import Stage, StreamInfo

StreamKey = tuple[str, ReadingKind]

DEFAULT_RESOURCE_ORDER: tuple[ReadingKind, ...] = (
    ReadingKind.GLUCOSE,
    ReadingKind.BLOOD_PRESSURE,
    ReadingKind.BODY,
)
"""The default upload order (see the module docstring for why)."""

DEFAULT_PRIORITY: Mapping[ReadingKind, int] = {
    kind: rank for rank, kind in enumerate(DEFAULT_RESOURCE_ORDER)
}
_UNLISTED = 1 << 30  # resources missing from the priority table go last (SDK: Int.max)


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do now.

    Attributes:
        start: Streams to start, in the order to start them.
        deprioritized: Streams held back by the historical-stage gate.
    """

    start: list[StreamKey]
    deprioritized: list[StreamKey]


def plan(
    streams: Sequence[StreamInfo],
    *,
    in_flight: Collection[StreamKey],
    held_users: Collection[str],
    last_served: Mapping[str, int],
    slots: int,
    priority: Mapping[ReadingKind, int] = DEFAULT_PRIORITY,
) -> Plan:
    """Choose the streams to start now.

    Args:
        streams: What the outbox reports (`Outbox.streams`).
        in_flight: Streams with a POST in flight.
        held_users: Users whose uploads are held (paused, parked, revoked).
        last_served: Per user, a counter value of when it was last started (higher =
            more recent); absent = never.
        slots: How many more POSTs may start now.
        priority: Resource priorities, lower first.

    Returns:
        The streams to start (at most `slots`) and those deprioritized.
    """

    def rank(resource: ReadingKind) -> int:
        return priority.get(resource, _UNLISTED)

    progressing_historical: dict[str, list[int]] = {}
    for s in streams:
        key = (s.user_id, s.resource)
        if _historical_head(s) and (s.due or key in in_flight or s.claimed):
            progressing_historical.setdefault(s.user_id, []).append(rank(s.resource))

    candidates: list[StreamInfo] = []
    deprioritized: list[StreamKey] = []
    for s in streams:
        key = (s.user_id, s.resource)
        if not s.due or key in in_flight or s.claimed or s.user_id in held_users:
            continue
        blockers = progressing_historical.get(s.user_id, [])
        if _historical_head(s) and any(r < rank(s.resource) for r in blockers):
            deprioritized.append(key)
            continue
        candidates.append(s)

    chosen: list[StreamKey] = []
    served = dict(last_served)
    tick = max(served.values(), default=0)
    pool = list(candidates)
    while pool and len(chosen) < slots:
        best = min(pool, key=lambda s: (served.get(s.user_id, -1), rank(s.resource), s.user_id))
        pool.remove(best)
        chosen.append((best.user_id, best.resource))
        tick += 1
        served[best.user_id] = tick
    return Plan(start=chosen, deprioritized=sorted(deprioritized))


def _historical_head(stream: StreamInfo) -> bool:
    """Whether the stream sends historical items now or next (see the module docstring)."""
    if stream.head is None:  # not said: any historical item may be the head
        return stream.historical > 0
    return stream.head is Stage.HISTORICAL
