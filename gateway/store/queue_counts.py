"""Queued outbox items per stream and group, counted once and kept (issue 18).

`streams()` (after every batch) and a claim's `remaining` counted queued rows on an index:
O(queued) per batch (100k queued: ~2.4 ms a call, ~7 % of a drain's CPU; 1M: ten times
that). The counts are kept here per database file instead, with the version of the database
state they describe, and counted again only when that state changed in a way this module
was not told of:

- the version is ``(max(outbox_item.pk), outbox_epoch.n)``. `pk` is AUTOINCREMENT, so every
  insert moves the first; the triggers of store v14 move the second whenever a row's state
  or group columns change or a row is deleted, whoever writes (a reparse in another
  process, a dead letter, a migration);
- a settle (the one change while a backlog drains) says what it moved (`settled`), with the
  versions before and after its change, so the counts follow it without a recount.

A reader subtracts the deliveries recorded but not settled (`claims.Recorded`, in memory)
from counts of its snapshot; `unsettled` gives them as of that snapshot even while a settle
in another thread commits (versions only grow, so a snapshot's says which side it is on).

Not covered: an outside writer inserting a row with an explicit pk below max(pk) (nothing
in the gateway does), or a file swapped under an open `Database` (README "Backup and
restore": stop the gateway first; an outbox made after a reopen counts again).

Thread-safe: store calls run in worker threads (`gateway.store.aio`).
"""

import sqlite3
import threading
from collections import Counter, deque
from collections.abc import Callable, Mapping
from typing import NamedTuple

StreamKey = tuple[str, str]  # (user id, resource value)
# An outbox item's group: provider, stage, window start, window end (UTC text or None).
Group = tuple[str, str, str | None, str | None]
# (max pk, epoch); None when the epoch row is missing (then every read counts again).
Version = tuple[int | None, int] | None
GroupKey = tuple[StreamKey, Group]

# Read inside the caller's transaction: both O(1) (the rowid b-tree's last entry; one row).
QUEUE_VERSION_SQL = "SELECT (SELECT max(pk) FROM outbox_item), n FROM outbox_epoch WHERE id = 1"
# Every group of every stream with its queued count: index-only, on the group index.
GROUP_COUNTS_SQL = (
    "SELECT user_id, resource, provider, stage, window_start, window_end, count(*)"
    " FROM outbox_item INDEXED BY ix_outbox_group WHERE state = 'queued'"
    " GROUP BY user_id, resource, provider, stage, window_start, window_end"
)


def version(cur: sqlite3.Cursor) -> Version:
    """The queue's version as the caller's transaction sees it."""
    row = cur.execute(QUEUE_VERSION_SQL).fetchone()
    return None if row is None else (row[0], row[1])


class Queued(NamedTuple):
    """Queued counts per stream and group, and the version of the snapshot they describe."""

    version: Version
    groups: Mapping[GroupKey, int]


class _Settle(NamedTuple):
    after: tuple[int, int]  # `_order` of the version its commit made
    taken: Counter[GroupKey]  # the recorded deliveries it took (`claims.Recorded.snapshot`)
    moved: Counter[GroupKey]  # the queued items it delivered


def _order(seen: tuple[int | None, int]) -> tuple[int, int]:
    # Committed versions only grow in this order: `n` never goes back, and while it stays
    # only inserts happen, which raise max(pk). So a snapshot's version says whether it
    # includes a given commit.
    return (seen[1], -1 if seen[0] is None else seen[0])


