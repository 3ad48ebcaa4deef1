"""Making a transfer's readings durable as they arrive, and never throwing them away.

BlueZ confirms each indication the moment it arrives, and a cuff or scale may then erase that
record, so a reading held only in memory is at risk until SQLite has it. `TransferSaver` takes
readings from a driver's sink (`CollectContext.sink`) and commits whatever is pending at once,
one transaction per batch (a batch is whatever arrived while the previous commit ran, so a
paced device gets one commit per indication and a burst is group-committed).

A commit that fails (database locked past the busy timeout, disk full, read-only) is retried
with backoff, for as long as it takes; the readings stay in memory meanwhile, and the log says
so. If the process has to stop first, `spool` writes them to a file beside the database that
the next start saves (`gateway.store.spool`). A reading whose own data the store cannot take
never costs the others: the batch is saved reading by reading and only that one is set aside,
with an error naming it.

With a `TransferRecording` attached, each commit also stores the GATT frames recorded so far
(`gateway.store.frames`) in the same transaction as the readings derived from them. A
transfer that stores no new reading (a meter polled with nothing new re-sends its last
record) stores no frames: the transfer that first stored those readings holds their bytes.
Frames are not spooled: the spool exists for readings a device may already have erased; the
frames of a spooled transfer are dropped (counted in the log), which only means `reparse`
cannot re-derive those readings.
"""

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from drivers.readings import Reading
from gateway.store import Database, aio
from gateway.store import devices as device_store
from gateway.store.errors import StoreError
from gateway.store.frames import FrameBatch
from gateway.store.readings import (
    CursorUpdate,
    SaveResult,
    StoredReading,
    get_reading,
    save_transfer,
)
from gateway.store.spool import write_spool
from gateway.transfer_recording import TransferRecording

_LOGGER = logging.getLogger(__name__)

# Retry a failed commit after 0.1 s, doubling up to 5 s: a lock held by a backup or a
# migration clears in seconds, a full disk when someone frees space.
RETRY_FIRST_S = 0.1
RETRY_MAX_S = 5.0


@dataclass(frozen=True, slots=True)
class Finish:
    """What the last commit of a transfer adds: the cursor and the device's metadata."""

    cursor: CursorUpdate | None = None
    device_fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class Committed:
    """Totals over every commit of one transfer."""

    new_ids: list[str] = field(default_factory=list)
    seen_ids: set[str] = field(default_factory=set)
    queued: int = 0
    unassigned_ids: list[str] = field(default_factory=list)
    rejected: int = 0

    def result(self) -> SaveResult:
        """As one `SaveResult` (known = readings of the transfer that were stored before)."""
        new = len(self.new_ids)
        return SaveResult(
            new,
            len(self.seen_ids) - new - self.rejected,
            self.queued,
            tuple(self.unassigned_ids),
            tuple(self.new_ids),
        )


