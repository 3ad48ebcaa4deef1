"""Saving and querying readings.

`save_transfer` is the gateway's first promise (DESIGN.md §4 "Nothing lost", "Nothing
doubled"): everything one device handed over in one transfer is committed in one
transaction, with the device's cursor, before the caller acknowledges or disconnects; a
record saved before (same stable id) changes nothing.
"""

import base64
import binascii
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, text
from sqlmodel import Session, col, select

from drivers.readings import Reading, ReadingKind
from gateway.store import devices, enqueue
from gateway.store.attribution import (
    Attribution,
    AttributionSource,
    load_rules,
    resolve_attribution,
)
from gateway.store.changes import ReadingState, mark_changed, next_change_seq
from gateway.store.codec import reading_columns, reading_from_row
from gateway.store.db import Database
from gateway.store.errors import InvalidCursorError
from gateway.store.frames import FrameBatch, store_frames
from gateway.store.models import ReadingRow
from gateway.store.types import UtcDateTime, utc_text
from sync.outbox import uploadable

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


@dataclass(frozen=True, slots=True)
class CursorUpdate:
    """Where the next read of a device starts, moved in the transfer's own transaction.

    Attributes:
        device: Device address.
        last_sequence: The last record sequence number now stored (RACP), if any.
        cursor: Anything else the driver wants back next time (JSON-serialisable).
    """

    device: str
    last_sequence: int | None = None
    cursor: Any = None


@dataclass(frozen=True, slots=True)
class SaveResult:
    """What `save_transfer` did.

    Attributes:
        new: Readings stored for the first time.
        known: Readings already stored (re-reads), left unchanged.
        queued: New readings put in the outbox (attributed to a user).
        unassigned_ids: New readings with no user (kept until assigned).
        new_ids: Ids of the readings stored for the first time, in transfer order.
        transfer_pk: The recorded transfer the frames were stored under, if they were.
    """

    new: int
    known: int
    queued: int
    unassigned_ids: tuple[str, ...] = field(default=())
    new_ids: tuple[str, ...] = field(default=())
    transfer_pk: int | None = None


def save_transfer(
    db: Database,
    readings: Sequence[Reading],
    *,
    zone: ZoneInfo,
    now: datetime | None = None,
    advance: CursorUpdate | None = None,
    frames: FrameBatch | None = None,
) -> SaveResult:
    """Store one transfer's readings in one transaction (durable when this returns).

    Each new reading is attributed (`resolve_attribution` at its receive time) and, if it
    has a user, queued for upload; readings whose id is already stored are left exactly as
    they are. Devices get `last_seen_at` and clock skew; `advance` moves one device's cursor
    in the same transaction, so a cursor never points past what is stored.

    Args:
        db: The database.
        readings: What the device handed over (any order; duplicates allowed).
        zone: The zone device clocks show (config `timezone`).
        now: The current time (aware); defaults to the clock.
        advance: A device cursor to move with the transfer.
        frames: The recorded GATT frames these readings came from, stored in the same
            transaction (`gateway.store.frames`) when a reading is new (or `frames.always`);
            new readings note the transfer.

    Returns:
        Counts of new and known readings.

    Raises:
        ValueError: A reading has a naive receive time or an unknown kind (nothing saved).
        StoreError: The database cannot be written (nothing saved).
    """
    now = now or datetime.now(UTC)
    unique = list({r.id: r for r in reversed(readings)}.values())[::-1]
    # Hot path (the saver calls this per indication, meters per RACP transfer): the row
    # tuples are built before the transaction (which also validates every reading), each
    # instant formatted once, and one INSERT … ON CONFLICT DO NOTHING RETURNING per chunk on
    # the DB-API cursor both stores the new readings and tells which were new (issue 18: a
    # transfer's save was two thirds Python around SQLAlchemy Core/ORM).
    texts: dict[datetime, str] = {}
    own = [_own_values(r, zone, texts) for r in unique]
    with db.write() as session:
        transfer_pk = None
        if frames is not None and (frames.always or _any_new(session, unique)):
            transfer_pk = store_frames(session, frames, now=now)
        fresh, queued, attributions = _insert_new(
            session, unique, own, zone=zone, now=now, transfer_pk=transfer_pk
        )
        devices.touch_from_readings(session, readings, now=now)
        if advance is not None:
            devices.advance_cursor(
                session, advance.device, advance.last_sequence, advance.cursor, now
            )
    unassigned = tuple(r.id for r in fresh if attributions[r.id] is None)
    # Counts and addresses only: measured values never reach logs above DEBUG.
    _LOGGER.log(
        logging.INFO if fresh else logging.DEBUG,
        "saved transfer from %s: %d new, %d known, %d queued, %d unassigned",
        ", ".join(sorted({r.device for r in unique})) or "no device",
        len(fresh),
        len(unique) - len(fresh),
        queued,
        len(unassigned),
    )
    return SaveResult(
        len(fresh),
        len(unique) - len(fresh),
        queued,
        unassigned,
        tuple(r.id for r in fresh),
        transfer_pk,
    )


def _any_new(session: Session, readings: Sequence[Reading]) -> bool:
    """Whether any of `readings` is not stored yet (one indexed lookup per id, raw cursor)."""
    cur = _cursor(session)
    for reading in readings:
        if cur.execute("SELECT 1 FROM reading WHERE id = ?", (reading.id,)).fetchone() is None:
            return True
    return False


