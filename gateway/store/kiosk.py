"""Kiosk sessions: a person at the kiosk owns the readings received meanwhile."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlalchemy.dialects.sqlite import insert
from sqlmodel import col, or_, select

from gateway.store.attribution import KioskSession, kiosk_session_from_row
from gateway.store.db import Database
from gateway.store.models import KioskSessionRow, ReadingRow, UserRow


def start_session(
    db: Database,
    user_id: str,
    *,
    duration: timedelta,
    device: str | None = None,
    now: datetime | None = None,
) -> KioskSession:
    """Start a session for `user_id` (created if unknown) lasting `duration` from `now`.

    Earlier live sessions on the same device (or on no device) end now, so one person at
    a time owns a meter.
    """
    now = now or datetime.now(UTC)
    device = device.upper() if device else None
    with db.write() as session:
        session.exec(
            insert(UserRow).values(user_id=user_id, created_at=now).on_conflict_do_nothing()
        )
        same_device = (
            col(KioskSessionRow.device).is_(None)
            if device is None
            else col(KioskSessionRow.device) == device
        )
        for live in session.exec(
            select(KioskSessionRow).where(
                same_device,
                col(KioskSessionRow.ended_at).is_(None),
                col(KioskSessionRow.expires_at) > now,
            )
        ):
            live.ended_at = now
            session.add(live)
        row = KioskSessionRow(
            user_id=user_id, device=device, started_at=now, expires_at=now + duration
        )
        session.add(row)
        session.flush()
        return kiosk_session_from_row(row)


def end_session(db: Database, session_id: int, *, now: datetime | None = None) -> bool:
    """End a session now.

    Returns:
        Whether a live session was ended.
    """
    now = now or datetime.now(UTC)
    with db.write() as session:
        row = session.get(KioskSessionRow, session_id)
        if row is None or row.ended_at is not None or row.expires_at <= now:
            return False
        row.ended_at = now
        session.add(row)
        return True


def active_sessions(db: Database, *, now: datetime | None = None) -> list[KioskSession]:
    """Sessions live at `now`, newest first."""
    now = now or datetime.now(UTC)
    with db.read() as session:
        rows = session.exec(
            select(KioskSessionRow)
            .where(
                col(KioskSessionRow.started_at) <= now,
                col(KioskSessionRow.expires_at) > now,
                or_(col(KioskSessionRow.ended_at).is_(None), col(KioskSessionRow.ended_at) > now),
            )
            .order_by(col(KioskSessionRow.started_at).desc())
        )
        return [kiosk_session_from_row(row) for row in rows]


def end_idle_sessions(
    db: Database, idle: timedelta, *, now: datetime | None = None
) -> list[KioskSession]:
    """End live sessions with no activity for `idle`; returns the sessions ended.

    Activity is the session's start or a reading attributed to its person (of its device,
    if it names one) received since then: a person still measuring keeps the session.
    """
    now = now or datetime.now(UTC)
    ended: list[KioskSession] = []
    with db.write() as session:
        live = session.exec(
            select(KioskSessionRow).where(
                col(KioskSessionRow.ended_at).is_(None),
                col(KioskSessionRow.started_at) <= now,
                col(KioskSessionRow.expires_at) > now,
            )
        ).all()
        for row in live:
            query = select(func.max(ReadingRow.received_at)).where(
                col(ReadingRow.user_id) == row.user_id,
                col(ReadingRow.received_at) >= row.started_at,
            )
            if row.device is not None:
                query = query.where(col(ReadingRow.device) == row.device)
            latest = session.exec(query).one()
            last = max(row.started_at, latest) if latest is not None else row.started_at
            if now - last >= idle:
                row.ended_at = now
                session.add(row)
                ended.append(kiosk_session_from_row(row))
    return ended