class QueueCounts:
    """Queued outbox items (delivered, dead and withdrawn excluded) per stream and group.

    Counts include deliveries recorded but not settled: `unsettled` gives what to subtract,
    as of the reader's snapshot.
    """

    # Settles that moved something, kept for a reader whose snapshot predates them (it
    # reads `unsettled` microseconds later; settles come seconds apart while draining).
    _HISTORY = 64

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: Version = None
        self._groups: Mapping[GroupKey, int] = {}
        self._pending: _Settle | None = None  # a settle between its commit and `settled`
        self._done: deque[_Settle] = deque(maxlen=self._HISTORY)
        # One settle at a time (`SqliteOutbox.settle_sync`, the uploader's idle one and the
        # background one): a settle's snapshot of the recorded deliveries must come after
        # the previous settle took its own off, or a delivery is subtracted twice.
        self.settle_lock = threading.Lock()

    def forget(self) -> None:
        """Count again at the next `read` (a database opened again: maybe a restored copy)."""
        with self._lock:
            self._version, self._groups = None, {}

    def read(self, cur: sqlite3.Cursor) -> Queued:
        """The counts as the caller's transaction sees the queue (not to be modified).

        Counted on `cur` (O(queued), index-only) only if the queue changed since they were
        last counted or followed.
        """
        now = version(cur)
        with self._lock:
            if now is not None and now == self._version:
                return Queued(now, self._groups)
        groups = {
            ((user, resource), (provider, stage, start, end)): count
            for user, resource, provider, stage, start, end, count in cur.execute(GROUP_COUNTS_SQL)
        }
        with self._lock:
            self._version, self._groups = now, groups
        return Queued(now, groups)

    def unsettled(
        self, seen: Version, recorded: Callable[[], Counter[GroupKey]]
    ) -> Counter[GroupKey]:
        """The recorded deliveries to subtract from counts `read` in a snapshot at `seen`.

        `recorded` (`claims.Recorded.snapshot`) says what is recorded now. A settle commits,
        then tells `settled`, which takes what it settled off `recorded`: a snapshot begun
        in between has the items delivered and still recorded (subtracted twice, a stream
        hidden, a batch's `remaining` too small), and one begun before the commit but read
        after `settled` has them queued and no longer recorded (`remaining` too large: no
        `is_final_chunk`). Each is corrected here by comparing versions.
        """
        with self._lock:
            counts = recorded()
            if seen is None:
                return counts
            at = _order(seen)
            if self._pending is not None and at >= self._pending.after:
                counts.subtract(self._pending.taken)
            for done in self._done:
                if at < done.after:
                    counts.update(done.moved)
            return counts

    def settling(self, after: Version, taken: Counter[GroupKey], moved: Counter[GroupKey]) -> None:
        """A settle is about to commit (its transaction made version `after`)."""
        with self._lock:
            self._pending = None if after is None else _Settle(_order(after), taken, moved)

    def abandon(self) -> None:
        """The settle `settling` announced did not commit."""
        with self._lock:
            self._pending = None

    def settled(
        self,
        before: Version,
        after: Version,
        moved: Counter[GroupKey],
        *,
        forget: Callable[[], None],
    ) -> None:
        """A settle committed: `moved` left the queue between versions `before` and `after`.

        `forget` takes what it settled off the recorded counts, atomically for `unsettled`.
        The counts follow only if they describe `before` (the write lock orders writers, so
        nothing else changed in between); otherwise the next `read` counts again.
        """
        with self._lock:
            forget()
            if self._pending is not None and self._pending.moved:  # else nothing to add back
                self._done.append(self._pending)
            self._pending = None
            if before is None or after is None or before != self._version:
                return
            groups = dict(self._groups)  # readers may hold the old mapping
            for key, count in moved.items():
                left = groups.get(key, 0) - count
                if left > 0:
                    groups[key] = left
                else:
                    groups.pop(key, None)
            self._version, self._groups = after, groups


def per_stream(groups: Mapping[GroupKey, int]) -> tuple[Counter[StreamKey], Counter[StreamKey]]:
    """Queued items per stream, and how many of them are in the historical stage."""
    queued: Counter[StreamKey] = Counter()
    historical: Counter[StreamKey] = Counter()
    for (stream, group), count in groups.items():
        queued[stream] += count
        if group[1] == "historical":
            historical[stream] += count
    return queued, historical
