"""Local API tokens: only their SHA-256 is stored; the plain token is shown once."""

import hashlib
import logging
import secrets
import sqlite3
import threading
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlmodel import col, select

from gateway.store.db import BUSY_TIMEOUT_S, Database
from gateway.store.models import ApiTokenRow

_LOGGER = logging.getLogger(__name__)

# Prefix makes leaked tokens recognisable by secret scanners; 32 random bytes = 256 bits.
TOKEN_PREFIX = "egw_"  # noqa: S105 - a public prefix, not a secret
_TOKEN_BYTES = 32

_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)

_CACHES: "weakref.WeakKeyDictionary[Database, _LiveTokens]" = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


class WouldBlockError(Exception):
    """`verify_token(..., wait=False)` could not answer without waiting (ask again with wait)."""


class Scope(StrEnum):
    """What a token may do: `read` the data, or `admin` everything."""

    READ = "read"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A stored token (never the token itself).

    Attributes:
        id: Row id, to revoke it.
        scope: Its scope.
        label: Operator's note.
        created_at: Creation time (UTC).
        revoked_at: Revocation time, if revoked.
    """

    id: int
    scope: Scope
    label: str | None
    created_at: datetime
    revoked_at: datetime | None


def hash_token(token: str) -> str:
    """The stored form of a token: hex SHA-256 (tokens are random, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db: Database, scope: Scope, label: str | None = None) -> tuple[str, TokenInfo]:
    """Create a token; the plain token is returned here and nowhere else, ever.

    Returns:
        The plain token (show it once) and what is stored about it.
    """
    token = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
    with db.write() as session:
        row = ApiTokenRow(
            token_hash=hash_token(token),
            scope=scope.value,
            label=label,
            created_at=datetime.now(UTC),
        )
        session.add(row)
        session.flush()
        info = _info(row)
    _LOGGER.info("created API token %d with scope %s", info.id, scope.value)
    return token, info


def verify_token(db: Database, token: str, *, wait: bool = True) -> Scope | None:
    """The scope of a valid, unrevoked token, or None.

    Checked against an in-memory map of live token hashes (every API request asks: a store
    read per request was ~1 ms of ORM and session work, issue 18). The map is reloaded
    whenever any connection has committed since the last check (``PRAGMA data_version``,
    a read of the WAL index in shared memory), so a token created or revoked by
    ``edge-gateway token`` in another process counts from its very next request.

    Args:
        db: The store.
        token: The token as the client sent it.
        wait: False on an event loop: never wait for a lock (another thread's check, or a
            database busy with recovery); raise `WouldBlockError` instead.

    Raises:
        StoreError: The database cannot be read.
        WouldBlockError: `wait` is False and the answer needs waiting.
    """
    if not token.startswith(TOKEN_PREFIX):
        return None
    with _CACHES_LOCK:
        cache = _CACHES.get(db)
        if cache is None:
            cache = _CACHES[db] = _LiveTokens(db)
    return cache.scope(hash_token(token), wait=wait)


class _LiveTokens:
    """Live token hashes of one database, reloaded when the file has changed."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._busy_ms = 0
        self._version: int | None = None
        self._live: dict[str, Scope] = {}
        db.on_close(self.close)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
                self._version = None

    def scope(self, digest: str, *, wait: bool) -> Scope | None:
        if not self._lock.acquire(blocking=wait):
            raise WouldBlockError
        try:
            with self._db.translated():
                return self._checked(digest, wait=wait)
        finally:
            self._lock.release()

    def _checked(self, digest: str, *, wait: bool) -> Scope | None:
        if self._conn is None:
            # Its own connection: data_version counts commits of *other* connections,
            # which is every write (the engine's connections, other processes).
            self._conn = sqlite3.connect(
                self._db.path, check_same_thread=False, isolation_level=None, timeout=0
            )
            self._busy_ms = 0
        busy_ms = int(BUSY_TIMEOUT_S * 1000) if wait else 0
        if busy_ms != self._busy_ms:
            self._conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
            self._busy_ms = busy_ms
        try:
            version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            if version != self._version:
                rows = self._conn.execute(
                    "SELECT token_hash, scope FROM api_token WHERE revoked_at IS NULL"
                ).fetchall()
                self._live = {digest_: Scope(scope) for digest_, scope in rows}
                self._version = version
        except sqlite3.OperationalError as exc:
            if not wait and (exc.sqlite_errorcode & 0xFF) in _BUSY_CODES:
                raise WouldBlockError from exc
            raise
        return self._live.get(digest)


def revoke_token(db: Database, token_id: int) -> bool:
    """Revoke a token by id.

    Returns:
        Whether a live token was revoked.
    """
    with db.write() as session:
        row = session.get(ApiTokenRow, token_id)
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = datetime.now(UTC)
        session.add(row)
        return True


def list_tokens(db: Database) -> list[TokenInfo]:
    """Every token ever created (hashes not included), oldest first."""
    with db.read() as session:
        return [
            _info(row) for row in session.exec(select(ApiTokenRow).order_by(col(ApiTokenRow.id)))
        ]


def _info(row: ApiTokenRow) -> TokenInfo:
    # Rows reach here flushed, so the id is set; -1 would only mark a programming error.
    token_id = -1 if row.id is None else row.id
    return TokenInfo(token_id, Scope(row.scope), row.label, row.created_at, row.revoked_at)
