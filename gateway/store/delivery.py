"""Settling recorded deliveries (step 2 of `gateway.store.outbox`), in a caller's transaction.

Shared by the outbox's settle and by reparse, which settles a transfer's recorded deliveries
before it decides anything from a reading's state.
"""

from collections import Counter
from collections.abc import Sequence

from sqlmodel import Session

from gateway.store.db import dbapi_cursor
from gateway.store.enqueue import chunks
from gateway.store.outbox_sql import (
    DELIVER_READING_SQL,
    SETTLE_SQL,
    WAIT_FOR_CHANGE_SQL,
    settle_some_sql,
)
from gateway.store.queue_counts import GroupKey


def settle_recorded(session: Session, ids: Sequence[str] | None = None) -> Counter[GroupKey]:
    """Settle recorded deliveries inside the caller's write transaction.

    Their queued outbox rows and readings become delivered, the readings wait for the change
    order (`change_catch_up`), and the records go. `ids`: only these readings' records (a
    reparse settles its transfer's before it decides anything from a reading's state).

    Returns:
        How many outbox items became delivered, per stream and group
        (`gateway.store.queue_counts` follows a settle by them).
    """
    cur = dbapi_cursor(session)
    if ids is None:
        statements: list[tuple[str, tuple[str, ...]]] = [(SETTLE_SQL, ())]
    else:
        statements = [(settle_some_sql(len(c)), tuple(c)) for c in chunks(list(ids))]
    # Rows as they come, keeping (pk, reading id) only: up to `SETTLE_ITEMS` rows of eight
    # columns at once held ~4 MiB more at the settle's peak (`bench/run_rss.py` growth).
    settled: list[tuple[int, str]] = []
    moved: Counter[GroupKey] = Counter()
    for sql, params in statements:
        for pk, reading_id, *group in cur.execute(sql, params):
            settled.append((pk, reading_id))
            moved[((group[0], group[1]), (group[2], group[3], group[4], group[5]))] += 1
    settled.sort()  # outbox order: neighbouring readings share pages
    cur.executemany(DELIVER_READING_SQL, [(row[1],) for row in settled])
    cur.executemany(WAIT_FOR_CHANGE_SQL, [(row[1],) for row in settled])
    if ids is None:
        cur.execute("DELETE FROM outbox_delivery")
    else:
        cur.executemany("DELETE FROM outbox_delivery WHERE reading_id = ?", [(i,) for i in ids])
    return moved
