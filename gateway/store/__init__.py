"""The durable store: SQLite (WAL, synchronous=FULL) behind small, transaction-per-call functions.

Open a file with `open_database(path)`; every other function takes the returned `Database`
and runs one transaction. Calls block: from the event loop use `aio.call(fn, ...)`
(`SqliteOutbox` is already async). SQLModel rows never leave this package.

Modules:

- `startup`: `open_database` (read-only inspection, quick_check, migrations).
- `db`: engine factory, pragmas, read/write transactions, SQLite error translation.
- `migrations`: ordered schema steps (`PRAGMA user_version`), one transaction each.
- `readings`: `save_transfer` (one transaction per transfer, idempotent by stable id),
  `get_reading`, `list_readings` (keyset paging), `assign_readings`, `assign_device_readings`.
- `attribution`: `resolve_attribution` (bindings and kiosk sessions, pure).
- `users`, `kiosk`, `devices`, `tokens`: the rest of the data the gateway keeps.
- `outbox`: `SqliteOutbox`, the durable `sync.outbox.Outbox`; `claims`: its in-memory claims and
  unsettled deliveries.
- `errors`: the `StoreError` tree; every message names the file and ends with a remedy.
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
