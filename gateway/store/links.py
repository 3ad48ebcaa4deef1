"""Junction manual-provider links the gateway made, kept so a restart does not link again.

Implements `sync.junction.client.LinkStore`. The client forgets a link (and links again)
when Junction refuses an upload because the connection is gone (issue 16, item 5).
"""

from datetime import UTC, datetime

from sqlalchemy.dialects.sqlite import insert
from sqlmodel import col, delete, select

from gateway.store.aio import call
from gateway.store.db import Database
from gateway.store.models import JunctionLinkRow


class SqliteLinkStore:
    """`LinkStore` over the gateway database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def links(self) -> set[tuple[str, str]]:
        """See `LinkStore.links`."""
        return await call(self._links)

    async def set_link(self, user_id: str, provider: str, *, linked: bool) -> None:
        """See `LinkStore.set_link`."""
        await call(self._set, user_id, provider, linked)

    def _links(self) -> set[tuple[str, str]]:
        with self._db.read() as session:
            rows = session.exec(select(JunctionLinkRow)).all()
        return {(row.user_id, row.provider) for row in rows}

    def _set(self, user_id: str, provider: str, linked: bool) -> None:
        with self._db.write() as session:
            if linked:
                statement = insert(JunctionLinkRow).values(
                    user_id=user_id, provider=provider, linked_at=datetime.now(UTC)
                )
                session.exec(statement.on_conflict_do_nothing())
            else:
                session.exec(
                    delete(JunctionLinkRow).where(
                        col(JunctionLinkRow.user_id) == user_id,
                        col(JunctionLinkRow.provider) == provider,
                    )
                )
