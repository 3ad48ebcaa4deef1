"""Reading state and the change order that keyset paging and `updated_since` rely on.

Every insert or update of a reading takes the next `change_seq`, so "rows after sequence
N" is a stable page boundary however many rows are written meanwhile. Callers hold the
write transaction (BEGIN IMMEDIATE), so the numbers they take are theirs alone.
"""

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from gateway.store.db import dbapi_cursor
from gateway.store.models import ReadingRow
from gateway.store.types import utc_text


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
    columns = ReadingRow.__table__.columns  # type: ignore[attr-defined]
    unknown = set(values) - set(columns.keys())
    if unknown:
        msg = f"not reading columns: {sorted(unknown)}"
        raise ValueError(msg)
    # One executemany on the DB-API cursor (batches are hundreds long; the uploader's
    # `complete` runs this per batch, and SQLAlchemy's per-row parameter handling was a
    # third of it). Instants are bound as `UtcDateTime` text, like every other write.
    names = list(values)
    fixed = [utc_text(v) if isinstance(v, datetime) else v for v in values.values()]
    assignments = ", ".join(f"{name} = ?" for name in names)
    statement = (
        f"UPDATE reading SET updated_at = ?, change_seq = ?{', ' if names else ''}"  # noqa: S608 - column names checked above
        f"{assignments} WHERE id = ?"
    )
    stamp = utc_text(now)
    cursor = dbapi_cursor(session)
    cursor.executemany(statement, [(stamp, seq + n, *fixed, rid) for n, rid in enumerate(ids)])
    return int(cursor.rowcount)
