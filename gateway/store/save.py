"""Saving one transfer's readings: the store's hot write path.

`save_transfer` is the gateway's first promise (DESIGN.md §4 "Nothing lost", "Nothing
doubled"): everything one device handed over in one transfer is committed in one
transaction, with the device's cursor, before the caller acknowledges or disconnects; a
record saved before (same stable id) changes nothing.

It runs per indication (the saver) and per RACP transfer (meters), so it writes through the
DB-API cursor of the session's connection (SQLModel stays the schema): row tuples built
before the transaction, instants formatted once, one INSERT … ON CONFLICT DO NOTHING
RETURNING per chunk (issue 18; `bench/store_save.py` measures it against bare sqlite3).
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from drivers.readings import Reading
from gateway.store import devices, enqueue
from gateway.store.attribution import Attribution, load_rules, resolve_attribution
from gateway.store.changes import ReadingState, next_change_seq
from gateway.store.codec import OWN_COLUMNS, reading_row
from gateway.store.db import Database, dbapi_cursor
from gateway.store.frames import FrameBatch, store_frames
from gateway.store.types import utc_text
from sync.outbox import uploadable

_LOGGER = logging.getLogger(__name__)


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
    cur = dbapi_cursor(session)
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
    cur = dbapi_cursor(session)
    attributions = _attribute(session, unique)
    seq = next_change_seq(session)
    # The gateway's columns depend on the attribution and the state only: built once each.
    tails: dict[tuple[int, bool], tuple[Any, ...]] = {}
    rows = []
    for offset, (reading, values) in enumerate(zip(unique, own, strict=True)):
        who = attributions[reading.id]
        ok = uploadable(reading)
        tail = tails.get((id(who), ok))
        if tail is None:
            state = reading_state(reading, who is not None)
            tail = tails[(id(who), ok)] = (
                who.user_id if who else None,
                who.source.value if who else None,
                who.provider if who else None,
                state.value,
                stamp,
                stamp,
            )
        rows.append(
            (*values, *tail[:2], tail[2] or reading.provider, *tail[3:], seq + offset, transfer_pk)
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
_OWN_COLUMNS = OWN_COLUMNS
_INSERT_COLUMNS = (
    *_OWN_COLUMNS,
    "user_id", "attributed_by", "upload_provider", "state", "created_at", "updated_at",
    "change_seq", "transfer_pk",
)  # fmt: skip
# Rows per INSERT: 27 parameters each, far under SQLite's 32766 per statement.
_INSERT_CHUNK = 250


@cache
def _insert_sql(rows: int) -> str:
    marks = "(" + ", ".join("?" * len(_INSERT_COLUMNS)) + ")"
    return (
        f"INSERT INTO reading ({', '.join(_INSERT_COLUMNS)}) VALUES "  # noqa: S608 - constants
        + ", ".join([marks] * rows)
        + " ON CONFLICT (id) DO NOTHING RETURNING id"
    )


def _own_values(reading: Reading, zone: ZoneInfo, texts: dict[datetime, str]) -> tuple[Any, ...]:
    """`reading_row` with its two instants as UTC text (`utc_text`: naive times refused).

    `texts` caches formatted instants: a transfer's readings share their receive time.
    """
    row = reading_row(reading, zone)
    received, start = row[4], row[12]
    received_text = texts.get(received)
    if received_text is None:
        received_text = texts[received] = utc_text(received)
    start_text = texts.get(start)
    if start_text is None:
        start_text = texts[start] = utc_text(start)
    return (*row[:4], received_text, *row[5:12], start_text, *row[13:])


def reading_state(reading: Reading, attributed: bool) -> ReadingState:
    """A new reading's state: never queued when Junction cannot take it (`uploadable`)."""
    if not uploadable(reading):
        return ReadingState.LOCAL
    return ReadingState.QUEUED if attributed else ReadingState.UNASSIGNED


def _attribute(session: Session, readings: Sequence[Reading]) -> dict[str, Attribution | None]:
    if not readings:
        return {}
    times = [r.received_at for r in readings]
    bindings, sessions = load_rules(session, [r.device for r in readings], min(times), max(times))
    # A transfer's readings share device, slot and receive time: resolve each once.
    resolved: dict[tuple[str, int | None, datetime], Attribution | None] = {}
    result: dict[str, Attribution | None] = {}
    for r in readings:
        key = (r.device, r.user_index, r.received_at)
        if key not in resolved:
            resolved[key] = resolve_attribution(
                bindings, sessions, device=r.device, user_index=r.user_index, at=r.received_at
            )
        result[r.id] = resolved[key]
    return result
