"""The SQL of the outbox's hot paths (`gateway.store.outbox`), on the store's partial indexes.

Public so tests/gateway/store/test_query_plans.py can check each plan with EXPLAIN QUERY PLAN.
"""

from collections.abc import Sequence
from typing import Any

from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from gateway.store.codec import READING_COLUMNS_SQL
from gateway.store.models import OutboxRow

# Each statement on the queue names its partial index (store v9): INDEXED BY makes SQLite refuse the
# statement rather than fall back to a scan, and ``state = 'queued'`` is a literal because
# a bound parameter never matches a partial index's WHERE. Times are UTC text (`utc_text`),
# whose order is time order.

# Queued items waiting for a retry (`not_before` after now): few, on their own index. Params:
# now. (The index also covers `claim_id`, a column store v12 no longer writes: claims live
# in memory, `gateway.store.claims`.)
RETRYING_SQL = (
    "SELECT user_id, resource, reading_id, not_before FROM outbox_item"
    " INDEXED BY ix_outbox_pending WHERE state = 'queued'"
    " AND (claim_id IS NOT NULL OR not_before IS NOT NULL) AND not_before > ?"
)
# Due: past any retry time. (A claimed item was due when it was claimed, so it still is.)
_DUE = "(not_before IS NULL OR not_before <= ?)"
# Not recorded as delivered (step 1 in `gateway.store.outbox`): one probe of outbox_delivery's
# key per row walked. Its rows are at most `outbox.SETTLE_ITEMS` or `SETTLE_AFTER_S` of
# deliveries.
NOT_RECORDED = (
    "NOT EXISTS (SELECT 1 FROM outbox_delivery AS d WHERE d.reading_id = outbox_item.reading_id)"
)
# A stream's head: its oldest queued item that is due or claimed, i.e. not waiting for a
# retry. Params: user, resource, now.
HEAD_SQL = (
    "SELECT reading_id, stage FROM outbox_item INDEXED BY ix_outbox_queue"  # noqa: S608 - constants
    f" WHERE user_id = ? AND resource = ? AND state = 'queued' AND {_DUE} AND {NOT_RECORDED}"
    " ORDER BY enqueued_at, reading_id LIMIT 1"
)
# The group of a stream's oldest due item (the caller has checked that the stream has no
# live claim). Params: user, resource, now.
FIRST_DUE_SQL = (
    "SELECT reading_id, provider, stage, window_start, window_end FROM outbox_item"  # noqa: S608 - constants
    " INDEXED BY ix_outbox_queue WHERE user_id = ? AND resource = ? AND state = 'queued'"
    f" AND {_DUE} AND {NOT_RECORDED} ORDER BY enqueued_at, reading_id LIMIT 1"
)
# A batch: the oldest due items of one group.
# Params: user, resource, now, provider, stage, window start, window end, limit.
BATCH_SQL = (
    "SELECT pk, enqueued_at, attempts, reading_id, not_before"  # noqa: S608 - constants
    " FROM outbox_item INDEXED BY ix_outbox_queue"
    " WHERE user_id = ? AND resource = ? AND state = 'queued'"
    f" AND {_DUE} AND {NOT_RECORDED}"
    " AND provider = ? AND stage = ? AND window_start IS ? AND window_end IS ?"
    " ORDER BY enqueued_at, reading_id LIMIT ?"
)
# What an earlier process recorded and did not settle, per stream and group.
RECORDED_SQL = (
    "SELECT o.user_id, o.resource, o.provider, o.stage, o.window_start, o.window_end,"
    " count(*) FROM outbox_delivery AS d JOIN outbox_item AS o ON o.reading_id = d.reading_id"
    " WHERE +o.state = 'queued' GROUP BY 1, 2, 3, 4, 5, 6"
)
# Recorded, unsettled deliveries of one group's queued items, as the caller's snapshot sees
# them: a historical batch's `remaining` (Junction's `is_final_chunk`). Two walks, for the
# caller to take the shorter: outbox_delivery (at most `outbox.SETTLE_ITEMS` rows, one
# outbox_item probe each), or the group's queued rows (one outbox_delivery probe each).
# Params: user, resource, provider, stage, window start, window end.
RECORDED_IN_GROUP_SQL = (
    "SELECT count(*) FROM outbox_delivery AS d CROSS JOIN outbox_item AS o"
    " ON o.reading_id = d.reading_id WHERE o.user_id = ? AND o.resource = ?"
    " AND o.provider = ? AND o.stage = ? AND o.window_start IS ? AND o.window_end IS ?"
    " AND o.state = 'queued'"
)
GROUP_RECORDED_SQL = (
    "SELECT count(*) FROM outbox_item INDEXED BY ix_outbox_group"  # noqa: S608 - constants
    " WHERE user_id = ? AND resource = ? AND provider = ? AND stage = ?"
    " AND window_start IS ? AND window_end IS ? AND state = 'queued'"
    f" AND NOT {NOT_RECORDED}"
)
# Recording a 2xx (`complete`). Params: reading id, delivered-at.
RECORD_DELIVERY_SQL = "INSERT INTO outbox_delivery (reading_id, delivered_at) VALUES (?, ?)"
# What a settle returns of each row it moved: its key, then its stream and group.
_SETTLED = "pk, reading_id, user_id, resource, provider, stage, window_start, window_end"
# Settling recorded deliveries: their queued outbox rows become delivered (a row no longer
# queued, e.g. withdrawn by a reparse, is left alone; a reparse that queues a corrected
# reading again deletes its recorded delivery, `gateway.reparse`).
SETTLE_SQL = (
    "UPDATE outbox_item SET state = 'delivered', delivered_at = (SELECT d.delivered_at"  # noqa: S608 - constants
    " FROM outbox_delivery AS d WHERE d.reading_id = outbox_item.reading_id)"
    " WHERE reading_id IN (SELECT reading_id FROM outbox_delivery) AND +state = 'queued'"
    f" RETURNING {_SETTLED}"
)


