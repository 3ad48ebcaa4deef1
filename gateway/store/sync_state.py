"""Per-user holds and per-stream upload progress: the uploader's bookkeeping for the API.

`SqliteOutbox` exposes these through the `sync.outbox.Outbox` protocol; each function is one
transaction.
"""

import logging
from collections.abc import Mapping

from sqlalchemy.dialects.sqlite import insert
from sqlmodel import col, delete, select

from drivers.readings import ReadingKind
from gateway.store.db import Database
from gateway.store.models import SyncProgressRow, UserHoldRow
from sync.outbox import Stage, SyncStatus, UploadProgress, UserHold

_LOGGER = logging.getLogger(__name__)


def holds(db: Database) -> Mapping[str, frozenset[UserHold]]:
    """Every user with at least one hold (paused, re-authentication required, …)."""
    with db.read() as session:
        rows = session.exec(select(UserHoldRow)).all()
    result: dict[str, set[UserHold]] = {}
    for row in rows:
        result.setdefault(row.user_id, set()).add(UserHold(row.hold))
    return {user: frozenset(found) for user, found in result.items()}


def set_hold(db: Database, user_id: str, hold: UserHold, *, held: bool) -> None:
    """Add (`held`) or clear one hold of a user; idempotent either way."""
    with db.write() as session:
        if held:
            session.exec(
                insert(UserHoldRow)
                .values(user_id=user_id, hold=hold.value)
                .on_conflict_do_nothing()
            )
        else:
            session.exec(
                delete(UserHoldRow).where(
                    col(UserHoldRow.user_id) == user_id, col(UserHoldRow.hold) == hold.value
                )
            )
    _LOGGER.info("user %s: hold %s %s", user_id, hold.value, "set" if held else "cleared")


def record_progress(db: Database, progress: UploadProgress) -> None:
    """Replace the latest progress of one (user, resource) stream."""
    values = {
        "status": progress.status.value,
        "at": progress.at,
        "stage": None if progress.stage is None else progress.stage.value,
        "count": progress.count,
        "delivered_total": progress.delivered_total,
        "error": progress.error,
    }
    # Not fsynced (`Database.write(durable=False)`): progress is bookkeeping the uploader
    # rewrites after every batch, and acknowledges no data. The commit is atomic and survives
    # a killed process; only an OS crash may lose the latest one, and the next delivery's
    # fsync covers it (issue 18: one fsync per batch less).
    with db.write(durable=False) as session:
        session.exec(
            insert(SyncProgressRow)
            .values(user_id=progress.user_id, resource=progress.resource.value, **values)
            .on_conflict_do_update(index_elements=["user_id", "resource"], set_=values)
        )


def progress(db: Database, user_id: str | None = None) -> list[UploadProgress]:
    """The latest progress per stream, for one user or everyone, by user then resource."""
    query = select(SyncProgressRow).order_by(
        col(SyncProgressRow.user_id), col(SyncProgressRow.resource)
    )
    if user_id is not None:
        query = query.where(col(SyncProgressRow.user_id) == user_id)
    with db.read() as session:
        rows = session.exec(query).all()
    return [
        UploadProgress(
            user_id=row.user_id,
            resource=ReadingKind(row.resource),
            status=SyncStatus(row.status),
            at=row.at,
            stage=None if row.stage is None else Stage(row.stage),
            count=row.count,
            delivered_total=row.delivered_total,
            error=row.error,
        )
        for row in rows
    ]
