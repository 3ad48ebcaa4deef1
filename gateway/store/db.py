"""One SQLite database file: the engine, its pragmas, transactions and error translation.

Every connection runs with `journal_mode=WAL`, `synchronous=FULL` (a commit is on disk when
it returns, DESIGN.md §4 "Nothing lost"), `foreign_keys=ON` and a busy timeout. Write
transactions start with `BEGIN IMMEDIATE` and are serialised in-process by a lock, so two
threads of the gateway never race for the write lock and a read-then-write transaction
never fails half-way with SQLITE_BUSY.

SQLite exceptions are translated into `gateway.store.errors` here and nowhere else.
"""

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session, create_engine

from gateway.store.errors import (
    DatabaseCorruptError,
    DatabaseLockedError,
    DatabaseReadOnlyError,
    DatabaseStorageError,
    DatabaseUnavailableError,
    StoreError,
)

_LOGGER = logging.getLogger(__name__)

# Long enough to ride out a checkpoint or a backup holding the lock; short enough that a
# second gateway instance fails with a clear message instead of hanging.
BUSY_TIMEOUT_S = 5.0

_WRITE_OPTION = "gateway_write"

WAL_AUTOCHECKPOINT_PAGES = 4000
WAL_SIZE_LIMIT_BYTES = 16 * 2**20

# Primary SQLite result codes (the low byte of the extended code).
_SQLITE_PERM = 3
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26


def translate_error(exc: BaseException, path: Path) -> StoreError | None:
    """The store error for a SQLite failure, or None if it is not a database-file problem."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if not isinstance(orig, sqlite3.Error):
        return None
    code = (getattr(orig, "sqlite_errorcode", None) or 0) & 0xFF
    detail = str(orig)
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return DatabaseCorruptError(path, detail)
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return DatabaseLockedError(path, detail)
    if code == _SQLITE_READONLY:
        return DatabaseReadOnlyError(path, detail)
    if code in (_SQLITE_FULL, _SQLITE_IOERR):
        return DatabaseStorageError(path, detail)
    if code in (_SQLITE_CANTOPEN, _SQLITE_PERM):
        return DatabaseUnavailableError(path, detail)
    return None


def dbapi_cursor(session: Session) -> sqlite3.Cursor:
    """A DB-API cursor on the session's connection, inside its transaction.

    For hot paths, where SQLAlchemy's per-statement overhead was most of the cost (issue 18).
    """
    raw = session.connection().connection.driver_connection
    assert isinstance(raw, sqlite3.Connection)  # noqa: S101 - the store is SQLite only
    return raw.cursor()


PAGE_CACHE_KIB = 256  # per engine connection (see `_on_connect`)


def create_sqlite_engine(path: Path, *, busy_timeout_s: float = BUSY_TIMEOUT_S) -> Engine:
    """An engine for one database file, with the gateway's pragmas on every connection."""
    url = URL.create("sqlite", database=str(path))
    engine = create_engine(
        url,
        # Store calls run in worker threads; the pool hands each connection to one at a time.
        connect_args={"check_same_thread": False, "timeout": busy_timeout_s},
    )
    busy_ms = int(busy_timeout_s * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself, so DDL is transactional too
        # (pysqlite's legacy mode would commit implicitly before DDL).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                msg = f"journal_mode is {mode}, WAL unavailable"
                raise sqlite3.OperationalError(msg)
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
            # Checkpoint deliberately: one uploaded batch's commit writes ~1,350 WAL pages,
            # past SQLite's default threshold of 1,000, so every batch also checkpointed
            # (copy back + fsync of the database file). At 4,000 pages (16 MiB at 4 KiB) a
            # checkpoint comes every few batches; journal_size_limit truncates the WAL file
            # back to 16 MiB afterwards, so a drain leaves no large file behind (issue 18).
            cursor.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
            cursor.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
            # Each pooled connection keeps its own page cache, and a drain touches every
            # page of the backlog: at SQLite's default 2 MiB a connection, `run` grew by
            # ~22 MiB while draining 100k readings, by 6-7 MiB at 256 KiB with no loss of
            # drain or save rate (the OS page cache holds the file anyway; issue 18).
            cursor.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


class Database:
    """One open database file: short transactions over a single engine.

    Attributes:
        path: The database file.
        engine: The engine (tests and migrations use it directly).
    """

    def __init__(self, path: Path, engine: Engine) -> None:
        self.path = path
        self.engine = engine
        self._write_engine = engine.execution_options(**{_WRITE_OPTION: True})
        self._write_lock = threading.Lock()
        self._on_close: list[Callable[[], object]] = []

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read transaction (a consistent snapshot); nothing is committed."""
        with self.translated(), Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[Session]:
        """A write transaction, committed (and on disk) when the block exits without error.

        Args:
            durable: False for state a crash may lose because start-up rebuilds it anyway
                (outbox claims: the uploader releases every claim when it starts). The commit
                is then atomic and ordered before every later commit, but not fsynced itself
                (``synchronous = NORMAL`` for this transaction; the next durable commit syncs
                it too). Saves one fsync per uploaded batch (issue 18).
        """
        if durable:
            with (
                self._write_lock,
                self.translated(),
                Session(self._write_engine, expire_on_commit=False) as session,
                session.begin(),
            ):
                yield session
            return
        # SQLite refuses to change the safety level inside a transaction: set it on the
        # connection before BEGIN and put it back after the commit, holding the connection.
        with self._write_lock, self.translated(), self._write_engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert isinstance(raw, sqlite3.Connection)  # noqa: S101 - the store is SQLite only
            raw.execute("PRAGMA synchronous = NORMAL")
            try:
                with Session(bind=conn, expire_on_commit=False) as session, session.begin():
                    yield session
            finally:
                raw.execute("PRAGMA synchronous = FULL")

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """A Core connection in a write transaction (migrations)."""
        with self._write_lock, self.translated(), self._write_engine.begin() as conn:
            yield conn

    @contextmanager
    def translated(self) -> Iterator[None]:
        """Re-raise SQLite file problems as `StoreError`s naming this file."""
        try:
            yield
        except (DBAPIError, sqlite3.Error) as exc:
            error = translate_error(exc, self.path)
            if error is None:
                raise
            raise error from exc

    def on_close(self, fn: Callable[[], object]) -> None:
        """Call `fn` when the database is closed (a helper's own connection, say)."""
        self._on_close.append(fn)

    def close(self) -> None:
        """Close every pooled connection (the file stays as it is)."""
        for fn in self._on_close:
            fn()
        self._on_close.clear()
        self.engine.dispose()