def settle_some_sql(count: int) -> str:
    """`SETTLE_SQL` for the recorded deliveries of `count` reading ids."""
    marks = ", ".join("?" * count)
    return (
        "UPDATE outbox_item SET state = 'delivered', delivered_at = (SELECT d.delivered_at"  # noqa: S608 - placeholders only
        " FROM outbox_delivery AS d WHERE d.reading_id = outbox_item.reading_id)"
        " WHERE reading_id IN (SELECT reading_id FROM outbox_delivery"
        f" WHERE reading_id IN ({marks})) AND +state = 'queued' RETURNING {_SETTLED}"
    )


# ... their readings become delivered (`state` is in no index of `reading`) ...
DELIVER_READING_SQL = "UPDATE reading SET state = 'delivered' WHERE id = ?"
# ... and wait for their place in the change order. Params: reading id.
WAIT_FOR_CHANGE_SQL = "INSERT INTO change_catch_up (reading_id) VALUES (?)"
# The change order's oldest waiting readings. Params: limit.
CATCH_UP_SQL = "SELECT pk, reading_id FROM change_catch_up ORDER BY pk LIMIT ?"


def readings_sql(count: int) -> str:
    """`ReadingColumns` of `count` readings by id (the reading id unique index)."""
    marks = ", ".join("?" * count)
    return f"SELECT {READING_COLUMNS_SQL} FROM reading WHERE id IN ({marks})"  # noqa: S608 - placeholders only


def delivered_sql(count: int) -> str:
    """Queued items among `count` reading ids not recorded as delivered yet.

    Found on the reading_id unique index.

    ``+state`` keeps SQLite off the (state, dead_at) index, which made `complete` a scan of
    every queued row (issue 18: 47 ms per batch at 100k queued).
    """
    marks = ", ".join("?" * count)
    return (
        "SELECT pk, reading_id, user_id, resource, enqueued_at,"  # noqa: S608 - placeholders only
        " provider, stage, window_start, window_end FROM outbox_item"
        f" WHERE reading_id IN ({marks}) AND +state = 'queued' AND {NOT_RECORDED}"
    )


def unindexed(column: Any) -> Any:
    """``column || ''``: keeps SQLite off the (state, dead_at) index for ``state = ?``.

    It would otherwise pick that index for ``reading_id IN (…) AND state = ?`` and scan
    every queued row (issue 18).
    """
    return col(column).op("||")("")


def held_query(ids: Sequence[str]) -> "SelectOfScalar[OutboxRow]":
    """Rows among `ids` still queued, found on the reading_id index."""
    return select(OutboxRow).where(
        col(OutboxRow.reading_id).in_(ids), unindexed(OutboxRow.state) == "queued"
    )