def _insert_new(
    session: Session,
    unique: Sequence[Reading],
    own: Sequence[tuple[Any, ...]],
    *,
    zone: ZoneInfo,
    now: datetime,
    transfer_pk: int | None,
) -> tuple[list[Reading], int, dict[str, Attribution | None]]:
    """Insert the readings not stored yet, attributed and queued (caller's transaction)."""
    stamp = utc_text(now)
    cur = _cursor(session)
    attributions = _attribute(session, unique)
    seq = next_change_seq(session)
    rows = []
    for offset, (reading, values) in enumerate(zip(unique, own, strict=True)):
        who = attributions[reading.id]
        rows.append(
            (
                *values,
                who.user_id if who else None,
                who.source.value if who else None,
                (who.provider if who else None) or reading.provider,
                _state(reading, who is not None).value,
                stamp,
                stamp,
                seq + offset,
                transfer_pk,
            )
        )
    inserted: set[str] = set()
    for start in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[start : start + _INSERT_CHUNK]
        flat = [value for row in chunk for value in row]
        inserted.update(row[0] for row in cur.execute(_insert_sql(len(chunk)), flat))
    fresh = [r for r in unique if r.id in inserted]
    queued = enqueue.enqueue_stored(
        session,
        [(r, attributions[r.id]) for r in fresh if attributions[r.id] is not None],
        zone=zone,
        now=now,
    )
    return fresh, queued, attributions


def save_in_session(
    session: Session,
    readings: Sequence[Reading],
    *,
    zone: ZoneInfo,
    now: datetime,
    transfer_pk: int | None = None,
) -> tuple[list[Reading], int]:
    """Store the readings not stored yet, attributed and queued, in the caller's transaction.

    For `gateway.reparse` (new readings a fixed driver derives from stored frames).

    Returns:
        The readings stored now and how many were queued.

    Raises:
        ValueError: A reading has a naive receive time or an unknown kind.
    """
    unique = list({r.id: r for r in reversed(readings)}.values())[::-1]
    texts: dict[datetime, str] = {}
    own = [_own_values(r, zone, texts) for r in unique]
    fresh, queued, _ = _insert_new(
        session, unique, own, zone=zone, now=now, transfer_pk=transfer_pk
    )
    return fresh, queued


# Column order of the rows `save_transfer` inserts: the reading's own, then the gateway's.
_OWN_COLUMNS = (
    "id", "kind", "device", "provider", "received_at",
    "dt_year", "dt_month", "dt_day", "dt_hour", "dt_minute", "dt_second", "dt_offset_minutes",
    "start_date", "time_zone", "clock_skew_s", "sequence", "user_index",
    "flags_json", "values_json",
)  # fmt: skip
_INSERT_COLUMNS = (
    *_OWN_COLUMNS,
    "user_id", "attributed_by", "upload_provider", "state", "created_at", "updated_at",
    "change_seq", "transfer_pk",
)  # fmt: skip
# Rows per INSERT: 27 parameters each, far under SQLite's 32766 per statement.
_INSERT_CHUNK = 250


def _insert_sql(rows: int) -> str:
    marks = "(" + ", ".join("?" * len(_INSERT_COLUMNS)) + ")"
    return (
        f"INSERT INTO reading ({', '.join(_INSERT_COLUMNS)}) VALUES "  # noqa: S608 - constants
        + ", ".join([marks] * rows)
        + " ON CONFLICT (id) DO NOTHING RETURNING id"
    )


def _own_values(reading: Reading, zone: ZoneInfo, texts: dict[datetime, str]) -> tuple[Any, ...]:
    """`reading_columns` as a row tuple in `_OWN_COLUMNS` order, instants as UTC text.

    `texts` caches formatted instants: a transfer's readings share their receive time.
    """
    columns = reading_columns(reading, zone)
    for name in ("received_at", "start_date"):
        instant = columns[name]
        text_ = texts.get(instant)
        if text_ is None:
            text_ = texts[instant] = utc_text(instant)
        columns[name] = text_
    return tuple(columns[name] for name in _OWN_COLUMNS)


def _cursor(session: Session) -> sqlite3.Cursor:
    raw = session.connection().connection.driver_connection
    assert isinstance(raw, sqlite3.Connection)  # noqa: S101 - the store is SQLite only
    return raw.cursor()


def _state(reading: Reading, attributed: bool) -> ReadingState:
    """A new reading's state: never queued when Junction cannot take it (`uploadable`)."""
    if not uploadable(reading):
        return ReadingState.LOCAL
    return ReadingState.QUEUED if attributed else ReadingState.UNASSIGNED


def _existing_ids(session: Session, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(ids):
        found.update(session.exec(select(ReadingRow.id).where(col(ReadingRow.id).in_(chunk))))
    return found


def _attribute(session: Session, readings: Sequence[Reading]) -> dict[str, Attribution | None]:
    if not readings:
        return {}
    times = [r.received_at for r in readings]
    bindings, sessions = load_rules(session, [r.device for r in readings], min(times), max(times))
    return {
        r.id: resolve_attribution(
            bindings, sessions, device=r.device, user_index=r.user_index, at=r.received_at
        )
        for r in readings
    }


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
            state = _state(reading_from_row(row), attributed=True)
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
