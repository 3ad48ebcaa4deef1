"""Live outbox claims and unsettled deliveries, kept in memory (issue 18).

Claims: a claim wrote ~800 WAL pages per batch.

A claim only says "this process is sending these items now". The uploader's start-up
`release_all` ends every claim anyway, so a claim a crash loses is one that would have been
ended: nothing durable is needed. Claims are kept per database file (its resolved path), so
every `SqliteOutbox` of this process over one file, including one opened again after
`Database.close`, sees the same claims; another process sees none.

Recorded: counts of 2xx recorded in the narrow `outbox_delivery` table whose outbox rows
and readings are not settled yet (see `gateway.store.outbox`). Catch-up: when settled
readings wait for their place in the change order (the record is the `change_catch_up`
table).

Thread-safe: store calls run in worker threads (`gateway.store.aio`).
"""

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from gateway.store.queue_counts import Group, QueueCounts, StreamKey


@dataclass(slots=True)
class _Claim:
    stream: StreamKey
    lease_until: datetime
    ids: set[str] = field(default_factory=set)


class Claims:
    """The claims of one database file: which items which claim holds, and until when.

    A claim holds its items until they are settled (complete, retry, release, dead letter)
    or a newer claim of the same stream takes them (its lease ran out). A stream has at most
    one live claim (lease not ended), as `sync.outbox.Outbox.claim` requires.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claims: dict[str, _Claim] = {}
        self._holder: dict[str, str] = {}  # item id -> claim id
        self._enqueued: dict[str, str] = {}  # item id -> its enqueued_at when claimed
        self._latest: dict[StreamKey, str] = {}  # stream -> its newest claim (or reservation)

    def reserve(self, stream: StreamKey, now: datetime, lease_until: datetime) -> str | None:
        """A new claim id for `stream`, or None while the stream has a live claim.

        The claim is live from here on (so a concurrent claim of the stream gets None) and
        holds nothing until `fill`; `cancel` it if there is nothing to claim.
        """
        with self._lock:
            latest = self._claims.get(self._latest.get(stream, ""))
            if latest is not None and latest.lease_until > now:
                return None
            claim_id = uuid.uuid4().hex
            self._claims[claim_id] = _Claim(stream, lease_until)
            self._latest[stream] = claim_id
            return claim_id

    def fill(self, claim_id: str, items: Iterable[tuple[str, str]]) -> None:
        """Give the reserved claim its items: (id, `enqueued_at` as stored) pairs.

        An item an older claim holds is taken from it.
        """
        with self._lock:
            claim = self._claims[claim_id]
            for item_id, enqueued_at in items:
                old = self._holder.get(item_id)
                if old is not None and old != claim_id:
                    self._forget(old, item_id)
                self._holder[item_id] = claim_id
                self._enqueued[item_id] = enqueued_at
                claim.ids.add(item_id)

    def enqueued(self, ids: Iterable[str]) -> dict[str, str]:
        """For those of `ids` a claim holds: their `enqueued_at` (as stored) when claimed.

        A reparse that queues a corrected reading again stamps a new `enqueued_at`
        (`gateway.reparse`, possibly in another process): a 2xx for what was claimed
        before it carried the old values.
        """
        with self._lock:
            return {i: self._enqueued[i] for i in ids if i in self._enqueued}

    def cancel(self, claim_id: str) -> None:
        """Drop a reservation that claimed nothing."""
        with self._lock:
            claim = self._claims.pop(claim_id, None)
            if claim is not None and self._latest.get(claim.stream) == claim_id:
                del self._latest[claim.stream]

    def held(self, claim_id: str, ids: Sequence[str]) -> list[str]:
        """Those of `ids` that `claim_id` still holds (live or not)."""
        with self._lock:
            return [i for i in ids if self._holder.get(i) == claim_id]

    def settle(self, ids: Iterable[str]) -> None:
        """The items are settled: no claim holds them any more."""
        with self._lock:
            for item_id in ids:
                claim_id = self._holder.pop(item_id, None)
                self._enqueued.pop(item_id, None)
                if claim_id is not None:
                    self._forget(claim_id, item_id)

    def claimed(self, now: datetime) -> dict[StreamKey, set[str]]:
        """Per stream, the items of its live claim."""
        with self._lock:
            result: dict[StreamKey, set[str]] = {}
            for stream, claim_id in self._latest.items():
                claim = self._claims.get(claim_id)
                if claim is not None and claim.lease_until > now and claim.ids:
                    result[stream] = set(claim.ids)
            return result

    def release_all(self) -> int:
        """End every claim; how many items they held."""
        with self._lock:
            count = len(self._holder)
            self._claims.clear()
            self._holder.clear()
            self._enqueued.clear()
            self._latest.clear()
            return count

    def _forget(self, claim_id: str, item_id: str) -> None:
        claim = self._claims.get(claim_id)
        if claim is None:
            return
        claim.ids.discard(item_id)
        if not claim.ids and self._latest.get(claim.stream) != claim_id:
            del self._claims[claim_id]
        elif not claim.ids:  # the stream's newest claim is settled: the stream is free
            del self._claims[claim_id]
            del self._latest[claim.stream]


class Recorded:
    """Counts of deliveries recorded in `outbox_delivery` whose rows are not settled yet.

    Only counts, per stream and group (a 100k drain would otherwise hold 100k ids):
    which rows they are, the queue's walks ask SQL (`gateway.store.outbox`). Settling takes
    every recorded delivery at once, so it starts the counts again from zero.

    Attributes:
        replayed: Whether this process has counted what an earlier one left recorded.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: Counter[tuple[StreamKey, Group]] = Counter()
        self._since: float | None = None  # monotonic: when the oldest was recorded
        self.replayed = False
        self.replay_lock = threading.Lock()  # one first look at what an earlier process left

    def add(self, items: Iterable[tuple[StreamKey, Group]]) -> None:
        """Deliveries just recorded: each one's stream and group."""
        with self._lock:
            for stream, group in items:
                self._groups[(stream, group)] += 1
            if self._groups and self._since is None:
                self._since = time.monotonic()

    def remove(self, items: Iterable[tuple[StreamKey, Group]]) -> None:
        """Recorded deliveries taken back (their transaction failed)."""
        with self._lock:
            for stream, group in items:
                self._groups[(stream, group)] -= 1
            self._groups = +self._groups
            if not self._groups:
                self._since = None

    def load(self, items: Iterable[tuple[StreamKey, Group, int]]) -> None:
        """What an earlier process left recorded (stream, group, count): overdue at once."""
        with self._lock:
            for stream, group, count in items:
                self._groups[(stream, group)] += count
            self._groups = +self._groups
            if self._groups:
                self._since = 0.0
            self.replayed = True

    def snapshot(self) -> Counter[tuple[StreamKey, Group]]:
        """The counts now, per group (a settle takes them inside its transaction)."""
        with self._lock:
            return Counter(self._groups)

    def subtract(self, taken: Counter[tuple[StreamKey, Group]]) -> None:
        """A settle committed: what it took (`snapshot`) is no longer recorded.

        Deliveries counted after the snapshot stay. Counts of rows another process deleted
        (a reparse) go with the snapshot too, so every settle heals them.
        """
        with self._lock:
            for (stream, group), count in taken.items():
                self._groups[(stream, group)] -= count
            self._groups = +self._groups
            if not self._groups:
                self._since = None

    def count(self) -> int:
        """Recorded deliveries not settled."""
        with self._lock:
            return sum(self._groups.values())

    def age(self) -> float:
        """Seconds since the oldest unsettled delivery was recorded.

        0 if none; infinite for what an earlier process left.
        """
        since = self._since
        if since is None:
            return 0.0
        return float("inf") if since == 0.0 else time.monotonic() - since


