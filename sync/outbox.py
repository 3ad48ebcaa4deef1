"""The outbox: what the uploader needs from durable storage (the store implements it).

The uploader never touches SQLite; it talks to an `Outbox`. `gateway.store` implements the
protocol over SQLite, `sync.memory_outbox.MemoryOutbox` in memory, and
`tests/contracts/test_outbox_contract.py` holds both to the same contract.

Vocabulary:

- **item**: one reading waiting for upload, for one user (`OutboxItem`). Its key is
  `reading.id` (stable across re-reads, DESIGN.md §4), so enqueueing the same record twice
  is a no-op.
- **stream**: the items of one `(user_id, resource)`, where resource is the reading's kind.
  The uploader keeps at most one POST in flight per stream.
- **group**: items of a stream that can share one POST envelope: same provider, stage and
  historical window (`OutboxItem.group`).
- **claim**: a lease on up to N due items of one group (`Batch`). Claimed items are invisible
  to other claims until the claim is settled (complete / retry_later / dead_letter /
  release) or its lease runs out. After a crash or restart `release_all` (called by the
  uploader on start-up) puts them back, and a lapsed lease frees them anyway, so nothing
  claimed is ever lost; the worst case is a resend, which Junction's upsert absorbs.
- **hold**: a per-user reason not to upload (paused by an operator, waiting for
  re-authentication, credentials revoked). Holds are persisted; items stay queued.
- **progress**: the latest `UploadProgress` per stream, with the SDK's status names, for
  the local API.

All datetimes are timezone-aware UTC. Every method is safe to call again with the same
arguments (idempotent), because the uploader may be cancelled between "done" and "recorded".
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import Protocol, runtime_checkable

from drivers.readings import Reading, ReadingFlag, ReadingKind

# Junction resources readings are uploaded to (DESIGN.md §3): it has no ketone timeseries.
UPLOADED_KINDS = frozenset({ReadingKind.GLUCOSE, ReadingKind.BLOOD_PRESSURE, ReadingKind.BODY})


def uploadable(reading: Reading) -> bool:
    """Whether a reading may go to Junction at all.

    Only kinds Junction has a resource for, and only values that are samples:
    `ReadingFlag.VALUE_UNUSABLE` readings and ketones are kept locally, never sent.
    """
    return reading.kind in UPLOADED_KINDS and ReadingFlag.VALUE_UNUSABLE not in reading.flags


class Stage(StrEnum):
    """Junction's upload stage (mobile-sdk-sync.md §3.1)."""

    DAILY = "daily"  # new readings
    HISTORICAL = "historical"  # the first read of a device's memory (a backfill)


class SyncStatus(StrEnum):
    """Per-stream status, named as the SDK's `SyncProgress.SyncStatus` (integer code in `code`)."""

    DEPRIORITIZED = "deprioritized"
    STARTED = "started"
    READ_CHUNK = "readChunk"
    UPLOADED_CHUNK = "uploadedChunk"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    NO_DATA = "noData"
    ERROR = "error"
    REVALIDATING_SYNC_STATE = "revalidatingSyncState"
    TIMED_OUT = "timedOut"
    EXPECTED_ERROR = "expectedError"
    CONNECTION_PAUSED = "connectionPaused"
    CONNECTION_DESTROYED = "connectionDestroyed"

    @property
    def code(self) -> int:
        """The SDK's integer code for this status (0 deprioritized … 12 connectionDestroyed)."""
        return list(SyncStatus).index(self)


