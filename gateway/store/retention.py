"""Retention: drop readings Junction already has, once they are older than the keep window.

Only readings in state ``delivered`` go (with their outbox rows); unassigned, queued and dead
readings stay however old they are, because nobody else holds them yet.
"""

from datetime import UTC, datetime, timedelta

from sqlmodel import col, delete, select

from gateway.store.changes import ReadingState
from gateway.store.db import Database
from gateway.store.models import OutboxRow, ReadingRow, UploadAttemptRow


def prune_delivered(db: Database, *, keep_days: float, now: datetime | None = None) -> int:
    """Delete delivered readings last changed more than `keep_days` ago.

    Returns:
        How many readings were deleted.
    """
    cutoff = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    with db.write() as session:
        ids = list(
            session.exec(
                select(ReadingRow.id).where(
                    col(ReadingRow.state) == ReadingState.DELIVERED.value,
                    col(ReadingRow.updated_at) < cutoff,
                )
            )
        )
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            session.exec(delete(OutboxRow).where(col(OutboxRow.reading_id).in_(chunk)))
            session.exec(delete(ReadingRow).where(col(ReadingRow.id).in_(chunk)))
        session.exec(delete(UploadAttemptRow).where(col(UploadAttemptRow.at) < cutoff))
    return len(ids)
