"""Opening a database file: checks, pragmas, migrations, one clear error if it cannot be used."""

import logging
from pathlib import Path

from gateway.store.db import BUSY_TIMEOUT_S, Database, create_sqlite_engine
from gateway.store.errors import DatabaseCorruptError, DatabaseUnavailableError
from gateway.store.migrations import migrate

_LOGGER = logging.getLogger(__name__)

DATABASE_FILENAME = "gateway.sqlite3"


def open_database(
    path: Path, *, busy_timeout_s: float = BUSY_TIMEOUT_S, check_integrity: bool = True
) -> Database:
    """Open (or create) the store at `path` and migrate it to the latest schema.

    The file is never deleted, truncated or replaced: any problem is raised as a
    `StoreError` naming the file and the remedy, and the file is left as it was.

    Args:
        path: The database file; its directory is created if missing.
        busy_timeout_s: How long to wait for another connection's lock.
        check_integrity: Run `PRAGMA quick_check` first (linear in the file size).

    Returns:
        The open database, at the latest schema version.

    Raises:
        StoreError: The file is corrupt, locked, read-only, too new or cannot be opened.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseUnavailableError(path, exc.strerror or str(exc)) from exc
    if path.exists() and not path.is_file():
        raise DatabaseUnavailableError(path, "not a regular file")
    db = Database(path, create_sqlite_engine(path, busy_timeout_s=busy_timeout_s))
    try:
        if check_integrity:
            _quick_check(db)
        before, after = migrate(db)
    except BaseException:
        db.close()
        raise
    if before != after:
        _LOGGER.info("%s: opened, schema %d → %d", path, before, after)
    return db


def _quick_check(db: Database) -> None:
    with db.read() as session:
        conn = session.connection()
        rows = [str(row[0]) for row in conn.exec_driver_sql("PRAGMA quick_check").all()]
    if rows != ["ok"]:
        raise DatabaseCorruptError(db.path, "; ".join(str(row) for row in rows[:3]))
