"""An in-memory `Outbox`: the reference implementation for tests, benchmarks and the demo.

It keeps everything in dicts, so a "restart" is modelled by keeping the object and calling
`release_all()`, exactly what the uploader does on start-up against the SQLite store.
"""

import dataclasses
import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from drivers.readings import ReadingKind
from sync.outbox import (
    Batch,
    DeadLetter,
    OutboxItem,
    Stage,
    StreamInfo,
    UploadProgress,
    UserHold,
)


class _State(Enum):
    QUEUED = "queued"
    DELIVERED = "delivered"
    DEAD = "dead"


_Group = tuple[str, Stage, datetime | None, datetime | None]


@dataclass(slots=True, eq=False)
class _Entry:
    item: OutboxItem
    order: int
    state: _State = _State.QUEUED
    claim_id: str | None = None
    not_before: datetime | None = None
    last_error: str | None = None
    dead: DeadLetter | None = None

    def sort_key(self) -> tuple[datetime, str]:
        return (self.item.enqueued_at, self.item.id)


@dataclass(slots=True)
class _Stream:
    """The queued items of one (user, resource), indexed so nothing scans the whole outbox."""

    entries: dict[str, _Entry] = field(default_factory=dict)
    ordered: list[_Entry] = field(default_factory=list)  # claim order; may hold stale entries
    dirty: bool = False
    groups: Counter[_Group] = field(default_factory=Counter)
    historical: int = 0
    claims: dict[str, tuple[datetime, set[str]]] = field(default_factory=dict)
    waiting: set[str] = field(default_factory=set)

    def add(self, entry: _Entry) -> None:
        self.entries[entry.item.id] = entry
        self.dirty = True
        self.groups[entry.item.group] += 1
        self.historical += entry.item.stage is Stage.HISTORICAL

    def remove(self, entry: _Entry) -> None:
        del self.entries[entry.item.id]
        self.groups[entry.item.group] -= 1
        self.historical -= entry.item.stage is Stage.HISTORICAL
        self.waiting.discard(entry.item.id)
        self.unclaim(entry)
        if len(self.ordered) > 2 * len(self.entries) + 64:
            self.dirty = True

    def unclaim(self, entry: _Entry) -> None:
        if entry.claim_id is not None and entry.claim_id in self.claims:
            ids = self.claims[entry.claim_id][1]
            ids.discard(entry.item.id)
            if not ids:
                del self.claims[entry.claim_id]
        entry.claim_id = None

    def expire_claims(self, now: datetime) -> None:
        for claim_id, (lease_until, ids) in list(self.claims.items()):
            if lease_until <= now:
                for item_id in ids:
                    self.entries[item_id].claim_id = None
                del self.claims[claim_id]

    def head(self, now: datetime) -> Stage | None:
        """The stage of the oldest queued item that is due or claimed (`StreamInfo.head`)."""
        for entry in self.in_order():
            if entry.state is not _State.QUEUED or self.entries.get(entry.item.id) is not entry:
                continue
            if entry.claim_id is None and entry.not_before is not None and entry.not_before > now:
                continue
            return entry.item.stage
        return None

    def in_order(self) -> list[_Entry]:
        if self.dirty:
            self.ordered = sorted(self.entries.values(), key=_Entry.sort_key)
            self.dirty = False
        return self.ordered


