"""Read-only aggregates the API needs and `gateway.store` does not offer (yet).

Each function runs one read transaction through the store's `Database` and returns plain
values; no row object leaves this module. Every query is shaped to use the store's existing
indexes, so its cost follows the answer, not the table (1,000,000 readings: see
bench/api_readings.py). Candidates to move into `gateway.store`.

`reading_page` and `reading_count` are the readings page in SQLModel terms. The routes serve
it from `gateway.api.reading_rows` (DB-API rows straight to JSON, issue 18); these stay as
the plain statement of what that page is, which tests/gateway/api/test_reading_rows.py holds
the fast path to, byte for byte. `ReadingFilter` is shared by both.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func
from sqlmodel import col, select

from drivers.readings import ReadingKind
from gateway.store import Database
from gateway.store.models import OutboxRow, ReadingRow
from gateway.store.readings import StoredReading, decode_cursor, encode_cursor, stored_from_row
from gateway.store.types import UtcDateTime, from_utc_text

_QUEUED = "queued"  # OutboxRow.state of items waiting for upload


@dataclass(frozen=True, slots=True)
class DeviceStats:
    """What the store holds about one device's readings.

    Attributes:
        readings: Readings stored.
        pending_uploads: Readings queued for upload.
        unassigned: Readings with no user yet.
        last_reading_id: The reading stored last.
        last_reading_at: Measurement instant of the reading stored last (UTC).
    """

    readings: int
    pending_uploads: int
    unassigned: int
    last_reading_id: str | None
    last_reading_at: datetime | None


def device_stats(db: Database) -> dict[str, DeviceStats]:
    """Per device address: counts, and the reading stored last."""
    device = col(ReadingRow.device)
    counts = sa.select(device, func.count()).group_by(device)  # covering index scan
    pending = (
        sa.select(device, func.count())
        .select_from(OutboxRow)
        .join(ReadingRow, col(ReadingRow.id) == col(OutboxRow.reading_id))
        .where(col(OutboxRow.state) == _QUEUED)
        .group_by(device)
    )  # follows the queue, which the uploader keeps short
    unassigned = (
        sa.select(device, func.count()).where(col(ReadingRow.user_id).is_(None)).group_by(device)
    )
    with db.read() as session:
        total = {str(d): _int(n) for d, n in session.execute(counts)}
        queued = {str(d): _int(n) for d, n in session.execute(pending)}
        unset = {str(d): _int(n) for d, n in session.execute(unassigned)}
        last: dict[str, tuple[str, datetime | None]] = {}
        for address in total:
            # (device, rowid) order of the device index: the reading stored last, one seek.
            row = session.execute(
                sa.select(col(ReadingRow.id), col(ReadingRow.start_date))
                .where(device == address)
                .order_by(col(ReadingRow.pk).desc())
                .limit(1)
            ).first()
            if row is not None:
                last[address] = (str(row[0]), _instant(row[1]))
    return {
        address: DeviceStats(
            readings=count,
            pending_uploads=queued.get(address, 0),
            unassigned=unset.get(address, 0),
            last_reading_id=last.get(address, (None, None))[0],
            last_reading_at=last.get(address, (None, None))[1],
        )
        for address, count in total.items()
    }


def reading_counts(db: Database) -> dict[str, int]:
    """Readings stored per kind (a covering index scan)."""
    kind = col(ReadingRow.kind)
    with db.read() as session:
        return {
            str(k): _int(n)
            for k, n in session.execute(sa.select(kind, func.count()).group_by(kind))
        }


def latest_ids(db: Database, *, user_id: str | None, kinds: list[ReadingKind]) -> list[str]:
    """The id of the newest reading (by measurement instant) of each kind, for a user.

    With `user_id` None: the newest of each kind over all users, walking the start_date index
    from the end (absent kinds are skipped first, so they cost one index seek).
    """
    found: list[str] = []
    with db.read() as session:
        for kind in kinds:
            where = col(ReadingRow.kind) == kind.value
            exists = session.execute(sa.select(col(ReadingRow.pk)).where(where).limit(1)).first()
            if exists is None:
                continue
            if user_id is not None:  # the user's rows via the user_id index, then sorted
                query = sa.select(col(ReadingRow.id)).where(
                    where, col(ReadingRow.user_id) == user_id
                )
            else:  # `kind || ''` keeps SQLite off the kind index: walk start_date backwards
                unindexed = col(ReadingRow.kind).op("||")("") == kind.value
                query = sa.select(col(ReadingRow.id)).where(unindexed)
            query = query.order_by(col(ReadingRow.start_date).desc()).limit(1)
            first = session.execute(query).first()
            if first is not None:
                found.append(str(first[0]))
    return found


@dataclass(frozen=True, slots=True)
class ReadingFilter:
    """Which readings a list request means (every bound UTC; None: no condition).

    Attributes:
        kind: Only this kind.
        user_id: Only this user's readings.
        unassigned: Only readings with no user (ignored when `user_id` is given).
        device: Only this device's readings (address, any case).
        source: Only this provider slug (the slug uploads use; Human API's `source`).
        start: Measured at or after.
        end: Measured before.
        updated_since: Stored or changed at or after.
        updated_before: Stored or changed before.
        withdrawn: True: only readings `edge-gateway reparse` withdrew; False: none of
            them; None: either.
    """

    kind: ReadingKind | None = None
    user_id: str | None = None
    unassigned: bool = False
    device: str | None = None
    source: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    updated_since: datetime | None = None
    updated_before: datetime | None = None
    withdrawn: bool | None = None


def _conditions(wanted: ReadingFilter) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    # Kind and source match a third to all of the rows; with a device or user, `x || ''`
    # keeps SQLite (no ANALYZE statistics) off their indexes and on the selective one
    # (1,000,000 readings: a kind + device count 630 ms → 1 ms). A kind with a device is
    # the exception: (device, kind, change_seq) answers both in page order (store v9; a
    # rare device's kind page: 159 ms → index walk).
    narrow = wanted.device is not None or wanted.user_id is not None

    def broad(column: Any) -> Any:
        return column.op("||")("") if narrow else column

    if wanted.kind is not None:
        kind = col(ReadingRow.kind) if wanted.device is not None else broad(col(ReadingRow.kind))
        where.append(kind == wanted.kind.value)
    if wanted.user_id is not None:
        where.append(col(ReadingRow.user_id) == wanted.user_id)
    elif wanted.unassigned:
        where.append(col(ReadingRow.user_id).is_(None))
    if wanted.device is not None:
        where.append(col(ReadingRow.device) == wanted.device.upper())
    if wanted.source is not None:
        where.append(broad(col(ReadingRow.upload_provider)) == wanted.source)
    if wanted.start is not None:
        where.append(col(ReadingRow.start_date) >= wanted.start)
    if wanted.end is not None:
        where.append(col(ReadingRow.start_date) < wanted.end)
    if wanted.withdrawn is not None:
        withdrawn_at = col(ReadingRow.withdrawn_at)
        where.append(withdrawn_at.is_not(None) if wanted.withdrawn else withdrawn_at.is_(None))
    if wanted.updated_before is not None:
        where.append(col(ReadingRow.updated_at) < wanted.updated_before)
    if wanted.updated_since is not None:
        where.append(col(ReadingRow.updated_at) >= wanted.updated_since)
        # Start the change-order walk at the first row changed since then (found on the
        # (updated_at, change_seq) index) instead of at the beginning of time; INDEXED BY,
        # or SQLite answers min() by walking change_seq from the start (store v4).
        first = sa.text(
            "(SELECT min(change_seq) FROM reading INDEXED BY ix_reading_updated_change"
            " WHERE updated_at >= :since)"
        ).bindparams(sa.bindparam("since", wanted.updated_since, type_=UtcDateTime()))
        where.append(col(ReadingRow.change_seq) >= first)
    return where


def reading_page(
    db: Database, wanted: ReadingFilter, *, limit: int, cursor: str | None
) -> tuple[list[StoredReading], str | None]:
    """One page of matching readings in change order (stable keyset paging).

    Same order and cursor as `gateway.store.readings.list_readings` (a reading that changes
    moves to the end), with the `source` and `updated_before` conditions added.

    Args:
        db: The store.
        wanted: The conditions.
        limit: Page size (0: no rows).
        cursor: `next_cursor` of the previous page, or None.

    Returns:
        The page and the next page's cursor (None: this is the last page).

    Raises:
        InvalidCursorError: `cursor` was not issued by this gateway.
    """
    after = decode_cursor(cursor) if cursor is not None else None
    if limit <= 0:
        return [], None
    query = page_query(wanted, limit=limit, after=after)
    with db.read() as session:
        rows = list(session.exec(query))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].change_seq) if more and rows else None
    return [stored_from_row(row) for row in rows], next_cursor


def page_query(wanted: ReadingFilter, *, limit: int, after: int | None) -> Any:
    """The SELECT of `reading_page` (its plan is checked in tests/gateway/api/test_queries.py).

    Args:
        wanted: The conditions.
        limit: Page size; one more row is selected to know whether a next page exists.
        after: The change_seq the page starts after, or None.
    """
    query = select(ReadingRow).order_by(col(ReadingRow.change_seq)).limit(limit + 1)
    for condition in _conditions(wanted):
        query = query.where(condition)
    if after is not None:
        query = query.where(col(ReadingRow.change_seq) > after)
    return query


def reading_count(db: Database, wanted: ReadingFilter) -> int:
    """How many readings match, over all pages (Fitbit Plus `meta.count`, `X-Total-Count`).

    One index-only count where a filter has its index (store v4/v5); 1,000,000 readings:
    see bench/api_readings.py.
    """
    query = sa.select(func.count()).select_from(ReadingRow)
    for condition in _conditions(wanted):
        query = query.where(condition)
    with db.read() as session:
        return _int(session.execute(query).scalar_one())


def last_change(db: Database) -> int:
    """The newest change sequence number (0 for an empty store): a mark for `assigned_since`."""
    with db.read() as session:
        return _int(session.execute(sa.select(func.max(col(ReadingRow.change_seq)))).scalar())


def assigned_since(db: Database, mark: int, *, device: str, user_id: str) -> list[StoredReading]:
    """A device's readings given to `user_id` by hand after `mark`, in change order.

    For the ``.updated`` events of a bind: readings the new binding attributes as they
    arrive (attributed_by ``binding``) are new readings, published as created.
    """
    query = (
        select(ReadingRow)
        .where(
            col(ReadingRow.change_seq) > mark,
            col(ReadingRow.device) == device.upper(),
            col(ReadingRow.user_id) == user_id,
            col(ReadingRow.attributed_by) == "manual",
        )
        .order_by(col(ReadingRow.change_seq))
    )
    with db.read() as session:
        return [stored_from_row(row) for row in session.exec(query)]


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float | str) else 0


def _instant(value: object) -> datetime | None:
    # Core selects of a TypeDecorator column come back converted; aggregates as raw text.
    if value is None or isinstance(value, datetime):
        return value
    return from_utc_text(str(value))
