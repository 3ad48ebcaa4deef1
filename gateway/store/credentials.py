"""Junction Sign-In Token sessions, kept in the store so a restart does not sign users out.

Implements `sync.junction.auth.TokenStore`. A refresh rotates both tokens; `put` replaces the
row in one transaction, so a crash leaves the old pair or the new pair, never a mix. The
database file is created 0600 in a 0700 directory; tokens are never logged.
"""

from datetime import UTC, datetime

from pydantic import SecretStr
from sqlalchemy.dialects.sqlite import insert
from sqlmodel import col, delete, select

from gateway.store.aio import call
from gateway.store.db import Database
from gateway.store.models import JunctionSessionRow
from sync.junction.auth import UserTokens


class SqliteTokenStore:
    """`TokenStore` over the gateway database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, user_id: str) -> UserTokens | None:
        """See `TokenStore.get`."""
        return await call(self._get, user_id)

    async def put(self, user_id: str, tokens: UserTokens) -> None:
        """See `TokenStore.put`."""
        await call(self._put, user_id, tokens)

    async def delete(self, user_id: str) -> None:
        """See `TokenStore.delete`."""
        await call(self._delete, user_id)

    def _get(self, user_id: str) -> UserTokens | None:
        with self._db.read() as session:
            row = session.exec(
                select(JunctionSessionRow).where(col(JunctionSessionRow.user_id) == user_id)
            ).first()
        if row is None:
            return None
        return UserTokens(
            access_token=SecretStr(row.access_token),
            refresh_token=SecretStr(row.refresh_token),
            expires_at=row.expires_at,
        )

    def _put(self, user_id: str, tokens: UserTokens) -> None:
        values = {
            "user_id": user_id,
            "access_token": tokens.access_token.get_secret_value(),
            "refresh_token": tokens.refresh_token.get_secret_value(),
            "expires_at": tokens.expires_at,
            "updated_at": datetime.now(UTC),
        }
        statement = insert(JunctionSessionRow).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["user_id"],
            set_={k: statement.excluded[k] for k in values if k != "user_id"},
        )
        with self._db.write() as session:
            session.exec(statement)

    def _delete(self, user_id: str) -> None:
        with self._db.write() as session:
            session.exec(
                delete(JunctionSessionRow).where(col(JunctionSessionRow.user_id) == user_id)
            )
