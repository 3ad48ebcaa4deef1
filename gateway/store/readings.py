"""Querying and assigning stored readings.

Saving lives in `gateway.store.save` (re-exported here: `save_transfer`, `CursorUpdate`,
`SaveResult`, `save_in_session`).
"""

import base64
import binascii
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, text
from sqlmodel import col, select

from drivers.readings import Reading, ReadingKind
from gateway.store import enqueue
from gateway.store.attribution import (
    Attribution,
    AttributionSource,
)
from gateway.store.changes import ReadingState, mark_changed
from gateway.store.codec import reading_from_row
from gateway.store.db import Database
from gateway.store.errors import InvalidCursorError
from gateway.store.models import ReadingRow
from gateway.store.save import (
    CursorUpdate,
    SaveResult,
    reading_state,
    save_in_session,
    save_transfer,
)
from gateway.store.types import UtcDateTime

__all__ = [
    "MAX_PAGE",
    "CursorUpdate",
    "ReadingState",
    "SaveResult",
    "StoredReading",
    "assign_device_readings",
    "assign_readings",
    "decode_cursor",
    "encode_cursor",
    "get_reading",
    "list_readings",
    "save_in_session",
    "save_transfer",
    "stored_from_row",
]

_LOGGER = logging.getLogger(__name__)

# SQLite allows 32766 bound parameters per statement; stay well under it.
_IN_CHUNK = 500

MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class StoredReading:
    """A reading as stored: the driver's value plus what the gateway added.

    Attributes:
        reading: The reading exactly as saved.
        start_date: The measurement instant (UTC), from `reading.instant(zone)` at save.
        time_zone: The IANA zone the device clock was read in.
        user_id: The Junction user, or None while unassigned.
        provider: The provider slug uploads use (a binding may override the driver's).
        state: Upload state.
        updated_at: Last change of this row (UTC).
        withdrawn_at: When `edge-gateway reparse` withdrew it (no longer derived from its
            frames), or None.
    """

    reading: Reading
    start_date: datetime
    time_zone: str
    user_id: str | None
    provider: str
    state: ReadingState
    updated_at: datetime
    withdrawn_at: datetime | None = None


def get_reading(db: Database, reading_id: str) -> StoredReading | None:
    """One stored reading by stable id, or None."""
    with db.read() as session:
        row = session.exec(select(ReadingRow).where(ReadingRow.id == reading_id)).first()
        return None if row is None else stored_from_row(row)


def stored_from_row(row: ReadingRow) -> StoredReading:
    """Row → value."""
    return StoredReading(
        reading=reading_from_row(row),
        start_date=row.start_date,
        time_zone=row.time_zone,
        user_id=row.user_id,
        provider=row.upload_provider,
        state=ReadingState(row.state),
        updated_at=row.updated_at,
        withdrawn_at=row.withdrawn_at,
    )


def list_readings(
    db: Database,
    *,
    kind: ReadingKind | None = None,
    user_id: str | None = None,
    unassigned: bool = False,
    device: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    updated_since: datetime | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[StoredReading], str | None]:
    """One page of readings in change order, with keyset paging.

    Rows come in the order they were stored or last changed, so paging is stable while
    readings are inserted: a page never skips or repeats a row that did not change. A
    reading that changes (assigned, delivered) moves to the end and shows up again later,
    which is what an `updated_since` consumer wants.

    Args:
        db: The database.
        kind: Only this kind.
        user_id: Only this user's readings.
        unassigned: Only readings with no user (ignored when `user_id` is given).
        device: Only this device's readings.
        start: Only readings measured at or after this instant.
        end: Only readings measured before this instant.
        updated_since: Only readings stored or changed at or after this instant.
        limit: Page size, 1 to `MAX_PAGE`.
        cursor: `next_cursor` of the previous page, or None for the first page.

    Returns:
        The page and the cursor of the next page (None when this page is the last).

    Raises:
        InvalidCursorError: `cursor` was not issued by this function.
        ValueError: `limit` is out of range.
    """
    if not 1 <= limit <= MAX_PAGE:
        msg = f"limit {limit} is out of range; use 1 to {MAX_PAGE}"
        raise ValueError(msg)
    query = select(ReadingRow).order_by(col(ReadingRow.change_seq)).limit(limit + 1)
    if cursor is not None:
        query = query.where(col(ReadingRow.change_seq) > decode_cursor(cursor))
    if kind is not None:
        query = query.where(col(ReadingRow.kind) == kind.value)
    if user_id is not None:
        query = query.where(col(ReadingRow.user_id) == user_id)
    elif unassigned:
        query = query.where(col(ReadingRow.user_id).is_(None))
    if device is not None:
        query = query.where(col(ReadingRow.device) == device.upper())
    if start is not None:
        query = query.where(col(ReadingRow.start_date) >= start)
    if end is not None:
        query = query.where(col(ReadingRow.start_date) < end)
    if updated_since is not None:
        changed = col(ReadingRow.updated_at) >= updated_since
        # Start the change-order walk at the first row changed since then (found on the
        # (updated_at, change_seq) index) instead of at the beginning of time.
        # INDEXED BY: otherwise SQLite answers min() by walking change_seq from the start.
        first = text(
            "(SELECT min(change_seq) FROM reading INDEXED BY ix_reading_updated_change"
            " WHERE updated_at >= :since)"
        ).bindparams(bindparam("since", updated_since, type_=UtcDateTime()))
        query = query.where(changed, col(ReadingRow.change_seq) >= first)
    with db.read() as session:
        rows = list(session.exec(query))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].change_seq) if more and rows else None
    return [stored_from_row(row) for row in rows], next_cursor


