"""Read-only snapshots for hot reads: consistent, unable to write, pooled, closed with the store."""

import sqlite3
import threading

import pytest

from gateway.store import DATABASE_FILENAME, open_database, snapshots
from gateway.store.errors import DatabaseReadOnlyError


@pytest.fixture
def db(tmp_path):
    database = open_database(tmp_path / DATABASE_FILENAME)
    yield database
    database.close()


def _insert_token(db, digest: str) -> None:
    with sqlite3.connect(db.path) as other:
        other.execute(
            "INSERT INTO api_token (token_hash, scope, created_at) VALUES (?, 'read', 'x')",
            (digest,),
        )


def test_a_snapshot_does_not_see_a_commit_made_during_it(db):
    _insert_token(db, "a")
    with snapshots.snapshot(db) as cursor:
        before = cursor.execute("SELECT count(*) FROM api_token").fetchone()[0]
        _insert_token(db, "b")
        during = cursor.execute("SELECT count(*) FROM api_token").fetchone()[0]
    with snapshots.snapshot(db) as cursor:
        after = cursor.execute("SELECT count(*) FROM api_token").fetchone()[0]
    assert (before, during, after) == (1, 1, 2)


def test_a_snapshot_cannot_write(db):
    _insert_token(db, "a")
    with pytest.raises(DatabaseReadOnlyError), snapshots.snapshot(db) as cursor:
        cursor.execute("DELETE FROM api_token")
    with snapshots.snapshot(db) as cursor:
        assert cursor.execute("SELECT count(*) FROM api_token").fetchone() == (1,)


def test_an_error_in_the_body_keeps_the_connection_usable(db):
    with pytest.raises(sqlite3.OperationalError), snapshots.snapshot(db) as cursor:
        cursor.execute("SELECT * FROM no_such_table")
    with snapshots.snapshot(db) as cursor:
        assert cursor.execute("SELECT 1").fetchone() == (1,)


def test_at_most_pool_size_connections_and_waiting_threads_get_one(db):
    inside = threading.Barrier(snapshots.POOL_SIZE + 1)
    release = threading.Event()
    finished: list[int] = []

    def reader(n: int) -> None:
        with snapshots.snapshot(db) as cursor:
            cursor.execute("SELECT 1").fetchone()
            if n < snapshots.POOL_SIZE:
                inside.wait(5)
                release.wait(5)
        finished.append(n)

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(snapshots.POOL_SIZE + 2)]
    for thread in threads:
        thread.start()
    inside.wait(5)  # POOL_SIZE readers hold every connection
    assert finished == []  # the others wait for one
    release.set()
    for thread in threads:
        thread.join(5)
    assert sorted(finished) == list(range(snapshots.POOL_SIZE + 2))


def test_closing_the_store_closes_its_snapshot_connections(db):
    with snapshots.snapshot(db) as cursor:
        cursor.execute("SELECT 1")
        conn = cursor.connection
    db.close()
    with pytest.raises(sqlite3.ProgrammingError):
        conn.execute("SELECT 1")
    with pytest.raises(sqlite3.ProgrammingError, match="closed"), snapshots.snapshot(db):
        pass
