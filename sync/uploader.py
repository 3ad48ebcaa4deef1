"""The upload loop: outbox → mapping → Junction, prioritised, retried, resumable.

What it mirrors from the SDKs (mobile-sdk-sync.md §3) and what it does better (§6):

- at most one POST in flight per (user, resource); resources in the SDK's priority order;
  users take turns; the historical-stage gate (`sync.priority`);
- stage: every reading goes up as ``daily``, as the Devices SDK sends BLE readings
  (mobile-sdk-sync.md §2.4 item 3: "`stage: "daily"`, no `start_date`/`end_date`").
  Only with ``backfill_days`` (``junction.backfill_days``) does the first read of a device's
  memory (enqueued as historical by `items_for_read`) go up as ``historical``, with the
  window Junction's docs describe for a historical pull, ``[now - days_to_pull, now]``
  (junction-docs ``wearables__providers__historical-data-pull-range.txt``), "now" being the
  read's receive time in whole seconds, the same on every chunk, ``is_final_chunk`` on the
  last (mobile-sdk-sync.md §2.2). Readings of that read older than the window would be
  dropped by Junction (``…data-ingestion-bounds.txt``: "out of bound data are dropped"),
  so they go up as ``daily``;
- scales upload under `sync.junction.providers.upload_slug` (``junction.scale_provider``);
- a reading leaves the outbox only after a 2xx. Retryable failures (408/429/5xx, timeouts,
  dropped connections) back off with full jitter, honour ``Retry-After`` and cap at a few
  minutes (`sync.backoff`); a 429/503 with ``Retry-After`` holds every stream, not just
  the one that hit it; losing the network releases the batch without counting an
  attempt and probes until it is back; 401 refreshes once (in the client); a 400/422
  batch is split until the refused readings are isolated, and those (or the whole batch
  for other 4xx) are dead-lettered with the response body and a `SyncEvent`;
- ``invalid_token`` holds the user as revoked (credentials purged), ``reauthentication_
  required`` parks the user until `sign_in`; pause/resume per user; all holds persist;
- per-(user, resource) progress with the SDK's status names, stored in the outbox;
- crash-safe: on start every claim is released, so a batch cut off mid-POST is resent and
  Junction's upsert absorbs it.

Logs carry user ids, resources and counts, never measured values.
"""

import asyncio
import dataclasses
import logging
import random
import time
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pydantic import SecretStr

from drivers.readings import ReadingKind
from sync.backoff import MAX_DELAY_S, backoff_for
from sync.errors import (
    AuthError,
    InvalidTokenError,
    NotSignedInError,
    OfflineError,
    RejectedError,
    RetryableSyncError,
    ServerBusyError,
    UnauthorizedError,
    UploadTimeoutError,
)
from sync.junction.auth import TokenStore
from sync.junction.client import JunctionClient, LinkStore
from sync.junction.mapping import UnmappableReadingError, Upload, build_upload
from sync.junction.providers import upload_slug
from sync.junction.regions import Environment, Region
from sync.outbox import (
    Batch,
    OutboxItem,
    Stage,
    StreamInfo,
    SyncStatus,
    UploadProgress,
    UserHold,
)
from sync.outbox import Outbox as OutboxProtocol
from sync.priority import DEFAULT_PRIORITY, StreamKey, plan

_LOGGER = logging.getLogger(__name__)

BATCH_SIZE = 500  # readings per POST; the SDK's background chunk is 2 500 samples
MAX_IN_FLIGHT = 4  # POSTs at once over all streams (a Pi's uplink, Junction's goodwill)
LEASE_S = 300.0  # a claim outlives any request (timeouts are 5 + 30 s) and a few retries
IDLE_POLL_S = 5.0  # look at the outbox at least this often even if nobody calls `wake`
SPLIT_STATUSES = frozenset({400, 422})  # refusals about the body: isolate the bad readings
THROTTLE_STATUSES = frozenset({429, 503})  # with Retry-After: every stream waits, not just one
MAX_BACKFILL_DAYS = 365  # "The configurable maximum is 365 days" (historical-data-pull-range)

