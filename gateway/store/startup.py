"""Opening a database file: checks, pragmas, migrations, one clear error if it cannot be used."""

import logging
import os
import sqlite3
from pathlib import Path

from gateway.store.db import BUSY_TIMEOUT_S, Database, create_sqlite_engine, translate_error
from gateway.store.errors import (
    DatabaseCorruptError,
    DatabaseUnavailableError,
    ForeignDatabaseError,
)
from gateway.store.migrations import APPLICATION_ID, migrate

_LOGGER = logging.getLogger(__name__)

DATABASE_FILENAME = "gateway.sqlite3"


def open_database(
    path: Path, *, busy_timeout_s: float = BUSY_TIMEOUT_S, check_integrity: bool = True
) -> Database:
    """Open (or create) the store at `path` and migrate it to the latest schema.

    The file is never deleted, truncated or replaced: an existing file is first inspected
    through a read-only connection, and any problem is raised as a `StoreError` naming the
    file and the remedy, with the file left byte for byte as it was.

    Args:
        path: The database file; its directory is created if missing.
        busy_timeout_s: How long to wait for another connection's lock.
        check_integrity: Run `PRAGMA quick_check` first (linear in the file size).

    Returns:
        The open database, at the latest schema version.

    Raises:
        StoreError: The file is corrupt, locked, read-only, foreign, too new or cannot be
            opened.
    """
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _create_private(path)
    except OSError as exc:
        raise DatabaseUnavailableError(path, exc.strerror or str(exc)) from exc
    if path.exists():
        if not path.is_file():
            raise DatabaseUnavailableError(path, "not a regular file")
        if path.stat().st_size > 0:
            _inspect(path, busy_timeout_s=busy_timeout_s, check_integrity=check_integrity)
    db = Database(path, create_sqlite_engine(path, busy_timeout_s=busy_timeout_s))
    try:
        before, after = migrate(db)
    except BaseException:
        db.close()
        raise
    if before != after:
        _LOGGER.info("%s: opened, schema %d → %d", path, before, after)
    return db


def _create_private(path: Path) -> None:
    """Create a new, empty database file readable by its owner only (health data).

    SQLite gives the -wal and -shm files the database file's permissions, so they follow.
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _inspect(path: Path, *, busy_timeout_s: float, check_integrity: bool) -> None:
    """Refuse a file that is not a healthy gateway store, without writing to it."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout_s)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            problems = []
            if check_integrity:
                problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check")]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        error = translate_error(exc, path)
        if error is None:
            raise
        raise error from exc
    if check_integrity and problems != ["ok"]:
        raise DatabaseCorruptError(path, "; ".join(problems[:3]))
    # Never add our tables to someone else's database: it is theirs, not a blank file.
    if app_id not in (0, APPLICATION_ID) or (version == 0 and tables):
        raise ForeignDatabaseError(path, app_id)
