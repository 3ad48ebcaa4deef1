"""Read-only DB-API connections for hot read paths (the API's readings page, issue 18).

A `Database.read()` session costs a pooled SQLAlchemy connection, a `Session` and ORM row
objects: fine for cold paths, ~2 ms of a 100-row page. `snapshot(db)` hands out a plain
`sqlite3` cursor inside one read transaction (a consistent snapshot: a page and its count
see the same rows) on a connection that cannot write (``PRAGMA query_only``).

Connections are kept in a small pool per database (LIFO, so the most recently used, with
the warmest page cache, is reused first), at most `POOL_SIZE` of them: more threads than
that wait for one instead of each growing its own page cache. They are closed with the
database (`Database.on_close`). SQLite errors come out as `gateway.store.errors` (via
`Database.translated`), like every other store call.
"""

import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from gateway.store.db import BUSY_TIMEOUT_S, Database

POOL_SIZE = 4

_POOLS: "weakref.WeakKeyDictionary[Database, _Pool]" = weakref.WeakKeyDictionary()
_POOLS_LOCK = threading.Lock()


class _Pool:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._idle: list[sqlite3.Connection] = []
        self._opened = 0
        self._closed = False
        self._ready = threading.Condition()
        db.on_close(self.close)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._db.path, check_same_thread=False, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA query_only = ON")
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    def take(self) -> sqlite3.Connection:
        with self._ready:
            while True:
                if self._closed:
                    msg = f"{self._db.path} is closed"
                    raise sqlite3.ProgrammingError(msg)
                if self._idle:
                    return self._idle.pop()
                if self._opened < POOL_SIZE:
                    self._opened += 1
                    break
                self._ready.wait()
        try:
            return self._open()
        except BaseException:
            with self._ready:
                self._opened -= 1
                self._ready.notify()
            raise

    def give(self, conn: sqlite3.Connection, *, broken: bool) -> None:
        with self._ready:
            if broken or self._closed:
                self._opened -= 1
                conn.close()
            else:
                self._idle.append(conn)
            self._ready.notify()

    def close(self) -> None:
        with self._ready:
            self._closed = True
            for conn in self._idle:
                conn.close()
            self._opened -= len(self._idle)
            self._idle.clear()
            self._ready.notify_all()


@contextmanager
def snapshot(db: Database) -> Iterator[sqlite3.Cursor]:
    """A DB-API cursor in a read transaction on a read-only connection of `db`.

    Rows come as tuples, times as the stored UTC text (`gateway.store.types.utc_text`).

    Raises:
        StoreError: The database cannot be read (locked past the busy timeout, corrupt, gone).
        sqlite3.ProgrammingError: `db` was closed.
    """
    with _POOLS_LOCK:
        pool = _POOLS.get(db)
        if pool is None:
            pool = _POOLS[db] = _Pool(db)
    with db.translated():
        conn = pool.take()
        clean = False
        try:
            cursor = conn.cursor()
            try:
                cursor.execute("BEGIN")
                yield cursor
            finally:
                if conn.in_transaction:
                    conn.rollback()  # nothing was written; this ends the snapshot
                cursor.close()
            clean = True
        finally:
            # A connection that failed outside the body is dropped, not reused.
            pool.give(conn, broken=not clean and conn.in_transaction)
