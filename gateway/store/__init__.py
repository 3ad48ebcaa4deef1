"""The durable store: SQLite (WAL, synchronous=FULL) behind small, transaction-per-call functions.

Open a file with `open_database(path)`; every other function takes the returned `Database`.
Calls block: from the event loop use `asyncio.to_thread` (or `SqliteOutbox`, already async).
"""

from gateway.store.db import Database
from gateway.store.errors import (
    DatabaseCorruptError,
    DatabaseLockedError,
    DatabaseReadOnlyError,
    DatabaseStorageError,
    DatabaseUnavailableError,
    ForeignDatabaseError,
    InvalidCursorError,
    SchemaTooNewError,
    StoreError,
)
from gateway.store.startup import DATABASE_FILENAME, open_database

__all__ = [
    "DATABASE_FILENAME",
    "Database",
    "DatabaseCorruptError",
    "DatabaseLockedError",
    "DatabaseReadOnlyError",
    "DatabaseStorageError",
    "DatabaseUnavailableError",
    "ForeignDatabaseError",
    "InvalidCursorError",
    "SchemaTooNewError",
    "StoreError",
    "open_database",
]