class CatchUp:
    """Whether delivered readings wait for their place in the change order, and how long.

    Settling a delivery queues its reading in the `change_catch_up` table; `catch_up_sync`
    works through it oldest first. This only times it: the table is the record. A new
    process does not know what an earlier one left there, so it starts "waiting, overdue".
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = 0.0  # monotonic: oldest delivery waiting (0: unknown)
        self.generation = 0  # counts `note` calls: a catch-up ending stale clears nothing
        # Whether the uploader was last seen idle: nothing to claim and nothing in flight
        # (set by `SqliteOutbox.streams`, cleared by a claim).
        self.idle = False

    def note(self) -> None:
        """Readings were just queued for the change order (inside that transaction)."""
        with self._lock:
            self.generation += 1
            if self._since is None:
                self._since = time.monotonic()

    def settled(self, *, more: bool, generation: int | None = None) -> None:
        """A catch-up ran; `more`: it stopped at its limit, so readings may still wait.

        `generation`: as read inside the catch-up's transaction; if a settle noted readings
        since, they may have come after the catch-up's look, so they still wait.
        """
        with self._lock:
            if not more and (generation is None or generation == self.generation):
                self._since = None

    def waiting(self) -> bool:
        """Whether readings may wait for the change order."""
        return self._since is not None

    def age(self) -> float:
        """Seconds the oldest waiting delivery has waited (infinite if unknown, 0 if none)."""
        since = self._since
        if since is None:
            return 0.0
        return float("inf") if since == 0.0 else time.monotonic() - since


class FileState(NamedTuple):
    """The in-memory outbox state of one database file (`claims_of`)."""

    claims: Claims
    recorded: Recorded
    catch_up: CatchUp
    queue: QueueCounts


_BY_FILE: dict[Path, FileState] = {}
_BY_FILE_LOCK = threading.Lock()


def claims_of(path: Path) -> FileState:
    """The in-memory outbox state of the database file at `path` (one per file).

    Its claims, its recorded deliveries not settled, its change-order catch-up and its
    queued counts.
    """
    key = path.resolve()
    with _BY_FILE_LOCK:
        state = _BY_FILE.get(key)
        if state is None:
            state = _BY_FILE[key] = FileState(Claims(), Recorded(), CatchUp(), QueueCounts())
        return state