class TransferSaver:
    """Commits one device's readings as they arrive; retries until the store takes them.

    Use from the event loop: `add` (the driver's sink; never blocks), then `finish` once the
    driver returned. Listeners get each commit's new readings through `on_commit`.
    """

    def __init__(
        self,
        db: Database,
        zone: ZoneInfo,
        address: str,
        *,
        on_commit: Callable[[SaveResult, tuple[StoredReading, ...]], None] = lambda _r, _n: None,
        recording: TransferRecording | None = None,
    ) -> None:
        """Save readings of the device at `address` into `db` (device clocks in `zone`).

        `recording`, if given (or set later, before the first frame), has its frames stored
        with the readings.
        """
        self.db = db
        self.recording = recording
        self._frames_stored = False
        self.zone = zone
        self.address = address
        self.on_commit = on_commit
        self.totals = Committed()
        self._taken: set[str] = set()  # ids ever added: a stream's readings come back at the end
        self._pending: list[Reading] = []
        self._finish: Finish | None = None
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._failures = 0

    # ------------------------------------------------------------------ feeding
    def add(self, readings: Sequence[Reading]) -> None:
        """Queue readings for the next commit (a `ReadingSink`).

        A reading already added is skipped: a cuff's or scale's driver sinks each reading as it
        arrives and returns them all again at the end, and saving them twice would only cost a
        second commit that finds them known.
        """
        fresh = [r for r in readings if r.id not in self._taken]
        if not fresh:
            return
        self._taken.update(r.id for r in fresh)
        self._pending.extend(fresh)
        self._kick()

    @property
    def pending(self) -> int:
        """Readings received and not yet committed."""
        return len(self._pending)

    @property
    def settled(self) -> bool:
        """Everything added (and the finish, if given) is committed."""
        return self._idle.is_set()

    async def finish(self, finish: Finish, *, timeout_s: float) -> bool:
        """Commit the cursor and device metadata after everything pending; wait a while.

        Returns:
            True if everything is committed; False if the store still refuses after
            `timeout_s` (commits go on in the background: see `wait`, `spool`).
        """
        self._finish = finish
        self._kick()
        return await self.wait(timeout_s)

    async def wait(self, timeout_s: float | None) -> bool:
        """Wait until everything is committed, at most `timeout_s`; True if it is."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def spool(self) -> None:
        """Write what is still pending to the spool file (the process is stopping)."""
        if self._task is not None:
            self._task.cancel()
        if self.recording is not None and self.recording.recorder.pending:
            _LOGGER.warning(
                "%s: %d recorded frame(s) not saved; their readings can not be re-derived",
                self.address,
                len(self.recording.recorder.pending),
            )
        readings = list(self._pending)
        if not readings:
            return
        try:
            path = write_spool(self.db, self.address, readings)
        except OSError as exc:
            _LOGGER.error(  # noqa: TRY400 - one line: the cause is in the message
                "%s: %d received reading(s) were never saved and could not be spooled (%s); "
                "they are lost unless the device still holds them",
                self.address,
                len(readings),
                exc,
            )
            return
        self._pending.clear()
        _LOGGER.warning(
            "%s: %d received reading(s) not yet saved were written to %s; "
            "the next start saves them",
            self.address,
            len(readings),
            path,
        )

    # ------------------------------------------------------------------ committing
    def _kick(self) -> None:
        self._idle.clear()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        delay = RETRY_FIRST_S
        while self._pending or self._finish is not None:
            batch = list(self._pending)
            finish = self._finish
            try:
                await self._commit(batch, finish)
            except StoreError as exc:
                self._failures += 1
                level = logging.WARNING if self._failures == 1 else logging.DEBUG
                _LOGGER.log(
                    level,
                    "%s: %d received reading(s) not saved yet: %s; retrying every %g s at most "
                    "until the database takes them (the device may already have erased them: "
                    "keep the gateway running)",
                    self.address,
                    len(batch),
                    exc,
                    RETRY_MAX_S,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            if self._failures:
                _LOGGER.warning(
                    "%s: the database took the readings after %d failed attempt(s)",
                    self.address,
                    self._failures,
                )
                self._failures = 0
            delay = RETRY_FIRST_S
            del self._pending[: len(batch)]
            if finish is self._finish:
                self._finish = None
        self._idle.set()

    async def _commit(self, batch: list[Reading], finish: Finish | None) -> None:
        frames = self._frame_batch()  # taken on the loop, where frames are appended
        result, new = await aio.call(self._commit_blocking, batch, finish, frames)
        if frames is not None and self.recording is not None and result.transfer_pk is not None:
            self.recording.recorder.committed(len(frames.frames))
            self._frames_stored = True
        totals = self.totals
        totals.seen_ids.update(r.id for r in batch)
        totals.new_ids.extend(result.new_ids)
        totals.queued += result.queued
        totals.unassigned_ids.extend(result.unassigned_ids)
        if result.new:
            self.on_commit(result, new)

    def _frame_batch(self) -> FrameBatch | None:
        recording = self.recording
        if recording is None:
            return None
        # Stored with the first commit that stores a new reading, and from then on with every
        # commit. A poll that only re-reads known records keeps none: a meter re-sends its
        # cursor record on every poll, and the transfer that first stored it has its frames.
        always = self._frames_stored
        return FrameBatch(recording.header(), recording.recorder.pending, always=always)

    def _commit_blocking(
        self, batch: list[Reading], finish: Finish | None, frames: FrameBatch | None = None
    ) -> tuple[SaveResult, tuple[StoredReading, ...]]:
        advance = finish.cursor if finish is not None else None
        try:
            saved = save_transfer(self.db, batch, zone=self.zone, advance=advance, frames=frames)
        except StoreError:
            raise
        except Exception:  # noqa: BLE001 - a reading's own data must not cost the others
            saved = self._one_by_one(batch, advance, frames)
        if finish is not None and finish.device_fields:
            device_store.upsert_device(self.db, self.address, **finish.device_fields)
        new = tuple(s for i in saved.new_ids if (s := get_reading(self.db, i)) is not None)
        return saved, new

    def _one_by_one(
        self, batch: list[Reading], advance: CursorUpdate | None, frames: FrameBatch | None
    ) -> SaveResult:
        new_ids: list[str] = []
        queued = known = 0
        unassigned: list[str] = []
        for reading in batch:
            try:
                one = save_transfer(self.db, [reading], zone=self.zone)
            except StoreError:
                raise
            except Exception as exc:  # noqa: BLE001 - set this one aside, keep the rest
                self.totals.rejected += 1
                _LOGGER.error(  # noqa: TRY400 - one line: the cause is in the message
                    "%s: reading %s cannot be stored (%s: %s); set aside, the others are saved",
                    self.address,
                    reading.id,
                    type(exc).__name__,
                    exc,
                )
                continue
            new_ids.extend(one.new_ids)
            queued += one.queued
            known += one.known
            unassigned.extend(one.unassigned_ids)
        transfer_pk = None
        if advance is not None or frames is not None:
            if frames is not None and new_ids:
                frames = dataclasses.replace(frames, always=True)
            last = save_transfer(self.db, [], zone=self.zone, advance=advance, frames=frames)
            transfer_pk = last.transfer_pk
        return SaveResult(
            len(new_ids), known, queued, tuple(unassigned), tuple(new_ids), transfer_pk
        )