class MemoryOutbox:
    """`sync.outbox.Outbox` in memory (not durable: a process exit loses it)."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._streams: dict[tuple[str, ReadingKind], _Stream] = {}
        self._order = itertools.count()
        self._claims = itertools.count(1)
        self._holds: dict[str, set[UserHold]] = {}
        self._progress: dict[tuple[str, ReadingKind], UploadProgress] = {}

    def _stream_of(self, entry: _Entry) -> _Stream:
        return self._streams.setdefault((entry.item.user_id, entry.item.resource), _Stream())

    async def enqueue(self, items: Sequence[OutboxItem]) -> int:
        """Add items whose ids are new; see `Outbox.enqueue`."""
        added = 0
        for item in items:
            if item.id in self._entries:
                continue
            entry = _Entry(dataclasses.replace(item, attempts=0), next(self._order))
            self._entries[item.id] = entry
            self._stream_of(entry).add(entry)
            added += 1
        return added

    async def streams(self, now: datetime) -> list[StreamInfo]:
        """Every stream with queued items; see `Outbox.streams`."""
        infos = []
        for (user_id, resource), stream in self._streams.items():
            if not stream.entries:
                continue
            stream.expire_claims(now)
            claimed = sum(len(ids) for _, ids in stream.claims.values())
            waiting: list[datetime] = []
            for item_id in list(stream.waiting):
                entry = stream.entries[item_id]
                if entry.not_before is None or entry.not_before <= now:
                    stream.waiting.discard(item_id)
                elif entry.claim_id is None:
                    waiting.append(entry.not_before)
            infos.append(
                StreamInfo(
                    user_id=user_id,
                    resource=resource,
                    queued=len(stream.entries),
                    due=len(stream.entries) - claimed - len(waiting),
                    claimed=claimed,
                    next_due_at=min(waiting, default=None),
                    historical=stream.historical,
                    head=stream.head(now),
                )
            )
        return infos

    async def claim(
        self,
        user_id: str,
        resource: ReadingKind,
        *,
        limit: int,
        now: datetime,
        lease_until: datetime,
    ) -> Batch | None:
        """Claim due items of one group; see `Outbox.claim`."""
        stream = self._streams.get((user_id, resource))
        if stream is None or not stream.entries:
            return None
        stream.expire_claims(now)
        if stream.claims:
            return None
        chosen: list[_Entry] = []
        group: _Group | None = None
        for entry in stream.in_order():
            if entry.state is not _State.QUEUED:
                continue
            if entry.not_before is not None and entry.not_before > now:
                continue
            if group is None:
                group = entry.item.group
            if entry.item.group == group:
                chosen.append(entry)
                if len(chosen) >= max(1, limit):
                    break
        if group is None:
            return None
        claim_id = f"c{next(self._claims)}"
        for entry in chosen:
            entry.claim_id = claim_id
            stream.waiting.discard(entry.item.id)
        stream.claims[claim_id] = (lease_until, {e.item.id for e in chosen})
        return Batch(
            claim_id=claim_id,
            user_id=user_id,
            resource=resource,
            items=tuple(e.item for e in chosen),
            remaining=stream.groups[group] - len(chosen),
        )

    def _held(self, claim_id: str, ids: Sequence[str]) -> list[_Entry]:
        entries = (self._entries.get(i) for i in ids)
        return [
            e
            for e in entries
            if e is not None and e.state is _State.QUEUED and e.claim_id == claim_id
        ]

    async def complete(
        self,
        claim_id: str,  # noqa: ARG002 - a 2xx is a delivery whichever claim holds the item
        ids: Sequence[str],
        now: datetime,  # noqa: ARG002 - nothing here is timed
    ) -> None:
        """Mark items delivered; see `Outbox.complete`."""
        for item_id in ids:
            entry = self._entries.get(item_id)
            if entry is not None and entry.state is _State.QUEUED:
                entry.state = _State.DELIVERED
                self._stream_of(entry).remove(entry)

    async def retry_later(
        self, claim_id: str, ids: Sequence[str], *, not_before: datetime, error: str
    ) -> None:
        """Give items back after a retryable failure; see `Outbox.retry_later`."""
        for entry in self._held(claim_id, ids):
            stream = self._stream_of(entry)
            stream.unclaim(entry)
            entry.not_before, entry.last_error = not_before, error
            entry.item = dataclasses.replace(entry.item, attempts=entry.item.attempts + 1)
            stream.waiting.add(entry.item.id)

    async def release(self, claim_id: str, ids: Sequence[str]) -> None:
        """Give items back unchanged; see `Outbox.release`."""
        for entry in self._held(claim_id, ids):
            self._stream_of(entry).unclaim(entry)

    async def dead_letter(
        self,
        claim_id: str,
        ids: Sequence[str],
        *,
        status_code: int | None,
        body: str,
        reason: str,
        now: datetime,
    ) -> None:
        """Move items to the dead-letter state; see `Outbox.dead_letter`."""
        for entry in self._held(claim_id, ids):
            entry.state = _State.DEAD
            entry.dead = DeadLetter(entry.item, status_code, body, reason, now)
            self._stream_of(entry).remove(entry)

    async def release_all(self) -> int:
        """End every claim; see `Outbox.release_all`."""
        released = 0
        for stream in self._streams.values():
            for _, ids in stream.claims.values():
                for item_id in ids:
                    stream.entries[item_id].claim_id = None
                released += len(ids)
            stream.claims.clear()
        return released

    async def dead_letters(self, user_id: str | None = None) -> list[DeadLetter]:
        """Dead letters, oldest first; see `Outbox.dead_letters`."""
        dead = [
            e
            for e in self._entries.values()
            if e.dead is not None
            and e.state is _State.DEAD
            and (user_id is None or e.item.user_id == user_id)
        ]
        return [e.dead for e in sorted(dead, key=lambda e: e.order) if e.dead is not None]

    async def requeue_dead(self, ids: Sequence[str]) -> int:
        """Put dead items back in the queue; see `Outbox.requeue_dead`."""
        requeued = 0
        for item_id in ids:
            entry = self._entries.get(item_id)
            if entry is not None and entry.state is _State.DEAD:
                entry.state, entry.dead, entry.not_before = _State.QUEUED, None, None
                entry.item = dataclasses.replace(entry.item, attempts=0)
                self._stream_of(entry).add(entry)
                requeued += 1
        return requeued

    async def holds(self) -> Mapping[str, frozenset[UserHold]]:
        """Users with holds; see `Outbox.holds`."""
        return {user: frozenset(h) for user, h in self._holds.items() if h}

    async def set_hold(self, user_id: str, hold: UserHold, *, held: bool) -> None:
        """Add or clear a hold; see `Outbox.set_hold`."""
        holds = self._holds.setdefault(user_id, set())
        if held:
            holds.add(hold)
        else:
            holds.discard(hold)

    async def record_progress(self, progress: UploadProgress) -> None:
        """Replace a stream's progress; see `Outbox.record_progress`."""
        self._progress[(progress.user_id, progress.resource)] = progress

    async def progress(self, user_id: str | None = None) -> list[UploadProgress]:
        """Latest progress per stream; see `Outbox.progress`."""
        return [
            p for key, p in sorted(self._progress.items()) if user_id is None or key[0] == user_id
        ]

    def delivered_ids(self) -> set[str]:
        """Ids of delivered items (tests and benchmarks only; not part of the protocol)."""
        return {i for i, e in self._entries.items() if e.state is _State.DELIVERED}
