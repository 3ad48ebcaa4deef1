"""The upload outbox over SQLite: `SqliteOutbox` implements `sync.outbox.Outbox`.

Only readings attributed to a user are queued. An item's key is its reading's stable id;
the reading itself lives in the `reading` table (an item enqueued for a reading the store
has not seen stores the reading too), so delivery and dead-lettering also move the
reading's state, which the local API shows.

Every method is one write (or read) transaction, durable when it returns.
"""

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from drivers.readings import ReadingKind
from gateway.store import sync_state
from gateway.store.aio import call
from gateway.store.changes import ReadingState, mark_changed
from gateway.store.codec import reading_from_row
from gateway.store.db import Database
from gateway.store.enqueue import QUEUED as _QUEUED
from gateway.store.enqueue import chunks as _chunks
from gateway.store.enqueue import enqueue_items
from gateway.store.models import (
    OutboxRow,
    ReadingRow,
    UploadAttemptRow,
)
from sync.outbox import (
    Batch,
    DeadLetter,
    OutboxItem,
    Stage,
    StreamInfo,
    UploadProgress,
    UserHold,
)

_LOGGER = logging.getLogger(__name__)

_DELIVERED = "delivered"
_DEAD = "dead"

_P = ParamSpec("_P")
_T = TypeVar("_T")


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


def _live_claim(now: datetime) -> ColumnElement[bool]:
    return and_(col(OutboxRow.claim_id).is_not(None), col(OutboxRow.lease_until) > now)


