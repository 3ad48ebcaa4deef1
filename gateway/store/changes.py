"""Reading state and the change order that keyset paging and `updated_since` rely on.

Every insert or update of a reading takes the next `change_seq`, so "rows after sequence
N" is a stable page boundary however many rows are written meanwhile. Callers hold the
write transaction (BEGIN IMMEDIATE), so the numbers they take are theirs alone.
"""

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam, func, update
from sqlmodel import Session, select

from gateway.store.models import ReadingRow


class ReadingState(StrEnum):
    """Where a stored reading is on its way to Junction."""

    UNASSIGNED = "unassigned"  # no user: kept, never uploaded until assigned
    QUEUED = "queued"  # in the outbox
    DELIVERED = "delivered"  # Junction answered 2xx
    DEAD = "dead"  # Junction refused it for good (see the dead letters)
    LOCAL = "local"  # kept and shown here only: Junction cannot take it (ketone, no value)


def next_change_seq(session: Session) -> int:
    """The next change sequence number (inside a write transaction)."""
    current = session.exec(select(func.max(ReadingRow.change_seq))).one()
    return (current or 0) + 1


def mark_changed(session: Session, ids: Sequence[str], now: datetime, **values: Any) -> int:
    """Update readings and move them to the end of the change order.

    Returns:
        How many readings were updated.
    """
    if not ids:
        return 0
    seq = next_change_seq(session)
    table = ReadingRow.__table__  # type: ignore[attr-defined]  # Core: no per-row ORM sync
    statement = (
        update(table)
        .where(table.c.id == bindparam("reading_id"))
        .values(updated_at=now, change_seq=bindparam("seq"), **values)
    )
    # One executemany instead of a statement per reading (batches are hundreds long).
    result = session.connection().execute(
        statement,
        [{"reading_id": rid, "seq": seq + offset} for offset, rid in enumerate(ids)],
    )
    return result.rowcount