Window = tuple[datetime, datetime]


class UploadClient(Protocol):
    """What the uploader needs from `JunctionClient` (tests may pass a fake)."""

    async def post(self, user_id: str, upload: Upload) -> None:
        """POST one upload; return on 2xx, raise `sync.errors.SyncError` otherwise."""
        ...

    async def ensure_connected(self, user_id: str, provider: str) -> None:
        """Create the manual-provider connection once per (user, provider)."""
        ...

    async def sign_in(self, user_id: str, sign_in_token: SecretStr) -> None:
        """Exchange a sign-in token for the user's session."""
        ...


@dataclass(frozen=True, slots=True)
class SyncEvent:
    """Something an operator should hear about (dead letter, hold, network lost/back).

    Attributes:
        kind: ``dead_letter``, ``user_held``, ``offline`` or ``online``.
        user_id: The user concerned, if any.
        resource: The resource concerned, if any.
        detail: One line, no measured values.
        count: Readings concerned.
    """

    kind: str
    user_id: str | None
    resource: ReadingKind | None
    detail: str
    count: int = 0


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Offline:
    """Network-lost state: no new batches until `until` (monotonic), then one probe."""

    attempt: int = 0
    until: float = 0.0
    since: float | None = None


@dataclass
class _Stats:
    batches: int = 0
    posts: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0


