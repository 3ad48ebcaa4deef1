"""Plans of the readings page (EXPLAIN QUERY PLAN; no ANALYZE statistics, as deployed)."""

import sqlite3

import pytest

from drivers.readings import ReadingKind
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
