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

Thread-safe: store calls run in worker threads (`gateway.store.aio`).
"""

import sqlite3
import threading
from collections import Counter
from collections.abc import Mapping

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


class QueueCounts:
    """Queued outbox items (delivered, dead and withdrawn excluded) per stream and group.

    Counts include deliveries recorded but not settled (`claims.Recorded` subtracts them).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: Version = None
        self._groups: Mapping[GroupKey, int] = {}

    def read(self, cur: sqlite3.Cursor) -> Mapping[GroupKey, int]:
        """The counts as the caller's transaction sees the queue (not to be modified).

        Counted on `cur` (O(queued), index-only) only if the queue changed since they were
        last counted or followed.
        """
        now = version(cur)
        with self._lock:
            if now is not None and now == self._version:
                return self._groups
        groups = {
            ((user, resource), (provider, stage, start, end)): count
            for user, resource, provider, stage, start, end, count in cur.execute(GROUP_COUNTS_SQL)
        }
        with self._lock:
            self._version, self._groups = now, groups
        return groups

    def settled(self, before: Version, after: Version, moved: Counter[GroupKey]) -> None:
        """A settle committed: `moved` left the queue between versions `before` and `after`.

        Followed only if the counts describe `before` (the write lock orders writers, so
        nothing else changed in between); otherwise the next `read` counts again.
        """
        with self._lock:
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