class Uploader:
    """Drains an `Outbox` to Junction (see the module docstring)."""

    def __init__(
        self,
        outbox: OutboxProtocol,
        client: UploadClient,
        *,
        time_zone: str,
        priority: Mapping[ReadingKind, int] = DEFAULT_PRIORITY,
        backfill_days: int | None = None,
        scale_provider: str | None = None,
        batch_size: int = BATCH_SIZE,
        max_in_flight: int = MAX_IN_FLIGHT,
        lease_s: float = LEASE_S,
        idle_poll_s: float = IDLE_POLL_S,
        rng: random.Random | None = None,
        on_event: Callable[[SyncEvent], None] | None = None,
        on_post: Callable[[ReadingKind, float, str], None] | None = None,
        clock: Callable[[], datetime] = _utcnow,
        backoff: Callable[[RetryableSyncError, int, random.Random], float] = backoff_for,
    ) -> None:
        """Build an uploader.

        Args:
            outbox: Where readings wait.
            client: The Junction client.
            time_zone: IANA zone the device clocks show (sent as ``time_zone``).
            priority: Resource priorities, lower first (`sync.priority.DEFAULT_PRIORITY`).
            backfill_days: Send a device's first read as a historical backfill over this
                many days (see the module docstring); None: everything daily (the SDK's).
            scale_provider: Slug every scale uploads as (None: brand slug if the docs
                list body for it, else ``manual``; `sync.junction.providers`).
            batch_size: Most readings per POST.
            max_in_flight: Most POSTs at once (over all streams).
            lease_s: How long a claim lives if this process dies holding it.
            idle_poll_s: Longest sleep between looks at the outbox.
            rng: Random source for jitter.
            on_event: Called for operator-worthy events; must not block.
            on_post: Called after every POST with the resource, its duration in seconds and
                its outcome (``delivered``, ``rejected``, ``retry``, ``failed``); must not block.
            clock: Wall clock (aware UTC) for claims and retry times.
            backoff: Retry delay policy (`sync.backoff.backoff_for`; tests shrink it).

        Raises:
            ValueError: `time_zone` is not an IANA zone.
        """
        try:
            self._zone = zoneinfo.ZoneInfo(time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            msg = f"time zone {time_zone!r} is not an IANA zone; set e.g. Europe/London"
            raise ValueError(msg) from exc
        self._time_zone = time_zone
        self._outbox = outbox
        self._client = client
        self._priority = dict(priority)
        if backfill_days is not None and not 1 <= backfill_days <= MAX_BACKFILL_DAYS:
            msg = f"backfill_days {backfill_days}: expected 1 to {MAX_BACKFILL_DAYS} days"
            raise ValueError(msg)
        self._backfill = timedelta(days=backfill_days) if backfill_days else None
        self._scale_provider = scale_provider
        self._batch_size = max(1, batch_size)
        self._max_in_flight = max(1, max_in_flight)
        self._lease = timedelta(seconds=lease_s)
        self._idle_poll_s = idle_poll_s
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not crypto
        self._on_event = on_event
        self._on_post = on_post
        self._clock = clock
        self._backoff = backoff
        self._wake = asyncio.Event()
        self._stopping = False
        self._offline = _Offline()
        self._gate_until = 0.0  # monotonic: Junction asked everyone to wait (429/503)
        self._last_served: dict[str, int] = {}
        self._tick = 0
        self._last_status: dict[StreamKey, SyncStatus] = {}
        self._delivered_total: dict[StreamKey, int] = {}
        self._warned: set[StreamKey] = set()
        self.stats = _Stats()

    # ------------------------------------------------------------------ control

    def wake(self) -> None:
        """New items were enqueued (or a hold cleared): look at the outbox now."""
        self._wake.set()

    def stop(self) -> None:
        """Ask `run` to return after cancelling in-flight POSTs (their items are resent)."""
        self._stopping = True
        self._wake.set()

    async def pause(self, user_id: str) -> None:
        """Stop starting uploads for a user; the queue and progress are kept."""
        await self._outbox.set_hold(user_id, UserHold.PAUSED, held=True)
        for stream in await self._outbox.streams(self._clock()):
            if stream.user_id == user_id:
                key = (user_id, stream.resource)
                await self._progress(key, SyncStatus.CONNECTION_PAUSED, None)

    async def resume(self, user_id: str) -> None:
        """Undo `pause`."""
        await self._outbox.set_hold(user_id, UserHold.PAUSED, held=False)
        self.wake()

    async def sign_in(self, user_id: str, sign_in_token: SecretStr) -> None:
        """Give a user a new session and lift a re-authentication or revocation hold.

        Raises:
            ValueError: The token is malformed.
            SyncError: Junction refused it or could not be reached.
        """
        await self._client.sign_in(user_id, sign_in_token)
        for hold in (
            UserHold.NOT_SIGNED_IN,
            UserHold.REAUTHENTICATION_REQUIRED,
            UserHold.CREDENTIALS_REVOKED,
        ):
            await self._outbox.set_hold(user_id, hold, held=False)
        self.wake()

    # ------------------------------------------------------------------ loop

    async def run(self, *, until_idle: bool = False) -> None:
        """Upload until `stop` (or, with `until_idle`, until nothing uploadable is left).

        Starts by releasing every claim (a previous run may have died mid-POST).

        Args:
            until_idle: Return once no queued item of an unheld user remains and nothing
                is in flight (tests, benchmarks, ``demo --once``).
        """
        self._stopping = False
        released = await self._outbox.release_all()
        if released:
            _LOGGER.info("Released %d readings claimed by a previous run", released)
        for progress in await self._outbox.progress():
            key = (progress.user_id, progress.resource)
            self._delivered_total[key] = progress.delivered_total
            self._last_status[key] = progress.status
        tasks: dict[StreamKey, asyncio.Task[None]] = {}
        try:
            while not self._stopping:
                self._wake.clear()
                now = self._clock()
                holds = await self._outbox.holds()
                streams = [s for s in await self._outbox.streams(now) if s.user_id not in holds]
                if self._backfill is None:  # nothing goes up as historical: no stage gate
                    streams = [dataclasses.replace(s, historical=0, head=None) for s in streams]
                if until_idle and not streams and not tasks:
                    return
                slots = self._max_in_flight - len(tasks)
                if self._offline.since is not None:  # one probe at a time, when it is due
                    probing = time.monotonic() >= self._offline.until
                    slots = min(slots, 1 - len(tasks) if probing else 0)
                if time.monotonic() < self._gate_until:
                    slots = 0
                chosen = plan(
                    streams,
                    in_flight=tasks.keys(),
                    held_users=holds.keys(),
                    last_served=self._last_served,
                    slots=max(slots, 0),
                    priority=self._priority,
                )
                for key in chosen.deprioritized:
                    await self._progress(key, SyncStatus.DEPRIORITIZED, Stage.HISTORICAL)
                for key in chosen.start:
                    self._tick += 1
                    self._last_served[key[0]] = self._tick
                    tasks[key] = asyncio.create_task(self._upload(key), name=f"upload {key}")
                await self._sleep(tasks, streams, now)
                for key, task in list(tasks.items()):
                    if task.done():
                        del tasks[key]
                        if not task.cancelled() and (exc := task.exception()) is not None:
                            _LOGGER.error("Upload task %s failed", key, exc_info=exc)
        finally:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)

    async def _sleep(
        self,
        tasks: Mapping[StreamKey, asyncio.Task[None]],
        streams: Sequence[StreamInfo],
        now: datetime,
    ) -> None:
        timeout = self._idle_poll_s
        for s in streams:
            if s.next_due_at is not None:
                timeout = min(timeout, max(0.0, (s.next_due_at - now).total_seconds()))
        if self._offline.since is not None:
            timeout = min(timeout, max(0.0, self._offline.until - time.monotonic()))
        if self._gate_until > time.monotonic():
            timeout = min(timeout, self._gate_until - time.monotonic())
        waiter = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait(
                {waiter, *tasks.values()},
                timeout=timeout + 0.001,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            waiter.cancel()

    # ------------------------------------------------------------------ one batch

    async def _upload(self, key: StreamKey) -> None:
        user_id, resource = key
        now = self._clock()
        batch = await self._outbox.claim(
            user_id, resource, limit=self._batch_size, now=now, lease_until=now + self._lease
        )
        if batch is None:
            # The outbox said "due" but had nothing to give (a race, or a store that counts
            # differently): hold the stream's slot briefly rather than spin.
            await self._progress(key, SyncStatus.NO_DATA, None)
            await asyncio.sleep(min(self._idle_poll_s, 1.0))
            return
        self.stats.batches += 1
        groups = self._stages(batch.items)
        stage = groups[0][0]
        started = {SyncStatus.STARTED, SyncStatus.UPLOADED_CHUNK}
        probing = self._offline.since is not None  # a probe is no new attempt: keep expectedError
        if self._last_status.get(key) not in started and not probing:
            await self._progress(key, SyncStatus.STARTED, stage, count=len(batch.items))
        pending = {item.id: item for item in batch.items}
        provider = upload_slug(resource, batch.items[0].provider, self._scale_provider)
        try:
            await self._client.ensure_connected(user_id, provider)
            for group_stage, window, items in groups:
                send = _Send(provider, group_stage, window)
                await self._deliver(batch, send, items, pending, final=True)
        except RetryableSyncError as exc:
            await self._retry(batch, list(pending.values()), exc)
            return
        except AuthError as exc:
            await self._auth_failed(batch, list(pending), exc)
            return
        except RejectedError as exc:  # a link refusal: nothing can go up for this provider
            await self._dead(batch, list(pending.values()), exc.status_code, exc.body, str(exc))
            return
        except Exception as exc:  # a bug: keep the items, retry later, never spin
            _LOGGER.exception("%s/%s: upload failed unexpectedly", *key)
            await self._retry(batch, list(pending.values()), _UnexpectedError(repr(exc)))
            return
        self._recovered(key)
        remaining = batch.remaining + len(pending)
        status = SyncStatus.COMPLETED if remaining == 0 else SyncStatus.UPLOADED_CHUNK
        await self._progress(key, status, stage, count=len(batch.items))
        if remaining:
            self.wake()

    def _stages(
        self, items: Sequence[OutboxItem]
    ) -> list[tuple[Stage, Window | None, list[OutboxItem]]]:
        """Split a batch by the stage each item goes up in (see the module docstring)."""
        first = items[0]
        if self._backfill is None or first.stage is not Stage.HISTORICAL:
            return [(Stage.DAILY, None, list(items))]
        received = first.window_end or first.enqueued_at
        # Whole seconds, rounded up so the read's own receive instant is inside.
        end = received.replace(microsecond=0) + timedelta(seconds=bool(received.microsecond))
        window = (end - self._backfill, end)
        # One pass: a membership test per item compared whole dataclasses (O(batch²)).
        inside: list[OutboxItem] = []
        older: list[OutboxItem] = []
        for item in items:
            (inside if item.reading.instant(self._zone) >= window[0] else older).append(item)
        groups: list[tuple[Stage, Window | None, list[OutboxItem]]] = []
        if older:
            groups.append((Stage.DAILY, None, older))
        if inside:
            groups.append((Stage.HISTORICAL, window, inside))
        return groups

    async def _deliver(
        self,
        batch: Batch,
        send: "_Send",
        items: list[OutboxItem],
        pending: dict[str, OutboxItem],
        *,
        final: bool,
    ) -> None:
        """POST `items`; on a body refusal split them until the bad ones are isolated."""
        while True:
            try:
                upload = build_upload(
                    [item.reading for item in items],
                    user_id=batch.user_id,
                    resource=batch.resource,
                    provider=send.provider,
                    stage=send.stage,
                    zone=self._zone,
                    time_zone=self._time_zone,
                    window=send.window,
                    is_final_chunk=final and batch.remaining == 0,
                )
                break
            except UnmappableReadingError as exc:  # dead-letter that one, send the rest
                bad = [item for item in items if item.id == exc.reading_id] or items
                await self._dead(batch, bad, None, "", str(exc))
                for item in bad:
                    pending.pop(item.id, None)
                items = [item for item in items if item not in bad]
                if not items:
                    return
            except ValueError as exc:
                await self._dead(batch, items, None, "", f"not mappable: {exc}")
                for item in items:
                    pending.pop(item.id, None)
                return
        try:
            await self._post(batch, upload)
        except RejectedError as exc:
            if len(items) > 1 and exc.status_code in SPLIT_STATUSES:
                half = len(items) // 2
                await self._deliver(batch, send, items[:half], pending, final=False)
                await self._deliver(batch, send, items[half:], pending, final=final)
                return
            await self._dead(batch, items, exc.status_code, exc.body, str(exc))
        else:
            await self._outbox.complete(batch.claim_id, [i.id for i in items], self._clock())
            key = (batch.user_id, batch.resource)
            self._delivered_total[key] = self._delivered_total.get(key, 0) + len(items)
            self.stats.delivered += len(items)
            # One line per delivered upload: what went where (never the values).
            _LOGGER.info(
                "%s/%s: %d reading(s) delivered to Junction",
                batch.user_id,
                batch.resource.value,
                len(items),
            )
        for item in items:
            pending.pop(item.id, None)

    async def _post(self, batch: Batch, upload: Upload) -> None:
        """One POST, timed for `on_post` (the gateway's upload-latency histogram)."""
        wait = self._gate_until - time.monotonic()
        if wait > 0:  # a 429/503 arrived while this batch was being claimed or linked
            await asyncio.sleep(wait)
        self.stats.posts += 1
        started = time.monotonic()
        outcome = "failed"
        try:
            await self._client.post(batch.user_id, upload)
            outcome = "delivered"
        except RejectedError:
            outcome = "rejected"
            raise
        except RetryableSyncError:
            outcome = "retry"
            raise
        finally:
            if self._on_post is not None:
                self._on_post(batch.resource, time.monotonic() - started, outcome)

    async def _retry(self, batch: Batch, items: list[OutboxItem], exc: RetryableSyncError) -> None:
        key = (batch.user_id, batch.resource)
        ids = [item.id for item in items]
        if isinstance(exc, OfflineError):
            await self._outbox.release(batch.claim_id, ids)
            self._went_offline(exc)
            await self._progress(key, SyncStatus.EXPECTED_ERROR, items[0].stage, error=str(exc))
            return
        # Before any await: other streams must not post while this retry is recorded.
        if (
            isinstance(exc, ServerBusyError)
            and exc.status_code in THROTTLE_STATUSES
            and exc.retry_after
        ):
            # Junction is shedding load: every stream waits, not only this one.
            gate = time.monotonic() + min(exc.retry_after, MAX_DELAY_S)
            self._gate_until = max(self._gate_until, gate)
        attempt = max(item.attempts for item in items) + 1
        delay = self._backoff(exc, attempt, self._rng)
        not_before = self._clock() + timedelta(seconds=delay)
        await self._outbox.retry_later(batch.claim_id, ids, not_before=not_before, error=str(exc))
        self.stats.retried += len(ids)
        self._back_online()
        status = SyncStatus.TIMED_OUT if isinstance(exc, UploadTimeoutError) else SyncStatus.ERROR
        await self._progress(key, status, items[0].stage, count=len(ids), error=str(exc))
        self._warn_once(key, "%s/%s: %s (attempt %d, retry in %.1f s)", *key, exc, attempt, delay)

    async def _auth_failed(self, batch: Batch, ids: list[str], exc: AuthError) -> None:
        key = (batch.user_id, batch.resource)
        stage = batch.items[0].stage
        if isinstance(exc, UnauthorizedError) and self._uses_api_key():
            # The team key is refused: every user is affected, retrying is all we can do.
            items = [i for i in batch.items if i.id in ids]
            await self._retry(batch, items, _KeyRefusedError(str(exc)))
            return
        await self._outbox.release(batch.claim_id, ids)
        if isinstance(exc, InvalidTokenError):
            hold, status = UserHold.CREDENTIALS_REVOKED, SyncStatus.CONNECTION_DESTROYED
        elif isinstance(exc, NotSignedInError):
            hold, status = UserHold.NOT_SIGNED_IN, SyncStatus.CONNECTION_PAUSED
        else:  # re-authentication required, not signed in, or 401 after a refresh
            hold, status = UserHold.REAUTHENTICATION_REQUIRED, SyncStatus.CONNECTION_PAUSED
        await self._outbox.set_hold(batch.user_id, hold, held=True)
        await self._progress(key, status, stage, error=str(exc))
        _LOGGER.warning("User %s held (%s): %s", batch.user_id, hold.value, exc)
        self._emit(SyncEvent("user_held", batch.user_id, batch.resource, str(exc), len(ids)))

    def _uses_api_key(self) -> bool:
        return isinstance(self._client, JunctionClient) and self._client.uses_api_key

    async def _dead(
        self,
        batch: Batch,
        items: Sequence[OutboxItem],
        status_code: int | None,
        body: str,
        reason: str,
    ) -> None:
        key = (batch.user_id, batch.resource)
        ids = [item.id for item in items]
        await self._outbox.dead_letter(
            batch.claim_id,
            ids,
            status_code=status_code,
            body=body,
            reason=reason,
            now=self._clock(),
        )
        self.stats.dead += len(ids)
        await self._progress(key, SyncStatus.ERROR, items[0].stage, count=len(ids), error=reason)
        _LOGGER.warning("%s/%s: %d readings dead-lettered: %s", *key, len(ids), reason)
        self._emit(SyncEvent("dead_letter", batch.user_id, batch.resource, reason, len(ids)))

    # ------------------------------------------------------------------ state

    def _went_offline(self, exc: OfflineError) -> None:
        offline = self._offline
        if offline.since is None:
            offline.since = time.monotonic()
            _LOGGER.warning("Junction unreachable, holding uploads: %s", exc)
            self._emit(SyncEvent("offline", None, None, str(exc)))
        offline.attempt += 1
        offline.until = time.monotonic() + self._backoff(exc, offline.attempt, self._rng)

    def _back_online(self) -> None:
        if self._offline.since is not None:
            _LOGGER.warning("Junction reachable again")
            self._emit(SyncEvent("online", None, None, "Junction reachable again"))
        self._offline = _Offline()

    def _recovered(self, key: StreamKey) -> None:
        self._back_online()
        if key in self._warned:
            self._warned.discard(key)
            _LOGGER.warning("%s/%s: uploading again", *key)

    def _warn_once(self, key: StreamKey, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            _LOGGER.warning(message, *args)
        else:
            _LOGGER.debug(message, *args)

    def _emit(self, event: SyncEvent) -> None:
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                _LOGGER.exception("Sync event handler failed on %s", event.kind)

    async def _progress(
        self,
        key: StreamKey,
        status: SyncStatus,
        stage: Stage | None,
        *,
        count: int = 0,
        error: str | None = None,
    ) -> None:
        if status is SyncStatus.DEPRIORITIZED and self._last_status.get(key) is status:
            return
        self._last_status[key] = status
        await self._outbox.record_progress(
            UploadProgress(
                user_id=key[0],
                resource=key[1],
                status=status,
                at=self._clock(),
                stage=stage,
                count=count,
                delivered_total=self._delivered_total.get(key, 0),
                error=error,
            )
        )


@dataclass(frozen=True, slots=True)
class _Send:
    """How a group of items goes up: provider slug, stage and historical window."""

    provider: str
    stage: Stage
    window: Window | None


class _UnexpectedError(RetryableSyncError):
    """An exception nobody classified (a bug): retried with backoff, logged with its trace."""


class _KeyRefusedError(RetryableSyncError):
    """A refusal we can only wait out (the team API key was refused)."""


def build_uploader(
    outbox: OutboxProtocol,
    *,
    base_url: str | None,
    api_key: SecretStr | None,
    region: str,
    environment: str,
    time_zone: str,
    token_store: TokenStore | None = None,
    link_store: LinkStore | None = None,
    auth_url: str | None = None,
    backfill_days: int | None = None,
    scale_provider: str | None = None,
    priority: Mapping[ReadingKind, int] = DEFAULT_PRIORITY,
    batch_size: int = BATCH_SIZE,
    max_in_flight: int = MAX_IN_FLIGHT,
    on_event: Callable[[SyncEvent], None] | None = None,
    on_post: Callable[[ReadingKind, float, str], None] | None = None,
) -> tuple[Uploader, JunctionClient]:
    """An uploader and its client from plain settings (the gateway's composition root).

    Args:
        outbox: The store's outbox.
        base_url: Junction API base (None: the region/environment host).
        api_key: Team API key, or None for per-user Sign-In Tokens.
        region: ``us`` or ``eu``.
        environment: ``production``, ``sandbox`` or ``dev``.
        time_zone: IANA zone the device clocks show.
        token_store: Where Sign-In Token sessions live (the store's); in memory if None.
        link_store: Where made manual-provider links are remembered; in memory if None.
        auth_url: Token endpoint base (None: the region/environment auth host).
        backfill_days: See `Uploader`.
        scale_provider: See `Uploader`.
        priority: Resource priorities, lower first.
        batch_size: Most readings per POST.
        max_in_flight: Most POSTs at once.
        on_event: Called for dead letters, holds, network lost/back.
        on_post: Called after every POST (resource, seconds, outcome).

    Returns:
        The uploader and the client (close it with ``await client.aclose()``).

    Raises:
        ValueError: Unknown region, environment or time zone.
    """
    client = JunctionClient(
        base_url=base_url,
        api_key=api_key,
        region=Region(region),
        environment=Environment(environment),
        auth_url=auth_url,
        token_store=token_store,
        link_store=link_store,
    )
    uploader = Uploader(
        outbox,
        client,
        time_zone=time_zone,
        priority=priority,
        backfill_days=backfill_days,
        scale_provider=scale_provider,
        batch_size=batch_size,
        max_in_flight=max_in_flight,
        on_event=on_event,
        on_post=on_post,
    )
    return uploader, client
