import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
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


@contextmanager
def commits_failing(db: Database) -> Iterator[None]:
    """Every `db.write` fails at its commit, as on a full disk, until the block ends."""
    real = db.write

    @contextmanager
    def failing(**kwargs: Any) -> Iterator[Any]:
        with real(**kwargs) as session:
            yield session
            full = "database or disk is full"
            raise sqlite3.OperationalError(full)  # at commit

    db.write = failing  # type: ignore[method-assign]
    try:
        yield
    finally:
        del db.write  # the class's method again: the disk has room again
