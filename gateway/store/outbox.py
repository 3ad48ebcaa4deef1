"""The upload outbox over SQLite: `SqliteOutbox` implements `sync.outbox.Outbox`.

Only readings attributed to a user are queued. An item's key is its reading's stable id;
the reading itself lives in the `reading` table (an item enqueued for a reading the store
has not seen stores the reading too), so delivery and dead-lettering also move the
reading's state, which the local API shows.

Every method that changes stored state is durable when it returns. Kept in memory for
speed (issue 18; `gateway.store.claims`): claims (the uploader's start-up `release_all` ends
every claim anyway) and counts of deliveries recorded but not settled.

A delivery goes through three steps, each cheaper per reading than the one-step update it
replaces, because a batch's rows are scattered (a backlog interleaves streams row by row: a
batch of 500 touched ~1,700 pages, one outbox page and one reading page per reading):

1. `complete`: the 2xx is recorded, fsynced, in the narrow `outbox_delivery` table (~50
   WAL pages a batch). From then on the queue's walks pass over the item (``NOT EXISTS``
   on that table's key) and its counts subtract it (the counts in memory).
2. Settling (`settle_sync`), for every recorded delivery at once: the outbox row leaves
   the queue, the reading becomes delivered, and the reading is appended to
   `change_catch_up`. At once when `streams` finds nothing to claim and nothing in flight;
   while the uploader drains a backlog, once `SETTLE_ITEMS` are recorded or the oldest is
   `SETTLE_AFTER_S` old (neighbouring rows share pages, so settling thousands at once
   writes each page once), in the background (`complete` and `streams` start it).
3. The change order (`catch_up_sync`): the reading takes the next `change_seq` and a new
   `updated_at` (its row and seven change-order indexes, which `updated_since` reads; about
   as costly as the rest together), `CATCH_UP_CHUNK` readings per transaction, oldest
   first, while the uploader is idle (`run` also calls `catch_up` on a timer,
   `gateway.jobs`) or once the oldest has waited `CATCH_UP_AFTER_S`.

A restart counts what a crash left recorded before it reads the queue, and settles it
at the first chance.
"""

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

from sqlmodel import Session

from drivers.readings import ReadingKind
from gateway.store import dead_letters, sync_state
from gateway.store.aio import call
from gateway.store.attempts import log_attempts
from gateway.store.changes import ReadingState, mark_changed
from gateway.store.claims import claims_of
from gateway.store.codec import outbox_items
from gateway.store.db import Database, dbapi_cursor
from gateway.store.delivery import settle_recorded
from gateway.store.enqueue import chunks as _chunks
from gateway.store.enqueue import enqueue_items
from gateway.store.models import (
    OutboxRow,
)
from gateway.store.outbox_sql import (
    BATCH_SQL,
    CATCH_UP_SQL,
    FIRST_DUE_SQL,
    GROUP_RECORDED_SQL,
    HEAD_SQL,
    RECORD_DELIVERY_SQL,
    RECORDED_IN_GROUP_SQL,
    RECORDED_SQL,
    RETRYING_SQL,
    delivered_sql,
    held_query,
    readings_sql,
)
from gateway.store.queue_counts import Group, StreamKey, per_stream
from gateway.store.queue_counts import version as queue_version
from gateway.store.types import utc_text
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

# Settling: at once while the uploader is idle; while it drains a backlog, together, once
# this many are recorded or the oldest is this old (the local API shows a delivery at most
# about this late).
SETTLE_ITEMS = 10_000
SETTLE_AFTER_S = 1.0
# Change-order catch-up: this many readings per transaction (~60 ms on a Pi-class core, the
# longest a save waits for it) at once while the uploader is idle; while it drains a
# backlog, only once the oldest waiting is this old (a client polling `updated_since` sees
# a delivery at most about this late, or when the drain ends).
CATCH_UP_CHUNK = 2_000
CATCH_UP_AFTER_S = 60.0


_DELIVERED = "delivered"
_DEAD = "dead"

_P = ParamSpec("_P")
_T = TypeVar("_T")