class SqliteOutbox:
    """`sync.outbox.Outbox` over the store's SQLite file (durable; survives restarts)."""

    def __init__(self, db: Database, *, zone: ZoneInfo) -> None:
        self._db = db
        self._zone = zone

    async def _run(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        return await call(fn, *args, **kwargs)

    # ---------------------------------------------------------------- enqueue / streams

    async def enqueue(self, items: Sequence[OutboxItem]) -> int:
        """Add items whose ids are new; see `Outbox.enqueue`."""
        return await self._run(self.enqueue_sync, items)

    def enqueue_sync(self, items: Sequence[OutboxItem]) -> int:
        """Blocking `enqueue`."""
        with self._db.write() as session:
            return enqueue_items(session, items, zone=self._zone, now=datetime.now(UTC))

    async def streams(self, now: datetime) -> list[StreamInfo]:
        """Every stream with queued items; see `Outbox.streams`."""
        return await self._run(self._streams, now)

    def _streams(self, now: datetime) -> list[StreamInfo]:
        claimed = _live_claim(now)
        waiting = and_(
            ~claimed,
            col(OutboxRow.not_before).is_not(None),
            col(OutboxRow.not_before) > now,
        )
        due = and_(
            ~claimed,
            or_(col(OutboxRow.not_before).is_(None), col(OutboxRow.not_before) <= now),
        )
        query = (
            sa_select(
                col(OutboxRow.user_id),
                col(OutboxRow.resource),
                func.count(),
                func.sum(case((due, 1), else_=0)),
                func.sum(case((claimed, 1), else_=0)),
                func.min(case((waiting, col(OutboxRow.not_before)), else_=None)),
                func.sum(case((col(OutboxRow.stage) == Stage.HISTORICAL.value, 1), else_=0)),
            )
            .where(col(OutboxRow.state) == _QUEUED)
            .group_by(col(OutboxRow.user_id), col(OutboxRow.resource))
        )
        with self._db.read() as session:
            rows: list[Any] = list(session.connection().execute(query).all())
        return [
            StreamInfo(
                user_id=user_id,
                resource=ReadingKind(resource),
                queued=int(queued),
                due=int(due_n or 0),
                claimed=int(claimed_n or 0),
                next_due_at=None if next_due is None else _instant(next_due),
                historical=int(historical or 0),
            )
            for user_id, resource, queued, due_n, claimed_n, next_due, historical in rows
        ]

    # ---------------------------------------------------------------- claims

    async def claim(
        self,
        user_id: str,
        resource: ReadingKind,
        *,
        limit: int,
        now: datetime,
        lease_until: datetime,
    ) -> Batch | None:
        """Claim due items of one group; see `Outbox.claim`."""
        return await self._run(
            self._claim, user_id, resource, limit=limit, now=now, lease_until=lease_until
        )

    def _claim(
        self,
        user_id: str,
        resource: ReadingKind,
        *,
        limit: int,
        now: datetime,
        lease_until: datetime,
    ) -> Batch | None:
        stream = and_(
            col(OutboxRow.user_id) == user_id,
            col(OutboxRow.resource) == resource.value,
            col(OutboxRow.state) == _QUEUED,
        )
        due = and_(
            stream,
            or_(col(OutboxRow.claim_id).is_(None), col(OutboxRow.lease_until) <= now),
            or_(col(OutboxRow.not_before).is_(None), col(OutboxRow.not_before) <= now),
        )
        order = (col(OutboxRow.enqueued_at), col(OutboxRow.reading_id))
        with self._db.write() as session:
            live = session.exec(
                select(OutboxRow.pk).where(stream, _live_claim(now)).limit(1)
            ).first()
            if live is not None:
                return None
            first = session.exec(select(OutboxRow).where(due).order_by(*order).limit(1)).first()
            if first is None:
                return None
            group = and_(
                col(OutboxRow.provider) == first.provider,
                col(OutboxRow.stage) == first.stage,
                col(OutboxRow.window_start).is_not_distinct_from(first.window_start),
                col(OutboxRow.window_end).is_not_distinct_from(first.window_end),
            )
            chosen = session.exec(
                select(OutboxRow, ReadingRow)
                .join(ReadingRow, col(ReadingRow.id) == col(OutboxRow.reading_id))
                .where(due, group)
                .order_by(*order)
                .limit(max(1, limit))
            ).all()
            claim_id = uuid.uuid4().hex
            chosen_ids = [row.reading_id for row, _ in chosen]
            for chunk in _chunks(chosen_ids):
                session.exec(
                    update(OutboxRow)
                    .where(col(OutboxRow.reading_id).in_(chunk))
                    .values(claim_id=claim_id, lease_until=lease_until)
                )
            remaining = session.exec(
                select(func.count()).select_from(OutboxRow).where(stream, group)
            ).one() - len(chosen_ids)
            items = tuple(_item(row, reading) for row, reading in chosen)
        _LOGGER.debug("claim %s: %d items of %s/%s", claim_id, len(items), user_id, resource)
        return Batch(
            claim_id=claim_id,
            user_id=user_id,
            resource=resource,
            items=items,
            remaining=remaining,
        )

    def _held(self, session: Session, claim_id: str, ids: Sequence[str]) -> list[OutboxRow]:
        rows: list[OutboxRow] = []
        for chunk in _chunks(list(ids)):
            rows.extend(
                session.exec(
                    select(OutboxRow).where(
                        col(OutboxRow.reading_id).in_(chunk),
                        col(OutboxRow.state) == _QUEUED,
                        col(OutboxRow.claim_id) == claim_id,
                    )
                )
            )
        return rows

    @staticmethod
    def _log_attempt(
        session: Session,
        claim_id: str,
        rows: Sequence[OutboxRow],
        outcome: str,
        now: datetime,
        *,
        status_code: int | None = None,
        error: str | None = None,
    ) -> None:
        SqliteOutbox._log_streams(
            session,
            claim_id,
            [(row.user_id, row.resource) for row in rows],
            outcome,
            now,
            status_code=status_code,
            error=error,
        )

    @staticmethod
    def _log_streams(
        session: Session,
        claim_id: str,
        keys: Sequence[tuple[str, str]],
        outcome: str,
        now: datetime,
        *,
        status_code: int | None = None,
        error: str | None = None,
    ) -> None:
        streams: dict[tuple[str, str], int] = {}
        for key in keys:
            streams[key] = streams.get(key, 0) + 1
        for (user_id, resource), count in streams.items():
            session.add(
                UploadAttemptRow(
                    claim_id=claim_id,
                    user_id=user_id,
                    resource=resource,
                    outcome=outcome,
                    count=count,
                    status_code=status_code,
                    error=error,
                    at=now,
                )
            )

    # ---------------------------------------------------------------- settling

    async def complete(self, claim_id: str, ids: Sequence[str], now: datetime) -> None:
        """Mark items delivered; see `Outbox.complete`."""
        await self._run(self._complete, claim_id, ids, now)

    def _complete(self, claim_id: str, ids: Sequence[str], now: datetime) -> None:
        with self._db.write() as session:
            done: list[tuple[str, str, str]] = []
            # A 2xx is a delivery whichever claim holds the item now.
            for chunk in _chunks(list(ids)):
                queued = and_(col(OutboxRow.reading_id).in_(chunk), col(OutboxRow.state) == _QUEUED)
                done.extend(
                    session.exec(
                        select(OutboxRow.reading_id, OutboxRow.user_id, OutboxRow.resource).where(
                            queued
                        )
                    ).all()
                )
                # One statement per chunk: a batch is hundreds of items.
                session.exec(
                    update(OutboxRow)
                    .where(queued)
                    .values(state=_DELIVERED, claim_id=None, lease_until=None, delivered_at=now)
                    .execution_options(synchronize_session=False)
                )
            mark_changed(session, [d[0] for d in done], now, state=ReadingState.DELIVERED.value)
            self._log_streams(session, claim_id, [(d[1], d[2]) for d in done], _DELIVERED, now)

    async def retry_later(
        self, claim_id: str, ids: Sequence[str], *, not_before: datetime, error: str
    ) -> None:
        """Give items back after a retryable failure; see `Outbox.retry_later`."""
        await self._run(self._retry_later, claim_id, ids, not_before, error)

    def _retry_later(
        self, claim_id: str, ids: Sequence[str], not_before: datetime, error: str
    ) -> None:
        with self._db.write() as session:
            rows = self._held(session, claim_id, ids)
            for row in rows:
                row.claim_id, row.lease_until = None, None
                row.not_before, row.last_error = not_before, error
                row.attempts += 1
                session.add(row)
            self._log_attempt(session, claim_id, rows, "retry", datetime.now(UTC), error=error)

    async def release(self, claim_id: str, ids: Sequence[str]) -> None:
        """Give items back unchanged; see `Outbox.release`."""
        await self._run(self._release, claim_id, ids)

    def _release(self, claim_id: str, ids: Sequence[str]) -> None:
        with self._db.write() as session:
            for row in self._held(session, claim_id, ids):
                row.claim_id, row.lease_until = None, None
                session.add(row)

    async def dead_letter(
        self,
        claim_id: str,
        ids: Sequence[str],
        *,
        status_code: int | None,
        body: str,
        reason: str,
        now: datetime,
    ) -> None:
        """Move items to the dead-letter state; see `Outbox.dead_letter`."""
        await self._run(self._dead_letter, claim_id, ids, status_code, body, reason, now)

    def _dead_letter(
        self,
        claim_id: str,
        ids: Sequence[str],
        status_code: int | None,
        body: str,
        reason: str,
        now: datetime,
    ) -> None:
        with self._db.write() as session:
            rows = self._held(session, claim_id, ids)
            for row in rows:
                row.state, row.claim_id, row.lease_until = _DEAD, None, None
                row.dead_status, row.dead_body, row.dead_reason, row.dead_at = (
                    status_code,
                    body,
                    reason,
                    now,
                )
                session.add(row)
            mark_changed(session, [r.reading_id for r in rows], now, state=ReadingState.DEAD.value)
            self._log_attempt(
                session, claim_id, rows, _DEAD, now, status_code=status_code, error=reason
            )
        if rows:
            _LOGGER.warning("dead-lettered %d items (HTTP %s): %s", len(rows), status_code, reason)

    async def release_all(self) -> int:
        """End every claim; see `Outbox.release_all`."""
        return await self._run(self.release_all_sync)

    def release_all_sync(self) -> int:
        """Blocking `release_all`."""
        with self._db.write() as session:
            result = session.exec(
                update(OutboxRow)
                .where(col(OutboxRow.state) == _QUEUED, col(OutboxRow.claim_id).is_not(None))
                .values(claim_id=None, lease_until=None)
            )
            return int(result.rowcount)

    # ---------------------------------------------------------------- dead letters

    async def dead_letters(self, user_id: str | None = None) -> list[DeadLetter]:
        """Dead letters, oldest first; see `Outbox.dead_letters`."""
        return await self._run(self._dead_letters, user_id)

    def _dead_letters(self, user_id: str | None) -> list[DeadLetter]:
        query = (
            select(OutboxRow, ReadingRow)
            .join(ReadingRow, col(ReadingRow.id) == col(OutboxRow.reading_id))
            .where(col(OutboxRow.state) == _DEAD)
            .order_by(col(OutboxRow.dead_at), col(OutboxRow.pk))
        )
        if user_id is not None:
            query = query.where(col(OutboxRow.user_id) == user_id)
        with self._db.read() as session:
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

    async def requeue_dead(self, ids: Sequence[str]) -> int:
        """Put dead items back in the queue; see `Outbox.requeue_dead`."""
        return await self._run(self._requeue_dead, ids)

    def _requeue_dead(self, ids: Sequence[str]) -> int:
        now = datetime.now(UTC)
        with self._db.write() as session:
            requeued: list[str] = []
            for chunk in _chunks(list(ids)):
                for row in session.exec(
                    select(OutboxRow).where(
                        col(OutboxRow.reading_id).in_(chunk), col(OutboxRow.state) == _DEAD
                    )
                ):
                    row.state, row.attempts, row.not_before = _QUEUED, 0, None
                    row.dead_status = row.dead_body = row.dead_reason = row.dead_at = None
                    row.last_error = None
                    session.add(row)
                    requeued.append(row.reading_id)
            mark_changed(session, requeued, now, state=ReadingState.QUEUED.value)
            return len(requeued)

    # ---------------------------------------------------------------- holds and progress

    async def holds(self) -> Mapping[str, frozenset[UserHold]]:
        """Users with holds; see `Outbox.holds`."""
        return await self._run(sync_state.holds, self._db)

    async def set_hold(self, user_id: str, hold: UserHold, *, held: bool) -> None:
        """Add or clear a hold; see `Outbox.set_hold`."""
        await self._run(sync_state.set_hold, self._db, user_id, hold, held=held)

    async def record_progress(self, progress: UploadProgress) -> None:
        """Replace a stream's progress; see `Outbox.record_progress`."""
        await self._run(sync_state.record_progress, self._db, progress)

    async def progress(self, user_id: str | None = None) -> list[UploadProgress]:
        """Latest progress per stream; see `Outbox.progress`."""
        return await self._run(sync_state.progress, self._db, user_id)


def _instant(value: object) -> datetime:
    # Aggregates (MIN over a CASE) lose the column type, so the UTC text comes back raw.
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value)).astimezone(UTC)
