import sqlite3

import pytest
from sqlalchemy import inspect
from sqlmodel import SQLModel

from gateway.store import open_database
from gateway.store.codec import reading_columns
from gateway.store.db import Database, create_sqlite_engine
from gateway.store.migrations import LATEST_VERSION, MIGRATIONS, Migration, migrate
from gateway.store.outbox import SqliteOutbox
from gateway.store.readings import get_reading, save_transfer
from gateway.store.types import utc_text
from gateway.store.users import bind
from tests.gateway.store.conftest import ZONE
from tests.sync.factories import glucose


def _version(path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def test_a_new_file_gets_the_latest_schema(db):
    assert _version(db.path) == LATEST_VERSION == MIGRATIONS[-1].version
    assert [m.version for m in MIGRATIONS] == list(range(1, LATEST_VERSION + 1))


def test_the_migrated_schema_matches_the_models(db):
    inspector = inspect(db.engine)
    tables = set(inspector.get_table_names()) - {"sqlite_sequence"}
    assert tables == set(SQLModel.metadata.tables)
    for name, table in SQLModel.metadata.tables.items():
        columns = {c["name"]: c for c in inspector.get_columns(name)}
        assert set(columns) == {c.name for c in table.columns}, name
        for column in table.columns:
            if not column.primary_key:
                assert columns[column.name]["nullable"] == column.nullable, (name, column.name)
        assert set(inspector.get_pk_constraint(name)["constrained_columns"]) == {
            c.name for c in table.primary_key.columns
        }, name


def test_reopening_migrates_nothing(db_path):
    open_database(db_path).close()
    db = Database(db_path, create_sqlite_engine(db_path))
    assert migrate(db) == (LATEST_VERSION, LATEST_VERSION)
    db.close()


async def test_upgrade_from_version_1_keeps_data(db_path):
    old = Database(db_path, create_sqlite_engine(db_path))
    assert migrate(old, target=1) == (0, 1)
    bind(old, "C0:FF:EE:00:00:01", "user-a")
    # Version 1 had no outbox: write what a version-1 gateway wrote, straight into the tables.
    reading = glucose(1)
    columns = reading_columns(reading, ZONE)
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "INSERT INTO reading (id, kind, device, provider, received_at, dt_year, dt_month,"
            " dt_day, dt_hour, dt_minute, dt_second, dt_offset_minutes, start_date, time_zone,"
            " sequence, flags_json, values_json, user_id, attributed_by, upload_provider, state,"
            " created_at, updated_at, change_seq) VALUES"
            " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'user-a', 'binding', ?,"
            " 'queued', ?, ?, 1)",
            (
                columns["id"],
                columns["kind"],
                columns["device"],
                columns["provider"],
                utc_text(columns["received_at"]),
                *(columns[f"dt_{f}"] for f in ("year", "month", "day", "hour", "minute")),
                columns["dt_second"],
                columns["dt_offset_minutes"],
                utc_text(columns["start_date"]),
                columns["time_zone"],
                columns["sequence"],
                columns["flags_json"],
                columns["values_json"],
                columns["provider"],
                utc_text(reading.received_at),
                utc_text(reading.received_at),
            ),
        )
    old.close()
    assert _version(db_path) == 1

    db = open_database(db_path)
    assert _version(db_path) == LATEST_VERSION
    stored = get_reading(db, reading.id)
    assert stored is not None
    assert stored.reading == reading
    assert stored.user_id == "user-a"
    # The reading a version-1 gateway had marked queued is now in the outbox.
    [stream] = await SqliteOutbox(db, zone=ZONE).streams(reading.received_at)
    assert (stream.user_id, stream.queued) == ("user-a", 1)
    # And the upgraded store keeps working.
    assert save_transfer(db, [reading, glucose(2)], zone=ZONE).new == 1
    db.close()


def test_a_failing_step_leaves_the_previous_version_intact(db_path):
    db = Database(db_path, create_sqlite_engine(db_path))
    migrate(db, target=1)
    broken = Migration(2, "broken", ("CREATE TABLE half_done (x)", "THIS IS NOT SQL"))
    with pytest.raises(Exception, match="syntax error"):
        migrate(db, steps=(MIGRATIONS[0], broken))
    db.close()
    assert _version(db_path) == 1
    with sqlite3.connect(db_path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "half_done" not in tables, "DDL is transactional: the half-applied step rolled back"
    open_database(db_path).close()
    assert _version(db_path) == LATEST_VERSION


async def test_a_delivery_version_12_recorded_is_settled_after_the_upgrade(db_path):
    old = Database(db_path, create_sqlite_engine(db_path))
    migrate(old, target=12)
    bind(old, "C0:FF:EE:00:00:01", "user-a")
    save_transfer(old, [glucose(1), glucose(2)], zone=ZONE)
    first, second = glucose(1).id, glucose(2).id
    with sqlite3.connect(db_path) as conn:  # what a v12 gateway left after a 2xx for one
        conn.execute(
            "INSERT INTO outbox_delivery (reading_id, delivered_at) VALUES (?, ?)",
            (first, "2026-11-30T10:00:00.000000+00:00"),
        )
    old.close()
    db = open_database(db_path)
    outbox = SqliteOutbox(db, zone=ZONE)
    [stream] = await outbox.streams(glucose(1).received_at)
    assert stream.queued == 1
    await outbox.settled()  # an earlier process's leftovers: settled at once, in the background
    assert get_reading(db, first).state.value == "delivered"
    assert get_reading(db, second).state.value == "queued"
    with sqlite3.connect(db_path) as conn:
        items = dict(conn.execute("SELECT reading_id, state FROM outbox_item"))
        delivered_at = conn.execute(
            "SELECT delivered_at FROM outbox_item WHERE reading_id = ?", (first,)
        ).fetchone()
    assert items == {first: "delivered", second: "queued"}
    assert delivered_at == ("2026-11-30T10:00:00.000000+00:00",)
    db.close()


async def test_version_13_queue_counts_are_kept_after_the_upgrade(db_path):
    """v14 adds the epoch the kept queue counts are checked against, and its triggers."""
    old = Database(db_path, create_sqlite_engine(db_path))
    migrate(old, target=13)
    bind(old, "C0:FF:EE:00:00:01", "user-a")
    save_transfer(old, [glucose(1), glucose(2), glucose(3)], zone=ZONE)
    old.close()
    db = open_database(db_path)
    outbox = SqliteOutbox(db, zone=ZONE)
    [stream] = await outbox.streams(glucose(1).received_at)
    assert (stream.queued, stream.historical) == (3, 0)
    with sqlite3.connect(db_path) as conn:
        triggers = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        }
        (epoch,) = conn.execute("SELECT n FROM outbox_epoch").fetchone()
        conn.execute("UPDATE outbox_item SET state = 'dead' WHERE reading_id = ?", (glucose(3).id,))
        assert conn.execute("SELECT n FROM outbox_epoch").fetchone() == (epoch + 1,)
        indexes = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
    assert triggers == {"tr_outbox_epoch_update", "tr_outbox_epoch_delete"}
    assert "ix_outbox_historical" not in indexes  # historical counts come from the kept counts
    [stream] = await outbox.streams(glucose(1).received_at)
    assert stream.queued == 2
    db.close()
