"""Connection settings and transactions of `gateway.store.db.Database` (issue 18)."""

import sqlite3

from gateway.store.db import PAGE_CACHE_KIB, WAL_AUTOCHECKPOINT_PAGES, WAL_SIZE_LIMIT_BYTES


def _pragma(session, name):
    return session.connection().exec_driver_sql(f"PRAGMA {name}").scalar()


def test_wal_checkpoints_are_set_deliberately(db):
    with db.read() as session:
        assert _pragma(session, "wal_autocheckpoint") == WAL_AUTOCHECKPOINT_PAGES
        assert _pragma(session, "journal_size_limit") == WAL_SIZE_LIMIT_BYTES


def test_each_connection_keeps_a_small_page_cache(db):
    """A drain touches every page of its backlog: the cache, not the data, set run's growth."""
    with db.read() as session:
        assert _pragma(session, "cache_size") == -PAGE_CACHE_KIB


def test_a_relaxed_write_commits_and_leaves_the_connection_durable(db):
    with db.write(durable=False) as session:
        assert _pragma(session, "synchronous") == 1  # NORMAL for this transaction only
        session.connection().exec_driver_sql(
            "INSERT INTO user_hold (user_id, hold) VALUES ('u', 'paused')"
        )
    with sqlite3.connect(db.path) as other:  # committed: another connection sees it
        assert other.execute("SELECT hold FROM user_hold").fetchall() == [("paused",)]
    for _ in range(3):  # every pooled connection is back to FULL
        with db.write() as session:
            assert _pragma(session, "synchronous") == 2
        with db.read() as session:
            assert _pragma(session, "synchronous") == 2


def test_a_failed_relaxed_write_rolls_back(db):
    try:
        with db.write(durable=False) as session:
            session.connection().exec_driver_sql(
                "INSERT INTO user_hold (user_id, hold) VALUES ('u', 'paused')"
            )
            raise RuntimeError("boom")  # noqa: EM101, TRY301
    except RuntimeError:
        pass
    with db.read() as session:
        assert session.connection().exec_driver_sql("SELECT count(*) FROM user_hold").scalar() == 0
        assert _pragma(session, "synchronous") == 2
