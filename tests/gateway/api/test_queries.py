"""Plans of the readings page (EXPLAIN QUERY PLAN; no ANALYZE statistics, as deployed)."""

import sqlite3
from datetime import UTC, datetime

import pytest

from drivers.readings import ReadingKind
from gateway.api import reading_rows
from gateway.api.queries import ReadingFilter, page_query
from gateway.store import DATABASE_FILENAME, open_database


@pytest.fixture
def db(tmp_path):
    database = open_database(tmp_path / DATABASE_FILENAME)
    yield database
    database.close()


def _plan(db, wanted: ReadingFilter) -> str:
    query = page_query(wanted, limit=50, after=7)
    compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
    with sqlite3.connect(db.path) as conn:
        return " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {compiled}"))


def test_a_kind_of_one_device_walks_the_device_kind_index_in_page_order(db):
    plan = _plan(db, ReadingFilter(kind=ReadingKind.GLUCOSE, device="c0:ff:ee:00:00:01"))
    assert "ix_reading_device_kind_change (device=? AND kind=? AND change_seq>?)" in plan, plan
    assert "TEMP B-TREE" not in plan


def test_a_kind_of_one_device_of_one_user_too(db):
    wanted = ReadingFilter(kind=ReadingKind.BODY, device="C0:FF:EE:00:00:02", user_id="u")
    plan = _plan(db, wanted)
    assert "ix_reading_device_kind_change" in plan, plan


@pytest.mark.parametrize(
    ("wanted", "index"),
    [
        (ReadingFilter(kind=ReadingKind.GLUCOSE, user_id="u"), "ix_reading_user_change"),
        (ReadingFilter(device="C0:FF:EE:00:00:01"), "ix_reading_device_change"),
        (ReadingFilter(kind=ReadingKind.GLUCOSE), "ix_reading_kind_change"),
    ],
)
def test_other_filters_keep_their_index(db, wanted, index):
    plan = _plan(db, wanted)
    assert index in plan, plan
    assert "TEMP B-TREE" not in plan


# ---------------------------------------------------------------- the lean page's statements

SINCE = datetime(2026, 11, 20, tzinfo=UTC)


def _lean_plan(db, sql: str, params: list) -> str:
    with sqlite3.connect(db.path) as conn:
        return " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))


@pytest.mark.parametrize(
    ("wanted", "index"),
    [
        (
            ReadingFilter(kind=ReadingKind.GLUCOSE, device="c0:ff:ee:00:00:01"),
            "(device=? AND kind=? AND change_seq>?)",
        ),
        (
            ReadingFilter(kind=ReadingKind.BODY, device="C0:FF:EE:00:00:02", user_id="u"),
            "ix_reading_device_kind_change",
        ),
        (ReadingFilter(kind=ReadingKind.GLUCOSE, user_id="u"), "ix_reading_user_change"),
        (ReadingFilter(device="C0:FF:EE:00:00:01"), "ix_reading_device_change"),
        (ReadingFilter(kind=ReadingKind.GLUCOSE), "ix_reading_kind_change"),
        (ReadingFilter(source="omron_ble"), "ix_reading_provider_change"),
        (ReadingFilter(), "sqlite_autoindex_reading_2 (change_seq>?)"),
    ],
)
def test_the_lean_page_uses_the_same_indexes(db, wanted, index):
    plan = _lean_plan(db, *reading_rows.page_sql(wanted, limit=50, after=7))
    assert index in plan, plan
    assert "TEMP B-TREE" not in plan, plan


def test_an_updated_since_page_past_the_earliest_change_walks_change_order_only(db):
    """No walk of every match when the page starts at or after the earliest change."""
    wanted = ReadingFilter(updated_since=SINCE)
    plan = _lean_plan(db, *reading_rows.page_sql(wanted, limit=50, after=7, seek_first=False))
    assert plan == "SEARCH reading USING INDEX sqlite_autoindex_reading_2 (change_seq>?)", plan


def test_finding_the_first_match_seeks_the_updated_index(db):
    wanted = ReadingFilter(updated_since=SINCE)
    plan = _lean_plan(db, *reading_rows.page_sql(wanted, limit=50, after=None))
    assert "COVERING INDEX ix_reading_updated_change (updated_at>?)" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
    earliest = _lean_plan(db, reading_rows.EARLIEST_CHANGED_SQL, ["x"])
    assert (
        earliest == "SEARCH reading USING COVERING INDEX ix_reading_updated_change (updated_at>?)"
    )
    span = _lean_plan(db, reading_rows.CHANGE_SPAN_SQL, [])
    assert "SCAN" not in span.replace("SCAN CONSTANT ROW", ""), span


@pytest.mark.parametrize(
    ("wanted", "index"),
    [
        (ReadingFilter(updated_since=SINCE), "COVERING INDEX ix_reading_updated_change"),
        (
            ReadingFilter(kind=ReadingKind.GLUCOSE, device="C0:FF:EE:00:00:01"),
            "COVERING INDEX ix_reading_device_kind_change",
        ),
        (ReadingFilter(user_id="u"), "COVERING INDEX ix_reading_user"),
    ],
)
def test_counts_are_index_only(db, wanted, index):
    plan = _lean_plan(db, *reading_rows.count_sql(wanted))
    assert index in plan, plan
    assert "SUBQUERY" not in plan, plan  # the count needs no start point
