"""Dead letters of the SQLite outbox: items Junction refused for good, listed and requeued.

Cold paths (the CLI and the local API), so the ORM; `gateway.store.outbox` delegates here.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlmodel import col, select

from gateway.store.changes import ReadingState, mark_changed
from gateway.store.codec import reading_from_row
from gateway.store.db import Database
from gateway.store.enqueue import QUEUED as _QUEUED
from gateway.store.enqueue import chunks as _chunks
from gateway.store.models import OutboxRow, ReadingRow
from gateway.store.outbox_sql import unindexed
from sync.outbox import DeadLetter, OutboxItem, Stage

_DEAD = "dead"


def _item(row: OutboxRow, reading: ReadingRow) -> OutboxItem:
    return OutboxItem(
        reading=reading_from_row(reading),
        user_id=row.user_id,
        provider=row.provider,
        stage=Stage(row.stage),
        enqueued_at=row.enqueued_at,
        window_start=row.window_start,
        window_end=row.window_end,
        attempts=row.attempts,
    )


def listed(db: Database, user_id: str | None = None) -> list[DeadLetter]:
    """Dead letters, oldest first (`sync.outbox.Outbox.dead_letters`); `user_id`: one user's."""
    query = (
        select(OutboxRow, ReadingRow)
        .join(ReadingRow, col(ReadingRow.id) == col(OutboxRow.reading_id))
        .where(col(OutboxRow.state) == _DEAD)
        .order_by(col(OutboxRow.dead_at), col(OutboxRow.pk))
    )
    if user_id is not None:
        query = query.where(col(OutboxRow.user_id) == user_id)
    with db.read() as session:
        rows = session.exec(query).all()
    return [
        DeadLetter(
            item=_item(row, reading),
            status_code=row.dead_status,
            body=row.dead_body or "",
            reason=row.dead_reason or "",
            at=row.dead_at or row.enqueued_at,
        )
        for row, reading in rows
    ]


def requeue(db: Database, ids: Sequence[str]) -> int:
    """Put dead items back in the queue (`sync.outbox.Outbox.requeue_dead`); how many."""
    now = datetime.now(UTC)
    with db.write() as session:
        requeued: list[str] = []
        for chunk in _chunks(list(ids)):
            for row in session.exec(
                select(OutboxRow).where(
                    col(OutboxRow.reading_id).in_(chunk), unindexed(OutboxRow.state) == _DEAD
                )
            ):
                row.state, row.attempts, row.not_before = _QUEUED, 0, None
                row.dead_status = row.dead_body = row.dead_reason = row.dead_at = None
                row.last_error = None
                session.add(row)
                requeued.append(row.reading_id)
        mark_changed(session, requeued, now, state=ReadingState.QUEUED.value)
        return len(requeued)
