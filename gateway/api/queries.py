"""Read-only aggregates the API needs and `gateway.store` does not offer (yet).

Each function runs one read transaction through the store's `Database` and returns plain
values; no row object leaves this module. Candidates to move into `gateway.store`.
"""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import case, func
from sqlmodel import col, select

from drivers.readings import ReadingKind
from gateway.store import Database
from gateway.store.changes import ReadingState
from gateway.store.models import ReadingRow
from gateway.store.types import from_utc_text


@dataclass(frozen=True, slots=True)
class DeviceStats:
    """What the store holds about one device's readings.

    Attributes:
        readings: Readings stored.
        pending_uploads: Readings queued for upload.
        unassigned: Readings with no user yet.
        last_reading_at: Measurement instant of its newest reading (UTC).
    """

    readings: int
    pending_uploads: int
    unassigned: int
    last_reading_at: datetime | None


def device_stats(db: Database) -> dict[str, DeviceStats]:
    """Per device address, counts and the newest measurement instant."""
    queued = func.sum(case((col(ReadingRow.state) == ReadingState.QUEUED.value, 1), else_=0))
    unassigned = func.sum(
        case((col(ReadingRow.state) == ReadingState.UNASSIGNED.value, 1), else_=0)
    )
    query = sa.select(
        col(ReadingRow.device),
        func.count(),
        queued,
        unassigned,
        func.max(col(ReadingRow.start_date)),
    ).group_by(col(ReadingRow.device))
    with db.read() as session:
        rows = [tuple(row) for row in session.execute(query)]
    return {
        str(device): DeviceStats(_int(count), _int(pending), _int(unset), _instant(last))
        for device, count, pending, unset, last in rows
    }


def reading_counts(db: Database) -> dict[tuple[str, str], int]:
    """Readings stored per (kind, state)."""
    query = sa.select(col(ReadingRow.kind), col(ReadingRow.state), func.count()).group_by(
        col(ReadingRow.kind), col(ReadingRow.state)
    )
    with db.read() as session:
        rows = [tuple(row) for row in session.execute(query)]
    return {(str(kind), str(state)): _int(count) for kind, state, count in rows}


def latest_ids(db: Database, *, user_id: str | None, kinds: list[ReadingKind]) -> list[str]:
    """The id of the newest reading (by measurement instant) of each kind, for a user.

    With `user_id` None: the newest of each kind over all users.
    """
    found: list[str] = []
    with db.read() as session:
        for kind in kinds:
            query = select(ReadingRow.id).where(col(ReadingRow.kind) == kind.value)
            if user_id is not None:
                query = query.where(col(ReadingRow.user_id) == user_id)
            query = query.order_by(col(ReadingRow.start_date).desc()).limit(1)
            first = session.exec(query).first()
            if first is not None:
                found.append(first)
    return found


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float | str) else 0


def _instant(value: object) -> datetime | None:
    # func.max over a TypeDecorator column comes back as the stored UTC text.
    if value is None or isinstance(value, datetime):
        return value
    return from_utc_text(str(value))