class UserHold(StrEnum):
    """Why the uploader must not upload a user's items for now."""

    PAUSED = "paused"  # operator paused sync for this user (cleared by resume)
    NOT_SIGNED_IN = "not_signed_in"  # no session yet: cleared by the first sign-in token
    REAUTHENTICATION_REQUIRED = "reauthentication_required"  # cleared by a new sign-in token
    CREDENTIALS_REVOKED = "credentials_revoked"  # invalid_token: user deleted or token revoked


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One reading waiting for upload on behalf of one user.

    Attributes:
        reading: The reading, as the driver produced it (units unconverted).
        user_id: The Junction user the reading belongs to.
        provider: Junction provider slug for the envelope (the binding may override the
            driver's choice, so it is stored here and not taken from `reading.provider`).
        stage: `HISTORICAL` for the first read of a device's memory, else `DAILY`.
        window_start: Historical window start (fixed for the whole backfill); None if daily.
        window_end: Historical window end; None if daily.
        enqueued_at: When the item entered the outbox (aware, UTC); claim order within a stream.
        attempts: Failed attempts so far (retryable failures only; maintained by the outbox).
    """

    reading: Reading
    user_id: str
    provider: str
    stage: Stage
    enqueued_at: datetime
    window_start: datetime | None = None
    window_end: datetime | None = None
    attempts: int = 0

    @property
    def id(self) -> str:
        """The item key: the reading's stable id."""
        return self.reading.id

    @property
    def resource(self) -> ReadingKind:
        """The stream's resource: the reading's kind."""
        return self.reading.kind

    @property
    def group(self) -> tuple[str, Stage, datetime | None, datetime | None]:
        """Items with equal groups (within a stream) may share one POST."""
        return (self.provider, self.stage, self.window_start, self.window_end)


@dataclass(frozen=True, slots=True)
class Batch:
    """A claim on items of one group of one stream.

    Attributes:
        claim_id: Opaque id naming this claim; settle the claim with it.
        user_id: The stream's user.
        resource: The stream's resource.
        items: The claimed items, oldest `enqueued_at` first; never empty.
        remaining: Items of the same group that are still queued (not delivered, not
            dead, not in this batch), whatever their backoff; 0 means this batch is the
            group's final chunk.
    """

    claim_id: str
    user_id: str
    resource: ReadingKind
    items: tuple[OutboxItem, ...]
    remaining: int


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What is queued in one stream (delivered and dead items excluded).

    Attributes:
        user_id: The stream's user.
        resource: The stream's resource.
        queued: Items queued, including claimed ones and ones waiting for a retry.
        due: Items claimable now (not claimed, retry time reached).
        claimed: Items under a live claim.
        next_due_at: Earliest retry time among queued, unclaimed items that are not yet
            due; None when there are none.
        historical: Queued items in the historical stage.
        head: The stage of the stream's head: its oldest queued item (by `enqueued_at`,
            then id) that is due or claimed, i.e. what the stream is sending now or next.
            None when every queued item waits for a retry, or when an implementation does
            not say (then `sync.priority` treats any historical item as the head's).
    """

    user_id: str
    resource: ReadingKind
    queued: int
    due: int
    claimed: int
    next_due_at: datetime | None
    historical: int
    head: Stage | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An item Junction refused for good (a permanent 4xx), kept for inspection.

    Attributes:
        item: The refused item.
        status_code: The HTTP status Junction answered, or None if the refusal was local.
        body: The response body (truncated by the uploader), for the operator.
        reason: One line saying what went wrong and what to do.
        at: When the item was dead-lettered.
    """

    item: OutboxItem
    status_code: int | None
    body: str
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class UploadProgress:
    """The latest upload status of one stream, for the local API.

    Attributes:
        user_id: The stream's user.
        resource: The stream's resource.
        status: What happened last, with the SDK's status names.
        at: When it happened.
        stage: The stage of the batch concerned, if any.
        count: Readings concerned by this status (e.g. uploaded in the chunk).
        delivered_total: Readings of this stream delivered so far (cumulative).
        error: For error statuses, one line (never a measured value); else None.
    """

    user_id: str
    resource: ReadingKind
    status: SyncStatus
    at: datetime
    stage: Stage | None = None
    count: int = 0
    delivered_total: int = 0
    error: str | None = None


@runtime_checkable
class Outbox(Protocol):
    """Durable queue of readings to upload, with claims, retries, dead letters and holds.

    Implementations must make every method atomic (a crash leaves either the old or the new
    state) and durable before returning. Methods never raise for unknown ids or stale
    claims: they ignore what does not apply. Datetimes are aware UTC.
    """

    async def enqueue(self, items: Sequence[OutboxItem]) -> int:
        """Add items to the outbox.

        An item whose id is already known (queued, claimed, delivered or dead) is skipped:
        re-reads of a record enqueue nothing new.

        Args:
            items: Items to add (`attempts` is ignored and starts at 0).

        Returns:
            How many items were new.
        """
        ...

    async def streams(self, now: datetime) -> list[StreamInfo]:
        """Every stream with at least one queued item.

        Args:
            now: The current time: items whose retry time is at or before it are due, and
                claims whose lease ended at or before it count as released.

        Returns:
            One `StreamInfo` per stream, in no particular order.
        """
        ...

    async def claim(
        self,
        user_id: str,
        resource: ReadingKind,
        *,
        limit: int,
        now: datetime,
        lease_until: datetime,
    ) -> Batch | None:
        """Claim up to `limit` due items of one stream, all of one group.

        Takes the stream's oldest due item (by `enqueued_at`, then id) and then the next
        oldest due items of the same group. A stream has at most one live claim: while one
        is live (its lease not ended at `now`), this returns None. A claim whose lease has
        ended is void, and its items are due again at once (their attempts unchanged).

        Args:
            user_id: The stream's user.
            resource: The stream's resource.
            limit: Most items to claim (>= 1).
            now: The current time.
            lease_until: When the claim lapses if it is not settled.

        Returns:
            The batch, or None if nothing in the stream is due or a claim is live.
        """
        ...

    async def complete(self, claim_id: str, ids: Sequence[str], now: datetime) -> None:
        """Mark items delivered (Junction answered 2xx): they leave the outbox for good.

        Applies to the given items whatever claim holds them now (a 2xx is a fact, even
        after a lease ran out). When no item of the claim remains unsettled, the claim ends.

        Args:
            claim_id: The claim the items were sent under.
            ids: Item ids (a subset of the claim is fine).
            now: The current time.
        """
        ...

    async def retry_later(
        self, claim_id: str, ids: Sequence[str], *, not_before: datetime, error: str
    ) -> None:
        """Give items back after a retryable failure; they are due again at `not_before`.

        Increments each item's `attempts`. Only items still held by `claim_id` are affected.

        Args:
            claim_id: The claim holding the items.
            ids: Item ids.
            not_before: When the items become due again.
            error: One line describing the failure (kept for the API; no measured values).
        """
        ...

    async def release(self, claim_id: str, ids: Sequence[str]) -> None:
        """Give items back unchanged (not sent, or sent with an unknown outcome).

        Used when the uploader stops, goes offline or finds the user held: `attempts` and
        retry times are untouched. Only items still held by `claim_id` are affected.

        Args:
            claim_id: The claim holding the items.
            ids: Item ids.
        """
        ...

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
        """Move items to the dead-letter state (a permanent refusal).

        They leave the queue (no longer in `streams`, never claimed) but are kept, with the
        response, until `requeue_dead`. Only items still held by `claim_id` are affected.

        Args:
            claim_id: The claim holding the items.
            ids: Item ids.
            status_code: HTTP status of the refusal, or None for a local refusal.
            body: Response body (already truncated).
            reason: One line: what went wrong and what to do.
            now: The current time.
        """
        ...

    async def release_all(self) -> int:
        """End every claim at once (the uploader calls it on start-up, after a crash).

        Returns:
            How many items were released.
        """
        ...

    async def dead_letters(self, user_id: str | None = None) -> list[DeadLetter]:
        """Dead-lettered items, oldest first, optionally of one user only.

        Args:
            user_id: Only this user's items, or every user's if None.

        Returns:
            The dead letters.
        """
        ...

    async def requeue_dead(self, ids: Sequence[str]) -> int:
        """Put dead-lettered items back in the queue, due now, with `attempts` reset to 0.

        Args:
            ids: Item ids; ids that are not dead are ignored.

        Returns:
            How many items were requeued.
        """
        ...

    async def holds(self) -> Mapping[str, frozenset[UserHold]]:
        """Every user with at least one hold, and their holds."""
        ...

    async def set_hold(self, user_id: str, hold: UserHold, *, held: bool) -> None:
        """Add (`held=True`) or clear (`held=False`) one hold of one user.

        Args:
            user_id: The user.
            hold: The hold to add or clear.
            held: Whether the hold should be present afterwards.
        """
        ...

    async def record_progress(self, progress: UploadProgress) -> None:
        """Store the latest progress of one stream, replacing the previous one.

        Args:
            progress: The new status of `(progress.user_id, progress.resource)`.
        """
        ...

    async def progress(self, user_id: str | None = None) -> list[UploadProgress]:
        """The latest progress of every stream ever recorded, optionally of one user.

        Args:
            user_id: Only this user's streams, or every user's if None.

        Returns:
            One `UploadProgress` per stream, sorted by user then resource.
        """
        ...


def items_for_read(
    readings: Sequence[Reading],
    *,
    user_id: str,
    zone: tzinfo,
    enqueued_at: datetime,
    provider: str | None = None,
) -> list[OutboxItem]:
    """Outbox items for the readings of one device read, attributed to one user.

    Readings flagged `ReadingFlag.HISTORICAL` (the first full read of a device's memory)
    get the historical stage and one fixed window per resource: from the earliest measurement
    instant of those readings to the latest receive time. Other readings are daily. The stage
    marks where a reading came from; what goes to Junction is the uploader's choice: daily
    unless ``backfill_days`` is set, and then the documented window ending at `window_end`
    (`sync.uploader`).

    Args:
        readings: What one read of one device produced.
        user_id: The Junction user they belong to.
        zone: The zone device clocks show (to place the window).
        enqueued_at: The enqueue time (aware, UTC).
        provider: Provider slug overriding each reading's own (a binding's choice).

    Returns:
        One item per uploadable reading (`uploadable`), in the given order; the others are
        kept by the store and never queued.
    """
    readings = [r for r in readings if uploadable(r)]
    windows: dict[ReadingKind, tuple[datetime, datetime]] = {}
    for reading in readings:
        if ReadingFlag.HISTORICAL not in reading.flags:
            continue
        start, end = reading.instant(zone), reading.received_at.astimezone(UTC)
        if reading.kind in windows:
            old_start, old_end = windows[reading.kind]
            start, end = min(start, old_start), max(end, old_end)
        windows[reading.kind] = (start, max(start, end))
    items = []
    for reading in readings:
        window = windows.get(reading.kind) if ReadingFlag.HISTORICAL in reading.flags else None
        items.append(
            OutboxItem(
                reading=reading,
                user_id=user_id,
                provider=provider or reading.provider,
                stage=Stage.HISTORICAL if window else Stage.DAILY,
                enqueued_at=enqueued_at,
                window_start=window[0] if window else None,
                window_end=window[1] if window else None,
            )
        )
    return items
