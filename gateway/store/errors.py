"""Errors raised by the store.

Every message names the database file and ends with a remedy. The store never deletes,
truncates or overwrites a database it could not use: the operator decides.

```
StoreError                      anything the store cannot do
├── DatabaseCorruptError        the file is not a SQLite database, or fails its integrity check
├── DatabaseLockedError         another process holds the database lock past the busy timeout
├── DatabaseReadOnlyError       the file, its directory or the file system is read-only
├── DatabaseUnavailableError    the file cannot be opened at all (missing directory, permissions)
├── DatabaseStorageError        the disk is full or failed an I/O operation
├── SchemaTooNewError           the file was written by a newer gateway (downgrade refused)
├── ForeignDatabaseError        the file is another application's SQLite database
└── InvalidCursorError          a paging cursor that this store did not issue
```
"""

from pathlib import Path


class StoreError(Exception):
    """Base of every store error.

    Attributes:
        path: The database file concerned (None when no file is involved).
    """

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class DatabaseCorruptError(StoreError):
    """The database file is not SQLite or is damaged."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(
            f"{path}: database is corrupt ({detail}); stop the gateway, keep this file for "
            f"recovery (e.g. `sqlite3 {path} .recover`), then move it aside so a new one is "
            "created",
            path,
        )


class DatabaseLockedError(StoreError):
    """Another process holds the database lock for longer than the busy timeout."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(
            f"{path}: database is locked ({detail}); stop the other process using it "
            "(another gateway instance or an open sqlite3 shell) and try again",
            path,
        )


class DatabaseReadOnlyError(StoreError):
    """The database cannot be written."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(
            f"{path}: database is read-only ({detail}); make the file and its directory "
            "writable by the gateway user (WAL needs to create -wal and -shm files next to it)",
            path,
        )


class DatabaseUnavailableError(StoreError):
    """The database file cannot be opened at all."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(
            f"{path}: cannot open database ({detail}); check that `data_dir` exists and is "
            "writable by the gateway user",
            path,
        )


class DatabaseStorageError(StoreError):
    """The storage under the database failed (disk full, I/O error)."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(
            f"{path}: storage failed ({detail}); nothing of this commit was written: free disk "
            "space or check the storage device (the gateway keeps what it received and retries)",
            path,
        )


class SchemaTooNewError(StoreError):
    """The database schema is newer than this gateway understands."""

    def __init__(self, path: Path, found: int, supported: int) -> None:
        super().__init__(
            f"{path}: database schema version {found} is newer than this gateway supports "
            f"({supported}); upgrade the gateway, or restore a backup made by this version",
            path,
        )


class ForeignDatabaseError(StoreError):
    """The file is a SQLite database, but not an Edge Gateway store."""

    def __init__(self, path: Path, application_id: int) -> None:
        super().__init__(
            f"{path}: not an Edge Gateway database (application_id {application_id:#x}, "
            "tables the gateway did not create); point `data_dir` at the gateway's own "
            "directory, or move this file aside",
            path,
        )


class InvalidCursorError(StoreError):
    """A paging cursor the store did not issue (or issued for another query)."""

    def __init__(self, cursor: str) -> None:
        shown = cursor if len(cursor) <= 40 else cursor[:40] + "…"
        super().__init__(
            f"cursor {shown!r} is not valid; start again without a cursor and pass back the "
            "`next_cursor` of the previous page unchanged"
        )
