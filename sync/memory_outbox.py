"""An in-memory `Outbox`: the reference implementation for tests, benchmarks and the demo.

It keeps everything in dicts, so a "restart" is modelled by keeping the object and calling
`release_all()`, exactly what the uploader does on start-up against the SQLite store.
"""

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from drivers.readings import ReadingKind
from sync.outbox import (
    Batch,
    DeadLetter,
    OutboxItem,
    StreamInfo,
    UploadProgress,
    UserHold,
)


class _State(Enum):
    QUEUED = "queued"
    DELIVERED = "delivered"
    DEAD = "dead"


@dataclass(slots=True)
class _Entry:
    item: OutboxItem
    order: int
    state: _State = _State.QUEUED
    claim_id: str | None = None
    lease_until: datetime | None = None
    not_before: datetime | None = None
    last_error: str | None = None
    dead: DeadLetter | None = None

    def claimed(self, now: datetime) -> bool:
        return self.claim_id is not None and self.lease_until is not None and self.lease_until > now

    def due(self, now: datetime) -> bool:
        return (
            self.state is _State.QUEUED
            and not self.claimed(now)
            and (self.not_before is None or self.not_before <= now)
        )


class MemoryOutbox:
    """`sync.outbox.Outbox` in memory (not durable: a process exit loses it)."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._order = itertools.count()
        self._claims = itertools.count(1)
        self._holds: dict[str, set[UserHold]] = {}
        self._progress: dict[tuple[str, ReadingKind], UploadProgress] = {}

    async def enqueue(self, items: Sequence[OutboxItem]) -> int:
        """Add items whose ids are new; see `Outbox.enqueue`."""
        added = 0
        for item in items:
            if item.id in self._entries:
                continue
            self._entries[item.id] = _Entry(
                dataclasses.replace(item, attempts=0), next(self._order)
            )
            added += 1
        return added

    async def streams(self, now: datetime) -> list[StreamInfo]:
        """Every stream with queued items; see `Outbox.streams`."""
        grouped: dict[tuple[str, ReadingKind], list[_Entry]] = {}
        for entry in self._entries.values():
            if entry.state is _State.QUEUED:
                key = (entry.item.user_id, entry.item.resource)
                grouped.setdefault(key, []).append(entry)
        infos = []
        for (user_id, resource), entries in grouped.items():
            waiting = [
                e.not_before
                for e in entries
                if not e.claimed(now) and e.not_before is not None and e.not_before > now
            ]
            infos.append(
                StreamInfo(
                    user_id=user_id,
                    resource=resource,
                    queued=len(entries),
                    due=sum(e.due(now) for e in entries),
                    claimed=sum(e.claimed(now) for e in entries),
                    next_due_at=min(waiting, default=None),
                    historical=sum(e.item.stage == "historical" for e in entries),
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
        stream = sorted(
            (
                e
                for e in self._entries.values()
                if e.state is _State.QUEUED
                and e.item.user_id == user_id
                and e.item.resource == resource
            ),
            key=lambda e: (e.item.enqueued_at, e.item.id),
        )
        if any(e.claimed(now) for e in stream):
            return None
        due = [e for e in stream if e.due(now)]
        if not due:
            return None
        group = due[0].item.group
        chosen = [e for e in due if e.item.group == group][: max(1, limit)]
        claim_id = f"c{next(self._claims)}"
        for entry in chosen:
            entry.claim_id, entry.lease_until = claim_id, lease_until
        chosen_ids = {e.item.id for e in chosen}
        remaining = sum(e.item.group == group and e.item.id not in chosen_ids for e in stream)
        return Batch(
            claim_id=claim_id,
            user_id=user_id,
            resource=resource,
            items=tuple(e.item for e in chosen),
            remaining=remaining,
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
                entry.state, entry.claim_id, entry.lease_until = _State.DELIVERED, None, None

    async def retry_later(
        self, claim_id: str, ids: Sequence[str], *, not_before: datetime, error: str
    ) -> None:
        """Give items back after a retryable failure; see `Outbox.retry_later`."""
        for entry in self._held(claim_id, ids):
            entry.claim_id, entry.lease_until = None, None
            entry.not_before, entry.last_error = not_before, error
            entry.item = dataclasses.replace(entry.item, attempts=entry.item.attempts + 1)

    async def release(self, claim_id: str, ids: Sequence[str]) -> None:
        """Give items back unchanged; see `Outbox.release`."""
        for entry in self._held(claim_id, ids):
            entry.claim_id, entry.lease_until = None, None

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
            entry.state, entry.claim_id, entry.lease_until = _State.DEAD, None, None
            entry.dead = DeadLetter(entry.item, status_code, body, reason, now)

    async def release_all(self) -> int:
        """End every claim; see `Outbox.release_all`."""
        released = 0
        for entry in self._entries.values():
            if entry.state is _State.QUEUED and entry.claim_id is not None:
                entry.claim_id, entry.lease_until = None, None
                released += 1
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
