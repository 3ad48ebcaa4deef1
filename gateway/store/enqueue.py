"""Putting readings in the upload outbox, inside the caller's transaction.

`save_transfer` and `assign_readings` call `enqueue_attributed` in the same transaction that
stores or assigns the readings, so a reading is never attributed without being queued.
"""

from collections.abc import Iterator, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.dialects.sqlite import insert
from sqlmodel import Session, col, select

from drivers.readings import Reading
from gateway.store.attribution import Attribution
from gateway.store.changes import ReadingState, mark_changed, next_change_seq
from gateway.store.codec import reading_columns
from gateway.store.db import dbapi_cursor
from gateway.store.models import OutboxRow, ReadingRow
from gateway.store.types import utc_text
from sync.outbox import OutboxItem, items_for_read

IN_CHUNK = 500  # SQLite's default limit on host parameters is far above; keeps statements small
QUEUED = "queued"


def chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    """`values` in slices small enough for an SQL ``IN (...)``."""
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]


def enqueue_attributed(
    session: Session,
    pairs: Sequence[tuple[Reading, Attribution | None]],
    *,
    zone: ZoneInfo,
    now: datetime,
) -> int:
    """Queue attributed readings of one read, inside the caller's transaction.

    Readings are grouped per (user, provider) and staged by `sync.outbox.items_for_read`
    (historical window per resource). Readings without attribution are skipped.

    Returns:
        How many items were new.
    """
    groups: dict[tuple[str, str | None], list[Reading]] = {}
    for reading, who in pairs:
        if who is not None:
            groups.setdefault((who.user_id, who.provider), []).append(reading)
    items: list[OutboxItem] = []
    for (user_id, provider), readings in groups.items():
        items.extend(
            items_for_read(readings, user_id=user_id, zone=zone, enqueued_at=now, provider=provider)
        )
    return enqueue_items(session, items, zone=zone, now=now)


def enqueue_stored(
    session: Session,
    pairs: Sequence[tuple[Reading, Attribution | None]],
    *,
    zone: ZoneInfo,
    now: datetime,
) -> int:
    """Queue readings this transaction has just stored with their user (`save_transfer`).

    Same items as `enqueue_attributed` (per user and provider, staged by
    `sync.outbox.items_for_read`), without its look-ups: the readings are new, so neither a
    stored reading to attribute nor an outbox item can exist for them (an outbox item always
    has its reading stored). One executemany on the DB-API cursor; an id already queued is
    skipped all the same (``ON CONFLICT DO NOTHING``).

    Returns:
        How many items were new.
    """
    groups: dict[tuple[str, str | None], list[Reading]] = {}
    for reading, who in pairs:
        if who is not None:
            groups.setdefault((who.user_id, who.provider), []).append(reading)
    stamp = utc_text(now)
    rows: list[tuple[object, ...]] = []
    for (user_id, provider), readings in groups.items():
        items = items_for_read(
            readings, user_id=user_id, zone=zone, enqueued_at=now, provider=provider
        )
        rows.extend(
            (
                i.id,
                i.user_id,
                i.resource.value,
                i.provider,
                i.stage.value,
                None if i.window_start is None else utc_text(i.window_start),
                None if i.window_end is None else utc_text(i.window_end),
                stamp,
            )
            for i in items
        )
    if not rows:
        return 0
    cursor = dbapi_cursor(session)
    cursor.executemany(
        "INSERT INTO outbox_item (reading_id, user_id, resource, provider, stage,"
        " window_start, window_end, enqueued_at, attempts, state)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 'queued') ON CONFLICT (reading_id) DO NOTHING",
        rows,
    )
    return int(cursor.rowcount)


def enqueue_items(
    session: Session, items: Sequence[OutboxItem], *, zone: ZoneInfo, now: datetime
) -> int:
    """Insert outbox items whose ids are new, inside the caller's transaction.

    A reading the store lacks is stored (attributed to the item's user); a stored reading
    with no user is given the item's user.

    Returns:
        How many items were new.
    """
    unique = list({i.id: i for i in reversed(items)}.values())[::-1]
    if not unique:
        return 0
    ids = [i.id for i in unique]
    known: set[str] = set()
    users: dict[str, str | None] = {}
    for chunk in chunks(ids):
        known.update(
            session.exec(select(OutboxRow.reading_id).where(col(OutboxRow.reading_id).in_(chunk)))
        )
        users.update(
            session.exec(
                select(ReadingRow.id, ReadingRow.user_id).where(col(ReadingRow.id).in_(chunk))
            ).all()
        )
    fresh = [i for i in unique if i.id not in known]
    if not fresh:
        return 0
    missing = [i for i in fresh if i.id not in users]
    if missing:
        seq = next_change_seq(session)
        session.exec(
            insert(ReadingRow),
            params=[
                {
                    **reading_columns(i.reading, zone),
                    "user_id": i.user_id,
                    "attributed_by": "outbox",
                    "upload_provider": i.provider,
                    "state": ReadingState.QUEUED.value,
                    "created_at": now,
                    "updated_at": now,
                    "change_seq": seq + n,
                }
                for n, i in enumerate(missing)
            ],
        )
    for i in fresh:
        if i.id in users and users[i.id] is None:
            mark_changed(
                session,
                [i.id],
                now,
                user_id=i.user_id,
                attributed_by="outbox",
                upload_provider=i.provider,
                state=ReadingState.QUEUED.value,
            )
    session.exec(
        insert(OutboxRow),
        params=[
            {
                "reading_id": i.id,
                "user_id": i.user_id,
                "resource": i.resource.value,
                "provider": i.provider,
                "stage": i.stage.value,
                "window_start": i.window_start,
                "window_end": i.window_end,
                "enqueued_at": i.enqueued_at,
                "attempts": 0,
                "state": QUEUED,
            }
            for i in fresh
        ],
    )
    return len(fresh)
