import sqlite3
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.store import DATABASE_FILENAME, Database, open_database

ZONE = ZoneInfo("Europe/Berlin")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / DATABASE_FILENAME


@pytest.fixture
def db(db_path: Path) -> Iterator[Database]:
    database = open_database(db_path)
    yield database
    database.close()


def count_rows(db: Database, table: str) -> int:
    """Rows in `table`, through a separate connection (only what was committed)."""
    with sqlite3.connect(db.path) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
