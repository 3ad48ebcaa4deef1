"""The outbox's hot-path statements run on their indexes (EXPLAIN QUERY PLAN, store v9).

A plan is what SQLite chooses without ANALYZE statistics, which is how the gateway runs.
Each statement must walk its index: no full scan of `outbox_item` and no temporary B-tree
(a sort of the whole stream), whatever the number of rows.
"""

import sqlite3

import pytest

from gateway.store import outbox_sql, queue_counts

T = "2026-11-20T12:00:00.000000+00:00"

STATEMENTS = {
    "group counts": (queue_counts.GROUP_COUNTS_SQL, ()),
    "queue version": (queue_counts.QUEUE_VERSION_SQL, ()),
    "retrying": (outbox_sql.RETRYING_SQL, (T,)),
    "head": (outbox_sql.HEAD_SQL, ("u", "glucose", T)),
    "first due": (outbox_sql.FIRST_DUE_SQL, ("u", "glucose", T)),
    "batch": (outbox_sql.BATCH_SQL, ("u", "glucose", T, "p", "daily", None, None, 500)),
    "delivered": (outbox_sql.delivered_sql(3), ("a", "b", "c")),
    "settle": (outbox_sql.SETTLE_SQL, ()),
    "deliver reading": (outbox_sql.DELIVER_READING_SQL, ("a",)),
    "catch up": (outbox_sql.CATCH_UP_SQL, (2000,)),
    "recorded in group": (
        outbox_sql.RECORDED_IN_GROUP_SQL,
        ("u", "glucose", "p", "historical", T, T),
    ),
    "group recorded": (outbox_sql.GROUP_RECORDED_SQL, ("u", "glucose", "p", "historical", T, T)),
}


def _plan(db, sql, params) -> list[str]:
    with sqlite3.connect(db.path) as conn:
        return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_no_scan_and_no_sort(db, name):
    sql, params = STATEMENTS[name]
    plan = _plan(db, sql, params)
    assert not any(step.startswith("SCAN outbox_item ") and "INDEX" not in step for step in plan)
    assert not any("TEMP B-TREE" in step for step in plan), plan


@pytest.mark.parametrize(
    ("name", "index"),
    [
        ("head", "ix_outbox_queue"),
        ("first due", "ix_outbox_queue"),
        ("batch", "ix_outbox_queue"),
        ("retrying", "ix_outbox_pending"),
        ("group counts", "COVERING INDEX ix_outbox_group"),
        ("delivered", "INDEX sqlite_autoindex_outbox_item_1"),
        ("recorded in group", "INDEX sqlite_autoindex_outbox_item_1"),
        ("group recorded", "INDEX ix_outbox_group"),
    ],
)
def test_each_statement_uses_its_index(db, name, index):
    sql, params = STATEMENTS[name]
    plan = " | ".join(_plan(db, sql, params))
    assert index in plan, plan
    if name in {"head", "first due", "batch"}:
        assert "(user_id=? AND resource=?" in plan, plan  # a range of one stream, not all


def test_the_queue_version_reads_two_rows_not_the_queue(db):
    """Checked before every use of the kept counts (`gateway.store.queue_counts`): O(1)."""
    plan = _plan(db, queue_counts.QUEUE_VERSION_SQL, ())
    assert "SEARCH outbox_epoch USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
    assert "SEARCH outbox_item" in " | ".join(plan), plan  # max(pk): the rowid b-tree's end


def test_the_batch_reads_each_reading_by_its_id(db):
    plan = " | ".join(_plan(db, outbox_sql.readings_sql(3), ("a", "b", "c")))
    assert "SEARCH reading USING INDEX sqlite_autoindex_reading_1 (id=?)" in plan, plan


def test_the_queue_s_walks_pass_over_recorded_deliveries_by_key(db):
    """A delivery recorded but not settled is skipped with one probe of outbox_delivery's
    key per row walked: not a scan of the recorded deliveries."""
    for name in ("head", "first due", "batch", "delivered"):
        sql, params = STATEMENTS[name]
        plan = " | ".join(_plan(db, sql, params))
        assert "SEARCH d USING PRIMARY KEY (reading_id=?)" in plan, (name, plan)


def test_settling_walks_the_recorded_deliveries_not_the_queue(db):
    """Each recorded delivery finds its outbox row on the reading_id index: cost follows
    the deliveries, not the queue (no scan of ix_outbox_queue or of the table)."""
    plan = " | ".join(_plan(db, outbox_sql.SETTLE_SQL, ()))
    assert "SEARCH outbox_item USING INDEX sqlite_autoindex_outbox_item_1 (reading_id=?)" in plan
    assert "SCAN outbox_item" not in plan, plan
    reading = " | ".join(_plan(db, outbox_sql.DELIVER_READING_SQL, ("a",)))
    assert "SEARCH reading USING INDEX sqlite_autoindex_reading_1 (id=?)" in reading, reading


def test_the_change_order_catch_up_walks_the_waiting_readings_oldest_first(db):
    """Neither a sort of what waits nor a look at the queue: a walk of change_catch_up's
    rowid (the settle order), `limit` rows long."""
    plan = " | ".join(_plan(db, outbox_sql.CATCH_UP_SQL, (2000,)))
    assert plan == "SCAN change_catch_up", plan


def test_settling_a_claim_finds_its_rows_by_reading_id(db):
    """retry_later / release / dead_letter: not a scan of every queued row on (state, dead_at)."""
    query = outbox_sql.held_query(["a", "b"])
    compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
    plan = " | ".join(_plan(db, str(compiled), ()))
    assert "sqlite_autoindex_outbox_item_1 (reading_id=?)" in plan, plan
