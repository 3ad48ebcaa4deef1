"""The collector: advertisement → driver → connect → collect → commit → disconnect.

The gateway's first promise lives here: every reading is committed to SQLite as it arrives
(`gateway.saver`: cuffs and scales hand each indication over the moment it is parsed, since
BlueZ has already confirmed it and the device may erase it), and the transfer's cursor and
device metadata are committed after the last of them, all *before* the link is closed. A commit
the store refuses is retried until it succeeds, and spooled to a file if the process stops
first. Reads are debounced per device, run concurrently up to the adapter's connection slots,
and a failing device is logged once at WARNING until it recovers.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from drivers.clock import ClockPolicy
from drivers.devices.base import (
    Advertisement,
    CollectContext,
    Cursor,
    DeviceMatch,
    Driver,
    Notice,
    NoticeCode,
    Transfer,
)
from drivers.devices.registry import Claim, DriverRegistry
from drivers.errors import DriverError
from drivers.link import GattLink
from drivers.readings import ReadingKind
from gateway.api.reading_events import publish_readings
from gateway.events import EventBus
from gateway.saver import Finish, TransferSaver
from gateway.store import Database, aio
from gateway.store import devices as device_store
from gateway.store.errors import StoreError
from gateway.store.readings import CursorUpdate, SaveResult, StoredReading
from gateway.store.spool import import_spool
from gateway.transfer_recording import TransferRecording

_LOGGER = logging.getLogger(__name__)

# Cuffs and scales advertise right after a measurement; re-read them soon after a previous
# read, but not in a tight loop while a simulated or chatty device keeps advertising.
STREAMING_MIN_INTERVAL_S = 10.0
# After a failure, wait this long (doubling per failure, capped) before trying that device again.
FAILURE_BACKOFF_S = 5.0
FAILURE_BACKOFF_MAX_S = 300.0
# How long `stop()` lets transfers in progress finish before cancelling them.
STOP_GRACE_S = 30.0
# The same once the scan ended with an error (BlueZ stopped, the adapter removed): no transfer
# can get anything more from the radio, and Bleak's own connect retries against a gone BlueZ
# run for up to a minute (3 x 20 s connect + 5 s disconnect wait). A transfer just committing
# finishes within this; what the others received is committed or spooled as they are cancelled.
RADIO_GONE_GRACE_S = 2.0
# How long a transfer keeps the link while the store refuses its commit. A cuff or scale has
# handed its records over already (holding the link saves nothing); commits go on after.
COMMIT_WAIT_S = 5.0
# How long `stop()` waits for cancelled transfers to end: a cancelled transfer still waits up
# to COMMIT_WAIT_S for what it received to be committed. One stuck in a call that ignores the
# cancellation (a D-Bus peer gone) is left behind: its received readings are spooled.
CANCEL_WAIT_S = COMMIT_WAIT_S + 1.0


class Radio(Protocol):
    """What the collector needs from the Bluetooth side (`drivers.bleak_link` provides it)."""

    def advertisements(self) -> AbstractAsyncContextManager[AsyncIterator[Advertisement]]:
        """Scan continuously; yield every advertisement heard."""
        ...

    def connect(self, advertisement: Advertisement) -> AbstractAsyncContextManager[GattLink]:
        """A connected link, disconnected when the context exits (also after a drop)."""
        ...

    async def release_stale(self, addresses: Iterable[str]) -> list[str]:
        """Hang up links a dead earlier run left connected; the addresses released."""
        ...


@dataclass(slots=True)
class DeviceState:
    """What the collector remembers about one device between advertisements."""

    claim: Claim
    advertisement: Advertisement
    seen_at: datetime
    last_read: float | None = None  # monotonic
    failures: int = 0
    warned: bool = False
    busy: bool = False
    connected: bool = False
    told: frozenset[NoticeCode] = frozenset()  # attention notices already logged


@dataclass(frozen=True, slots=True)
class TransferDone:
    """One completed transfer, for listeners (radar, metrics, the kiosk page)."""

    address: str
    match: DeviceMatch
    saved: SaveResult
    new_readings: tuple[StoredReading, ...]
    complete: bool
    notices: tuple[Notice, ...] = ()

    @property
    def needs_attention(self) -> Notice | None:
        """A notice that only a person can act on (a missing consent code), if any."""
        return next((n for n in self.notices if n.code in ATTENTION), None)


# Notices that leave readings on the device until a person acts: logged once per device
# (not at every poll) and shown by `status` among the devices that were not read.
ATTENTION = frozenset({NoticeCode.CONSENT_MISSING})


@dataclass
class CollectorHooks:
    """Callbacks the composition root wires in; all optional and non-blocking."""

    on_state: Callable[[str, DeviceState], None] = lambda _a, _s: None
    on_transfer: Callable[[TransferDone], None] = lambda _t: None
    on_error: Callable[[str, Exception], None] = lambda _a, _e: None
    on_saved: Callable[[], None] = lambda: None  # e.g. wake the uploader


@dataclass
class Collector:
    """Reads every claimable device in range, persisting before it disconnects."""

    db: Database
    registry: DriverRegistry
    radio: Radio
    zone: ZoneInfo
    events: EventBus | None = None
    max_connections: int = 2
    poll_interval_s: float = 60.0
    failure_backoff_s: float = FAILURE_BACKOFF_S
    clock_policy: ClockPolicy = field(default_factory=ClockPolicy)
    record_frames: bool = True  # keep every GATT frame with its readings (`[store]`)
    hooks: CollectorHooks = field(default_factory=CollectorHooks)
    devices: dict[str, DeviceState] = field(default_factory=dict)
    _slots: asyncio.Semaphore = field(init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _unsaved: set[TransferSaver] = field(default_factory=set, init=False)
    _new_readings: dict[str, tuple[StoredReading, ...]] = field(default_factory=dict, init=False)
    _stopping: bool = field(default=False, init=False)
    _radio_gone: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.max_connections)

    # ------------------------------------------------------------------ lifecycle
    @property
    def stopping(self) -> bool:
        """True once `stop()` was called."""
        return self._stopping

    async def run(self) -> None:
        """Recover what an earlier run left behind, then scan and read until `stop()`."""
        await self.recover()
        try:
            async with self.radio.advertisements() as adverts:
                async for advertisement in adverts:
                    if self._stopping:
                        break
                    self.on_advertisement(advertisement)
        except Exception:
            self._radio_gone = True  # `stop()` then waits RADIO_GONE_GRACE_S, not STOP_GRACE_S
            raise

    async def stop(self) -> None:
        """Stop starting reads; let transfers in progress finish (bounded), then return.

        Transfers get STOP_GRACE_S, or RADIO_GONE_GRACE_S once the scan has failed (nothing
        more can arrive); then they are cancelled, and waited for at most CANCEL_WAIT_S.
        Readings received but still refused by the store are spooled to a file that the
        next start saves (`gateway.store.spool`).
        """
        self._stopping = True
        if self._tasks:
            grace = RADIO_GONE_GRACE_S if self._radio_gone else STOP_GRACE_S
            _LOGGER.info(
                "waiting up to %g s for %d transfer(s) in progress to finish",
                grace,
                len(self._tasks),
            )
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                _, stuck = await asyncio.wait(pending, timeout=CANCEL_WAIT_S)
                if stuck:
                    _LOGGER.warning(
                        "%d transfer(s) did not end when cancelled; what they received is spooled",
                        len(stuck),
                    )
        for saver in list(self._unsaved):
            if not await saver.wait(1.0):
                saver.spool()
        self._unsaved.clear()

    @property
    def unsaved(self) -> int:
        """Readings received from devices that the store has not taken yet."""
        return sum(saver.pending for saver in self._unsaved)

    async def recover(self) -> None:
        """Save readings an earlier run spooled, and free the links it left up.

        A gateway killed mid-transfer leaves the device connected in BlueZ; such a device
        neither advertises nor sends until its idle timeout, so it is released at once.
        """
        try:
            spooled = await aio.call(import_spool, self.db, zone=self.zone)
        except StoreError as exc:
            _LOGGER.warning("spooled readings not saved yet (%s); the next start tries again", exc)
        else:
            if spooled:
                _LOGGER.info("%d spooled reading(s) from an earlier run saved", spooled)
        known = await aio.call(device_store.list_devices, self.db)
        released = await self.radio.release_stale([d.address for d in known])
        for address in released:
            _LOGGER.info("%s: released the link an earlier run left connected", address)

    async def idle(self) -> None:
        """Wait until no read is in progress (tests, the demo)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    # ------------------------------------------------------------------ scheduling
    def on_advertisement(self, advertisement: Advertisement) -> None:
        """Note an advertisement; start a read if the device's driver is due one."""
        address = advertisement.address.upper()
        state = self.devices.get(address)
        if state is None:
            claim = self.registry.match(advertisement)
            if claim is None:
                return
            state = DeviceState(claim, advertisement, datetime.now(UTC))
            self.devices[address] = state
            _LOGGER.info(
                "%s (%s): claimed by %s as %s",
                address,
                advertisement.name or "no name",
                claim.driver.name,
                claim.match.brand,
            )
        state.advertisement = advertisement
        state.seen_at = datetime.now(UTC)
        self.hooks.on_state(address, state)
        if self._stopping or state.busy or not self._due(state, time.monotonic()):
            return
        state.busy = True
        task = asyncio.get_running_loop().create_task(self._read(address, state))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _due(self, state: DeviceState, now: float) -> bool:
        if state.failures:
            backoff = min(self.failure_backoff_s * 2 ** (state.failures - 1), FAILURE_BACKOFF_MAX_S)
            return state.last_read is None or now - state.last_read >= backoff
        if state.last_read is None:
            return True
        interval = (
            self.poll_interval_s
            if state.claim.driver.kind is ReadingKind.GLUCOSE
            else min(self.poll_interval_s, STREAMING_MIN_INTERVAL_S)
        )
        return now - state.last_read >= interval

    # ------------------------------------------------------------------ one transfer
    async def _read(self, address: str, state: DeviceState) -> None:
        try:
            async with self._slots:
                done = await self.read_once(state.claim.driver, state.claim.match, state)
            state.failures = 0
            if state.warned:
                _LOGGER.warning("%s: reading again after earlier failures", address)
                state.warned = False
            self.hooks.on_transfer(done)
        except (DriverError, OSError, StoreError) as exc:  # one line each, no traceback
            state.failures += 1
            if not state.warned:
                # Once, until it recovers; driver errors already start with the address.
                _LOGGER.warning("%s", exc if str(exc).startswith(address) else f"{address}: {exc}")
                state.warned = True
            else:
                _LOGGER.debug("%s: still failing: %s", address, exc)
            self.hooks.on_error(address, exc)
        except Exception:
            state.failures += 1
            _LOGGER.exception("%s: unexpected failure while reading", address)
        finally:
            state.last_read = time.monotonic()
            state.busy = False
            state.connected = False
            self.hooks.on_state(address, state)

    async def read_once(
        self, driver: Driver, match: DeviceMatch, state: DeviceState
    ) -> TransferDone:
        """Connect, collect (committing as readings arrive), finish the commit, disconnect."""
        address = state.advertisement.address.upper()
        known = await aio.call(device_store.get_device, self.db, address)
        cursor = Cursor.from_json(known.cursor if known else None)
        saver = TransferSaver(self.db, self.zone, address, on_commit=self._committed)
        self._unsaved.add(saver)
        context = CollectContext(
            match=match,
            consent_codes=dict(known.consent_codes) if known else {},
            historical=known is None or (known.last_sequence is None and known.cursor is None),
            clock_policy=self.clock_policy,
            zone=self.zone.key,
            sink=saver.add,
        )
        if self.record_frames:
            saver.recording = TransferRecording(driver, match, cursor, context, state.advertisement)
        async with self.radio.connect(state.advertisement) as connected:
            link = saver.recording.recorder.wrap(connected) if saver.recording else connected
            state.connected = True
            self.hooks.on_state(address, state)
            try:
                transfer = await driver.collect(link, cursor, context)
            except BaseException:
                # What arrived before the failure is committed before the link closes too.
                if not await saver.wait(COMMIT_WAIT_S):
                    self._watch(saver)
                else:
                    self._unsaved.discard(saver)
                raise
            saver.add(transfer.readings)  # meters hand over at the end; known ids cost little
            finish = Finish(
                CursorUpdate(address, transfer.cursor.last_sequence, transfer.cursor.to_json()),
                self._device_fields(transfer, match, state.advertisement.name),
            )
            # Committed (fsync'd) before the context manager hangs up on the device.
            settled = await saver.finish(finish, timeout_s=COMMIT_WAIT_S)
        if settled:
            self._unsaved.discard(saver)
        else:
            self._watch(saver)
        saved = saver.totals.result()
        refined = transfer.match or match
        how = "complete" if transfer.complete else _why_incomplete(transfer)
        _LOGGER.log(
            logging.INFO
            if saved.new or saver.totals.rejected or not transfer.complete
            else logging.DEBUG,
            "%s: transfer %s: %d new, %d known%s%s",
            address,
            how,
            saved.new,
            saved.known,
            _set_aside(saver.totals.rejected),
            "" if settled else f", {saver.pending} not saved yet (retrying)",
        )
        new = self._new_readings.pop(address, ())
        done = TransferDone(address, refined, saved, new, transfer.complete, transfer.notices)
        self._tell(state, done.notices)
        return done

    @staticmethod
    def _tell(state: DeviceState, notices: tuple[Notice, ...]) -> None:
        codes = frozenset(n.code for n in notices if n.code in ATTENTION)
        for notice in notices:
            if notice.code in codes - state.told:
                _LOGGER.warning("%s", notice.message)
        state.told = codes

    def _watch(self, saver: TransferSaver) -> None:
        """Keep a saver whose commits still fail until it succeeds (or `stop` spools it)."""

        async def settle() -> None:
            await saver.wait(None)
            self._unsaved.discard(saver)

        task = asyncio.get_running_loop().create_task(settle())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _committed(self, saved: SaveResult, new: tuple[StoredReading, ...]) -> None:
        """One commit of some transfer: tell listeners at once (the page, the uploader)."""
        if new:
            address = new[0].reading.device
            self._new_readings[address] = self._new_readings.get(address, ()) + new
        self._publish(new)
        if saved.queued:
            self.hooks.on_saved()

    @staticmethod
    def _device_fields(
        transfer: Transfer, claimed: DeviceMatch, name: str | None
    ) -> dict[str, Any]:
        match = transfer.match or claimed
        info = transfer.device_info
        fields: dict[str, Any] = {
            "kind": match.kind.value,
            "provider": match.provider,
            "brand": match.brand,
        }
        if name:
            fields["name"] = name
        if match.model:
            fields["model"] = match.model
        if info is not None and info.manufacturer:
            fields["brand"] = info.manufacturer
        if info is not None and info.model:
            fields["model"] = info.model
        if transfer.clock_skew_s is not None:
            fields["clock_skew_s"] = transfer.clock_skew_s
        return fields

    def _publish(self, readings: tuple[StoredReading, ...]) -> None:
        if self.events is not None and readings:
            publish_readings(self.events, readings)


def _why_incomplete(transfer: Transfer) -> str:
    if any(n.code is NoticeCode.CAPPED for n in transfer.notices):
        return "cut by the time cap (the device was still sending)"
    return "incomplete (the link dropped or the device stopped answering; the next read resumes)"


@contextlib.asynccontextmanager
async def running(collector: Collector) -> AsyncIterator[asyncio.Task[None]]:
    """Run the collector in a task for the duration of the block, then stop it cleanly."""
    task = asyncio.get_running_loop().create_task(collector.run())
    try:
        yield task
    finally:
        await collector.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _set_aside(rejected: int) -> str:
    # Each one was logged as an error when it was set aside; the summary keeps the count
    # beside new and known so the transfer's line is the whole story.
    return f", {rejected} set aside (cannot be stored)" if rejected else ""