class SqliteOutbox:
    """`sync.outbox.Outbox` over the store's SQLite file (durable; survives restarts)."""

    def __init__(self, db: Database, *, zone: ZoneInfo, maintain: bool = True) -> None:
        """An outbox over `db`; readings' device times are read in `zone`.

        `maintain=False` for a reader beside the gateway (`edge-gateway status`): `streams`
        then settles and catches up nothing, so it writes nothing.
        """
        self._db = db
        self._zone = zone
        self._maintain = maintain
        self._claims, self._recorded, self._catch_up, self._queue = claims_of(db.path)
        # A backup restored at this path carries the epoch of its day: after as many changes
        # as the counts followed since, its version would match counts of another state.
        # One count per outbox made (once a process) rules that out.
        self._queue.forget()
        self._background: asyncio.Future[None] | None = None

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
        infos = await self._run(self._streams, now)
        self._settle_later()
        return infos

    def _streams(self, now: datetime, *, again: bool = True) -> list[StreamInfo]:
        # Hot path (the uploader asks after every batch): DB-API cursor, and no query reads
        # every queued row: the queued counts are kept (`gateway.store.queue_counts`, store
        # v14), retrying rows are few (their partial index), a head is an index walk. Claims
        # and the counts of recorded, unsettled deliveries are in memory (`gateway.store.claims`).
        self._replay()
        at = utc_text(now)
        claimed = self._claims.claimed(now)
        with self._db.read() as session:
            cur = dbapi_cursor(session)
            counted = self._queue.read(cur)
            queued, historical = per_stream(counted.groups)
            # As of this snapshot, whether or not a settle committed meanwhile: counted
            # twice, a stream would look shorter (hidden at 0).
            gone, gone_historical = per_stream(
                self._queue.unsettled(counted.version, self._recorded.snapshot)
            )
            waiting: dict[tuple[str, str], int] = {}
            next_due: dict[tuple[str, str], str] = {}
            for user_id, resource, reading_id, not_before in cur.execute(RETRYING_SQL, (at,)):
                key = (user_id, resource)
                if reading_id in claimed.get(key, ()):
                    continue
                waiting[key] = waiting.get(key, 0) + 1
                if key not in next_due or not_before < next_due[key]:
                    next_due[key] = not_before
            infos: list[StreamInfo] = []
            for key, stored in sorted(queued.items()):
                user_id, resource = key
                count = stored - gone[key]
                if count <= 0:
                    continue
                held = len(claimed.get(key, ()))
                backfill = historical[key] - gone_historical[key]
                if historical[key] > 0:
                    # Stored, not `backfill`: the counts in memory may still count one a
                    # reparse (another process) queued again as recorded, until a settle.
                    found = cur.execute(HEAD_SQL, (user_id, resource, at)).fetchone()
                    head = None if found is None else Stage(found[1])
                else:
                    # No historical item queued, so the head is daily if there is one: no
                    # walk (it passes every recorded, unsettled delivery at the stream's
                    # front: ~10 % of a drain's CPU, issue 18).
                    head = Stage.DAILY if count > waiting.get(key, 0) else None
                infos.append(
                    StreamInfo(
                        user_id=user_id,
                        resource=ReadingKind(resource),
                        queued=count,
                        due=max(0, count - held - waiting.get(key, 0)),
                        claimed=held,
                        next_due_at=_instant(next_due[key]) if key in next_due else None,
                        historical=backfill,
                        head=head,
                    )
                )
        if self._maintain and not claimed and all(info.due <= 0 for info in infos):
            # Nothing to claim and nothing in flight: the uploader is idle, and what it
            # left to settle and catch up is done now (the timer goes on with the rest).
            self._catch_up.idle = True
            if self._recorded.count():
                self.settle_sync()
                if again:  # counts of records another process took back are healed now
                    return self._streams(now, again=False)
            if self._catch_up.waiting():
                self.catch_up_sync(now)
        return infos

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
        # Hot path: DB-API cursor on the partial indexes of store v9. The batch is an index
        # walk in claim order (no sort of the stream), `remaining` from the kept counts. The
        # claim itself is kept in memory (`gateway.store.claims`): no write transaction,
        # unless claimed items waited for a retry (their retry time is spent: clearing it
        # keeps the retrying index small; not fsynced, like the claim).
        self._replay()
        stream = (user_id, resource.value)
        claim_id = self._claims.reserve(stream, now, lease_until)
        if claim_id is None:
            return None
        self._catch_up.idle = False
        at = utc_text(now)
        try:
            with self._db.read() as session:
                cur = dbapi_cursor(session)
                first = cur.execute(FIRST_DUE_SQL, (*stream, at)).fetchone()
                if first is None:
                    self._claims.cancel(claim_id)
                    return None
                _, provider, stage, start_text, end_text = first
                group = (provider, stage, start_text, end_text)
                rows = cur.execute(BATCH_SQL, (*stream, at, *group, max(1, limit))).fetchall()
                readings: dict[str, tuple[Any, ...]] = {}
                for chunk in _chunks([row[3] for row in rows]):
                    for found in cur.execute(readings_sql(len(chunk)), tuple(chunk)):
                        readings[found[0]] = found
                counted = self._queue.read(cur)
                total = counted.groups.get((stream, group), 0)
                if stage == Stage.HISTORICAL.value:
                    # Junction's `is_final_chunk` comes from this `remaining`
                    # (`sync.uploader`): the recorded deliveries as stored, since the ones
                    # in memory still count any a reparse (another process) queued again
                    # until the next settle. The shorter walk: a backfill is one device's
                    # memory, what is recorded at most `SETTLE_ITEMS`.
                    sql = (
                        GROUP_RECORDED_SQL
                        if total <= self._recorded.count()
                        else RECORDED_IN_GROUP_SQL
                    )
                    total -= cur.execute(sql, (*stream, *group)).fetchone()[0]
            if stage != Stage.HISTORICAL.value:
                # As of this snapshot (a settle may commit meanwhile).
                unsettled = self._queue.unsettled(counted.version, self._recorded.snapshot)
                total -= unsettled[(stream, group)]
            self._claims.fill(claim_id, ((row[3], row[1]) for row in rows))
        except BaseException:
            self._claims.cancel(claim_id)
            raise
        retried = [(row[0],) for row in rows if row[4] is not None]
        if retried:
            with self._db.write(durable=False) as session:
                dbapi_cursor(session).executemany(
                    "UPDATE outbox_item SET not_before = NULL WHERE pk = ?", retried
                )
        # Rows this store wrote are rebuilt without re-validating them (`codec.outbox_items`).
        items = outbox_items(
            ((row[1], row[2], readings[row[3]]) for row in rows),
            user_id=user_id,
            provider=provider,
            stage=Stage(stage),
            window_start=None if start_text is None else _instant(start_text),
            window_end=None if end_text is None else _instant(end_text),
        )
        _LOGGER.debug("claim %s: %d items of %s/%s", claim_id, len(items), user_id, resource)
        return Batch(
            claim_id=claim_id,
            user_id=user_id,
            resource=resource,
            items=items,
            remaining=max(0, total - len(items)),  # counts a reparse took back: until a settle
        )

    def _held(self, session: Session, claim_id: str, ids: Sequence[str]) -> list[OutboxRow]:
        """The queued rows of those `ids` that `claim_id` still holds (claims are in memory)."""
        rows: list[OutboxRow] = []
        for chunk in _chunks(self._claims.held(claim_id, ids)):
            rows.extend(session.exec(held_query(chunk)))
        return rows

    # ---------------------------------------------------------------- settling

    async def complete(self, claim_id: str, ids: Sequence[str], now: datetime) -> None:
        """Mark items delivered; see `Outbox.complete`."""
        await self._run(self._complete, claim_id, ids, now)
        self._settle_later()

    def _settle_later(self) -> None:
        # Steps 2 and 3 while the uploader drains a backlog, when due, in the background: a
        # settle holds the write lock for up to ~0.3 s, and awaited here it held this
        # stream's next claim, its encoding and its POST too (~30 % of a 100k drain's time;
        # issue 18). Only the next commit waits for it now. One at a time.
        if not self._maintain or (self._background is not None and not self._background.done()):
            return
        recorded, catch_up = self._recorded, self._catch_up
        if not (
            recorded.count() >= SETTLE_ITEMS
            or (recorded.count() and recorded.age() >= SETTLE_AFTER_S)
            or catch_up.age() >= CATCH_UP_AFTER_S
        ):
            return
        self._background = asyncio.ensure_future(self._run(self._settle_due))
        self._background.add_done_callback(_log_failure)

    async def settled(self) -> None:
        """Wait for a settle `complete` started in the background (tests, shutdown)."""
        if self._background is not None:
            await asyncio.shield(self._background)

    def _complete(self, claim_id: str, ids: Sequence[str], now: datetime) -> None:
        # Hot path: DB-API cursor, one fsynced transaction per batch, narrow writes only
        # (step 1 of the module docstring). Queued, unrecorded rows among `ids` are found on
        # the reading_id unique index (``+state`` keeps SQLite off the (state, dead_at) index).
        self._replay()
        at = utc_text(now)
        recorded: list[tuple[StreamKey, Group]] = []
        try:
            with self._db.write() as session:
                cur = dbapi_cursor(session)
                # A 2xx is a delivery whichever claim holds the item now, unless the item
                # was queued again since it was claimed (a reparse corrected its reading:
                # what was sent is the old values, so it stays queued).
                claimed = self._claims.enqueued(ids)
                done: list[tuple[Any, ...]] = []
                for chunk in _chunks(list(ids)):
                    done.extend(
                        row
                        for row in cur.execute(delivered_sql(len(chunk)), tuple(chunk))
                        if claimed.get(row[1], row[4]) == row[4]
                    )
                cur.executemany(RECORD_DELIVERY_SQL, [(d[1], at) for d in done])
                log_attempts(session, claim_id, [(d[2], d[3]) for d in done], _DELIVERED, now)
                # Counted under the write lock, so a concurrent settle cannot miss them.
                recorded = [((d[2], d[3]), (d[5], d[6], d[7], d[8])) for d in done]
                self._recorded.add(recorded)
        except BaseException:
            self._recorded.remove(recorded)
            raise
        self._claims.settle(ids)

    def _settle_due(self) -> None:
        # Steps 2 and 3 of the module docstring while the uploader drains a backlog: only
        # once enough is recorded, or the oldest has waited long enough. (Idle, `_streams`
        # does both at once: "no live claim" alone is no sign of idleness, since between
        # batches there often is none, and settling a few readings at a time is what costs.)
        recorded = self._recorded
        if recorded.count() >= SETTLE_ITEMS or (
            recorded.count() and recorded.age() >= SETTLE_AFTER_S
        ):
            self.settle_sync()
        if self._catch_up.age() >= CATCH_UP_AFTER_S:
            self.catch_up_sync()

    def _replay(self) -> None:
        # Deliveries an earlier process recorded but did not settle: count them before this
        # process reads the queue (read only; they are overdue, so the next settle takes
        # them), and see whether it left readings for the change order.
        with self._recorded.replay_lock:
            if self._recorded.replayed:
                return
            with self._db.read() as session:
                cur = dbapi_cursor(session)
                left = [(tuple(r[:2]), tuple(r[2:6]), r[6]) for r in cur.execute(RECORDED_SQL)]
                waiting = cur.execute(CATCH_UP_SQL, (1,)).fetchone()
            if waiting is None:
                self._catch_up.settled(more=False)
            self._recorded.load(left)

    def settle_sync(self) -> int:
        """Settle every recorded delivery: outbox rows delivered, readings delivered.

        One transaction, not fsynced (`Database.write(durable=False)`): it only derives
        state from `outbox_delivery`, whose rows go in the same commit, so a crash at worst
        leaves them to the next settle. The readings then wait in `change_catch_up` for
        their place in the change order (`catch_up_sync`).

        Returns:
            How many outbox items became delivered.
        """
        with self._queue.settle_lock:
            try:
                with self._db.write(durable=False) as session:
                    # Every recorded delivery is settled or dropped (no longer queued) by this
                    # transaction; a `complete` counts its own under the write lock, so the
                    # snapshot is exactly what this transaction takes. Subtracted once
                    # committed: a failed commit leaves the counts, as it leaves the rows.
                    # Taken once BEGIN IMMEDIATE holds SQLite's write lock (the first
                    # statement): a `complete` through another `Database` of this file does
                    # not take the in-process lock.
                    cur = dbapi_cursor(session)
                    before = queue_version(cur)
                    taken = self._recorded.snapshot()
                    moved = settle_recorded(session)
                    after = queue_version(cur)
                    # Readers between the commit and `settled` tell by the version whether
                    # their snapshot has it (`QueueCounts.unsettled`).
                    self._queue.settling(after, taken, moved)
                    if moved:
                        self._catch_up.note()
            except BaseException:
                self._queue.abandon()
                raise
            self._queue.settled(before, after, moved, forget=lambda: self._recorded.subtract(taken))
        return moved.total()

    async def catch_up(self, now: datetime | None = None) -> int:
        """One chunk of change-order catch-up if it is due (step 3 of the module docstring).

        For a timer (`gateway.jobs`): the uploader triggers it too, but only when it
        completes a batch or looks at the queue.

        Returns:
            How many readings took their place in the change order (0: nothing due).
        """
        self._settle_later()  # if due (a stalled uploader neither completes nor looks)
        catch_up = self._catch_up
        if not catch_up.waiting():  # the usual case: no thread hop for nothing
            return 0
        if not catch_up.idle and catch_up.age() < CATCH_UP_AFTER_S:
            return 0
        return await self._run(self.catch_up_sync, now or datetime.now(UTC))

    def catch_up_sync(self, now: datetime | None = None, *, limit: int | None = None) -> int:
        """Give settled readings their place in the change order, oldest delivery first.

        Readings take the next `change_seq` and `updated_at` = `now`, so `updated_since`
        sees the delivery. One transaction, not fsynced, like `settle_sync`.

        Args:
            now: The change time (default: the clock's).
            limit: At most this many readings (default `CATCH_UP_CHUNK`).

        Returns:
            How many readings moved; fewer than `limit` means none is left waiting.
        """
        now = now or datetime.now(UTC)
        limit = CATCH_UP_CHUNK if limit is None else limit
        with self._db.write(durable=False) as session:
            generation = self._catch_up.generation  # settles note under the write lock too
            cur = dbapi_cursor(session)
            waiting = cur.execute(CATCH_UP_SQL, (limit,)).fetchall()
            mark_changed(session, [row[1] for row in waiting], now)
            if waiting:
                cur.execute("DELETE FROM change_catch_up WHERE pk <= ?", (waiting[-1][0],))
        self._catch_up.settled(more=len(waiting) >= limit, generation=generation)
        return len(waiting)

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
                row.not_before, row.last_error = not_before, error
                row.attempts += 1
                session.add(row)
            streams = [(row.user_id, row.resource) for row in rows]
            log_attempts(session, claim_id, streams, "retry", datetime.now(UTC), error=error)
        self._claims.settle(self._claims.held(claim_id, ids))

    async def release(self, claim_id: str, ids: Sequence[str]) -> None:
        """Give items back unchanged; see `Outbox.release`."""
        await self._run(self._release, claim_id, ids)

    def _release(self, claim_id: str, ids: Sequence[str]) -> None:
        # Claims are in memory: nothing stored changes.
        self._claims.settle(self._claims.held(claim_id, ids))

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
                row.state = _DEAD
                row.dead_status, row.dead_body, row.dead_reason, row.dead_at = (
                    status_code,
                    body,
                    reason,
                    now,
                )
                session.add(row)
            mark_changed(session, [r.reading_id for r in rows], now, state=ReadingState.DEAD.value)
            streams = [(row.user_id, row.resource) for row in rows]
            log_attempts(
                session, claim_id, streams, _DEAD, now, status_code=status_code, error=reason
            )
        self._claims.settle(self._claims.held(claim_id, ids))
        if rows:
            _LOGGER.warning("dead-lettered %d items (HTTP %s): %s", len(rows), status_code, reason)

    async def release_all(self) -> int:
        """End every claim; see `Outbox.release_all`."""
        return await self._run(self.release_all_sync)

    def release_all_sync(self) -> int:
        """Blocking `release_all` (claims are in memory)."""
        return self._claims.release_all()

    # ---------------------------------------------------------------- dead letters

    async def dead_letters(self, user_id: str | None = None) -> list[DeadLetter]:
        """Dead letters, oldest first; see `Outbox.dead_letters`."""
        return await self._run(dead_letters.listed, self._db, user_id)

    async def requeue_dead(self, ids: Sequence[str]) -> int:
        """Put dead items back in the queue; see `Outbox.requeue_dead`."""
        return await self._run(dead_letters.requeue, self._db, ids)

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


def _log_failure(future: "asyncio.Future[None]") -> None:
    # A background settle that failed (a full disk, say) is retried at the next trigger; what
    # it would have settled stays recorded, so nothing is lost.
    if not future.cancelled() and (exc := future.exception()) is not None:
        _LOGGER.error("settling delivered readings failed: %s", exc)


def _instant(value: object) -> datetime:
    # Aggregates (MIN over a CASE) lose the column type, so the UTC text comes back raw.
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value)).astimezone(UTC)