def encode_cursor(change_seq: int) -> str:
    """Opaque paging cursor for the row with `change_seq`."""
    return base64.urlsafe_b64encode(f"r1:{change_seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The change sequence a cursor stands for.

    Raises:
        InvalidCursorError: Not a cursor from `encode_cursor`.
    """
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != "r1" or not number.isdigit():
            raise InvalidCursorError(cursor)
        return int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCursorError(cursor) from exc


def assign_readings(
    db: Database,
    ids: Sequence[str],
    user_id: str,
    *,
    zone: ZoneInfo,
    provider: str | None = None,
    now: datetime | None = None,
) -> int:
    """Give unassigned readings to a user and queue them for upload, in one transaction.

    Readings that already have a user are left alone (re-attribution of uploaded data is
    not this function's job).

    Returns:
        How many readings were assigned.
    """
    now = now or datetime.now(UTC)
    with db.write() as session:
        rows: list[ReadingRow] = []
        for chunk in _chunks(ids):
            rows.extend(
                session.exec(
                    select(ReadingRow)
                    .where(col(ReadingRow.id).in_(chunk), col(ReadingRow.user_id).is_(None))
                    .order_by(col(ReadingRow.change_seq))
                )
            )
        if not rows:
            return 0
        by_provider: dict[tuple[str, ReadingState], list[str]] = {}
        for row in rows:
            state = reading_state(reading_from_row(row), attributed=True)
            by_provider.setdefault((provider or row.upload_provider, state), []).append(row.id)
        for (slug, state), slug_ids in by_provider.items():
            mark_changed(
                session,
                slug_ids,
                now,
                user_id=user_id,
                attributed_by="manual",
                upload_provider=slug,
                state=state.value,
            )
        attribution = Attribution(user_id, provider, AttributionSource.MANUAL)
        enqueue.enqueue_attributed(
            session, [(reading_from_row(row), attribution) for row in rows], zone=zone, now=now
        )
    _LOGGER.info("assigned %d readings to user %s", len(rows), user_id)
    return len(rows)


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def assign_device_readings(
    db: Database,
    device: str,
    user_id: str,
    *,
    zone: ZoneInfo,
    device_user: int | None = None,
    provider: str | None = None,
    now: datetime | None = None,
) -> int:
    """Give a device's unassigned readings to a user and queue them (e.g. after `bind`).

    Args:
        db: The database.
        device: Device address.
        user_id: The Junction user.
        zone: The zone device clocks show (for the historical window of queued items).
        device_user: Only readings from this user slot of the device; None for all.
        provider: Provider slug overriding the driver's.
        now: The current time (aware); defaults to the clock.

    Returns:
        How many readings were assigned.
    """
    query = select(ReadingRow.id).where(
        col(ReadingRow.device) == device.upper(), col(ReadingRow.user_id).is_(None)
    )
    if device_user is not None:
        query = query.where(col(ReadingRow.user_index) == device_user)
    with db.read() as session:
        ids = list(session.exec(query.order_by(col(ReadingRow.change_seq))))
    return assign_readings(db, ids, user_id, zone=zone, provider=provider, now=now)
