"""The composition root for `edge-gateway run`: store, collector, uploader, scheduler, API.

Everything runs on one event loop. Start-up order: open (and migrate) the store, check it can
be written, apply the config's bindings, bind the API's socket, then start the uploader, the
collector, the jobs and the API; the gateway is announced as running only once the radio
scans and the API answers. On stop the collector finishes (and commits) the transfer in
progress before anything else closes.

A part that dies (the collector without BlueZ, the uploader on a locked database, the API's
server) takes the whole process down with a `GatewayFailureError`: one line naming the part, the
cause and the remedy, so systemd's `Restart=on-failure` sees a failure, not a clean exit.
"""

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import uvicorn

from drivers.bluez_watch import quiet_bus_teardown
from drivers.clock import ClockPolicy
from drivers.devices.base import Advertisement
from drivers.devices.registry import DriverRegistry, default_registry
from drivers.errors import PairingError
from drivers.link import GattLink
from drivers.readings import ReadingKind
from gateway import jobs
from gateway.api.server import server_config
from gateway.app import create_app
from gateway.collector import Collector, CollectorHooks, Radio, TransferDone
from gateway.config import Settings
from gateway.config_bindings import apply_config_bindings
from gateway.events import EventBus, next_epoch
from gateway.failures import GatewayFailureError, bind_api, check_writable, failure_of
from gateway.metrics import GatewayMetrics
from gateway.mqtt.wiring import UpstreamState, build_mqtt_sink
from gateway.pairing import BondSource, refresh_bond_state
from gateway.pairing_coordinator import CoordinatedPairing, CoordinatedRadio, PairingCoordinator
from gateway.radar_feed import RadarFeed
from gateway.services import (
    MemoryRadar,
    NoPairing,
    PairingControl,
    Services,
)
from gateway.store import (
    DATABASE_FILENAME,
    Database,
    aio,
    device_failures,
    open_database,
)
from gateway.store import devices as device_store
from gateway.store.credentials import SqliteTokenStore
from gateway.store.devices import BondState
from gateway.store.links import SqliteLinkStore
from gateway.store.outbox import SqliteOutbox
from sync.uploader import SyncEvent, Uploader, build_uploader

if TYPE_CHECKING:
    from gateway.mqtt.sink import MqttSink

_LOGGER = logging.getLogger(__name__)

# How long start-up waits for the radio to scan and the API to answer before giving up.
START_TIMEOUT_S = 30.0


class WatchedRadio:
    """The collector's radio, noting when scanning has started (for start-up)."""

    def __init__(self, radio: Radio) -> None:
        """Wrap `radio`; `scanning` is set once its scan runs."""
        self._radio = radio
        self.scanning = asyncio.Event()

    @contextlib.asynccontextmanager
    async def advertisements(self) -> AsyncIterator[AsyncIterator[Advertisement]]:
        """The wrapped radio's scan; sets `scanning` once it started."""
        async with self._radio.advertisements() as adverts:
            self.scanning.set()
            yield adverts

    def connect(self, advertisement: Advertisement) -> AbstractAsyncContextManager[GattLink]:
        """The wrapped radio's connect."""
        return self._radio.connect(advertisement)

    async def release_stale(self, addresses: Iterable[str]) -> list[str]:
        """The wrapped radio's release of links a dead earlier run left up."""
        return await self._radio.release_stale(addresses)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the gateway owns SIGTERM (transfers finish first)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Gateway:
    """Every long-lived part of a running gateway."""

    settings: Settings
    db: Database
    events: EventBus
    outbox: SqliteOutbox
    metrics: GatewayMetrics
    radar: MemoryRadar
    uploader: Uploader
    collector: Collector
    services: Services
    close_client: Callable[[], object]
    mqtt: "MqttSink | None" = None  # [mqtt] enabled: readings also go to the owner's broker
    radio: WatchedRadio | None = None  # the collector's, to know when it scans

    async def serve(
        self,
        stop: asyncio.Event,
        *,
        api: bool = True,
        on_running: Callable[[int | None], None] | None = None,
    ) -> None:
        """Start every part, call `on_running(api_port)` once all work, run until `stop`.

        Shuts down in order (transfers first) on `stop` and on failure.

        Raises:
            GatewayFailureError: A part could not start (port taken, no BlueZ) or died while
                running (database locked, BlueZ gone); one line naming it and the remedy.
        """
        quiet_bus_teardown(asyncio.get_running_loop())  # BlueZ gone: one line, no tracebacks
        listener: socket.socket | None = None
        if api:
            listener = bind_api(self.settings.api.host, self.settings.api.port)
        scheduler = jobs.build_scheduler(self)
        scheduler.start()
        tasks = {
            asyncio.create_task(self.uploader.run(), name="uploader"),
            asyncio.create_task(self.collector.run(), name="collector"),
        }
        if self.mqtt is not None:
            tasks.add(asyncio.create_task(self.mqtt.run(), name="mqtt"))
        server: uvicorn.Server | None = None
        if listener is not None:
            config = server_config(create_app(self.services), self.settings.api)
            server = _EmbeddedServer(config)
            tasks.add(asyncio.create_task(server.serve(sockets=[listener]), name="api"))
        stopper = asyncio.create_task(stop.wait())
        failure: GatewayFailureError | None = None
        try:
            failure = await self._started(tasks, stopper, server)
            if failure is None and not stop.is_set():
                if on_running is not None:
                    on_running(None if listener is None else listener.getsockname()[1])
                done, _ = await asyncio.wait({*tasks, stopper}, return_when=asyncio.FIRST_COMPLETED)
                failure = _first_failure(done - {stopper}, stop)
        finally:
            _LOGGER.info("stopping: finishing transfers in progress")
            await self.collector.stop()
            self.uploader.stop()
            if self.mqtt is not None:
                self.mqtt.stop()
            if server is not None:
                server.should_exit = True
            scheduler.shutdown(wait=False)
            stopper.cancel()
            await asyncio.wait(tasks, timeout=10)
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                result = self.close_client()
                if asyncio.iscoroutine(result):
                    await result
            with contextlib.suppress(Exception):  # logged where it failed; all stays recorded
                await asyncio.wait_for(self.outbox.settled(), timeout=10)
            self.db.close()
            if listener is not None:
                listener.close()
            _LOGGER.info("stopped")
        if failure is not None:
            raise failure

    async def _started(
        self,
        tasks: set[asyncio.Task[None]],
        stopper: asyncio.Task[bool],
        server: uvicorn.Server | None,
    ) -> GatewayFailureError | None:
        """Wait until the radio scans and the API answers, or a part fails first."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            scanning = self.radio is None or self.radio.scanning.is_set()
            if scanning and (server is None or server.started):
                return None
            done, _ = await asyncio.wait({*tasks, stopper}, timeout=0.05)
            if stopper in done:
                return None
            if done:
                return _first_failure(done, None)
        parts = [
            name
            for name, ok in (
                ("collector (BlueZ scan)", self.radio is None or self.radio.scanning.is_set()),
                ("api", server is None or server.started),
            )
            if not ok
        ]
        return GatewayFailureError(
            f"{' and '.join(parts)} did not start within {START_TIMEOUT_S:.0f} s; check "
            "bluetoothd (`systemctl status bluetooth`) and run with -v"
        )


def _without_prefix(text: str, address: str) -> str:
    """`text` without a leading "ADDRESS: " (status shows the address in its own column)."""
    prefix = f"{address}: "
    return text[len(prefix) :] if text.upper().startswith(prefix.upper()) else text


def _done_quietly(task: "asyncio.Task[object]") -> None:
    if not task.cancelled() and task.exception() is not None:
        _LOGGER.warning("background store update failed: %s", task.exception())


def _first_failure(
    done: set[asyncio.Task[Any]], stop: asyncio.Event | None
) -> GatewayFailureError | None:
    for task in sorted(done, key=lambda t: t.get_name()):
        if task.cancelled():
            continue
        exc = task.exception()
        if exc is None and stop is not None and stop.is_set():
            continue
        _LOGGER.debug("%s stopped", task.get_name(), exc_info=exc)
        return failure_of(task.get_name(), exc)
    return None


def build_gateway(
    settings: Settings,
    radio: Radio,
    *,
    registry: DriverRegistry | None = None,
    pairing: PairingControl | None = None,
) -> Gateway:
    """Open the store and wire every part (nothing runs until `Gateway.serve`)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = open_database(settings.data_dir / DATABASE_FILENAME)
    try:
        check_writable(db)
        apply_config_bindings(db, settings)
    except BaseException:
        db.close()
        raise
    events = EventBus(epoch=next_epoch(settings.data_dir))
    outbox = SqliteOutbox(db, zone=settings.zone)
    metrics = GatewayMetrics()
    radar = MemoryRadar(events)
    junction = settings.junction
    priority = {ReadingKind(name): rank for rank, name in enumerate(junction.resource_priority)}

    def on_post(resource: ReadingKind, seconds: float, outcome: str) -> None:
        metrics.upload_latency.labels(resource=resource.value).observe(seconds)
        if outcome == "retry":
            metrics.upload_retries.labels(resource=resource.value).inc()
        elif outcome == "rejected":
            metrics.dead_letters.labels(resource=resource.value).inc()

    upstream = UpstreamState()
    uploader, client = build_uploader(
        outbox,
        base_url=junction.base_url,
        auth_url=junction.auth_url,
        api_key=junction.api_key,
        region=junction.region,
        environment=junction.environment,
        time_zone=settings.timezone,
        token_store=SqliteTokenStore(db),
        link_store=SqliteLinkStore(db),
        backfill_days=junction.backfill_days,
        scale_provider=junction.scale_provider,
        priority=priority,
        on_event=upstream.follow(_sync_event_logger(events)),
        on_post=on_post,
    )

    mqtt = build_mqtt_sink(db, settings, radar, upstream)

    feed = RadarFeed(radar)
    coordinator = PairingCoordinator()
    control = pairing or NoPairing()

    def on_transfer(done: TransferDone) -> None:
        _LOGGER.debug("%s: %d new reading(s) published", done.address, len(done.new_readings))
        if mqtt is not None and done.new_readings:
            mqtt.wake()
        feed.set_needs_pairing(done.address, False, collector.devices.get(done.address))
        if done.address not in clock_checked:
            # At its first read, not at the next hourly check: a clock an hour off should
            # be heard about while someone is still at the device.
            clock_checked.add(done.address)
            spawn(jobs.check_device_clock(db, done.address, settings.ble.clock_warn_s))
        attention = done.needs_attention
        if attention is not None:
            # Read, but its readings stay on the device until someone acts: `status` lists
            # it with the failed reads, saying what to do.
            failing.add(done.address)
            record(done.address, attention.message)
        elif done.address in failing:
            failing.discard(done.address)
            spawn(aio.call(device_failures.clear_failure, db, done.address))
        if isinstance(control, BondSource):
            spawn(refresh_bond_state(db, control, done.address))

    def record(address: str, message: str) -> None:
        state = collector.devices.get(address)
        spawn(
            aio.call(
                partial(
                    device_failures.record_failure,
                    db,
                    address,
                    _without_prefix(message, address),
                    name=state.advertisement.name if state else None,
                    kind=state.claim.match.kind.value if state else None,
                    brand=state.claim.match.brand if state else None,
                )
            )
        )

    def on_error(address: str, exc: Exception) -> None:
        metrics.ble_errors.labels(device=address).inc()
        failing.add(address)
        record(address, str(exc))
        if isinstance(exc, PairingError):
            # The device wants a bond: show the pairing step (passkey field) on the kiosk,
            # and do not claim a bond the device just refused.
            feed.set_needs_pairing(address, True, None)
            spawn(aio.call(device_store.set_bond_state, db, address, BondState.NONE))

    def on_paired(address: str) -> None:
        state = collector.devices.get(address)
        feed.set_needs_pairing(address, False, state)
        if state is not None:
            # Due at once: the person is standing there, and earlier "not paired" failures
            # must not leave it in the failure backoff.
            state.failures = 0
            state.last_read = None

    background: set[asyncio.Task[object]] = set()
    failing: set[str] = set(device_failures.failing_addresses(db))
    clock_checked: set[str] = set()

    def spawn(work: Coroutine[Any, Any, object]) -> None:
        # Hooks must not block the collector; keep a reference until the work is done.
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(work)
        background.add(task)
        task.add_done_callback(_done_quietly)
        task.add_done_callback(background.discard)

    watched = WatchedRadio(CoordinatedRadio(radio, coordinator))
    collector = Collector(
        db=db,
        registry=registry or default_registry(),
        radio=watched,
        zone=settings.zone,
        events=events,
        max_connections=settings.ble.max_connections,
        poll_interval_s=settings.ble.poll_interval_s,
        clock_policy=ClockPolicy(write=settings.ble.write_device_clock),
        record_frames=settings.store.record_frames,
        hooks=CollectorHooks(
            on_state=feed,
            on_transfer=on_transfer,
            on_error=on_error,
            on_saved=uploader.wake,
        ),
    )
    services = Services(
        settings=settings,
        db=db,
        events=events,
        outbox=outbox,
        radar=radar,
        pairing=CoordinatedPairing(control, coordinator, on_paired=on_paired),
        sync=uploader,
        metrics=metrics,
        readiness={
            "collector": lambda: not collector.stopping,
            # Readings received but refused by the store (locked, disk full) are at risk.
            "readings_saved": lambda: collector.unsaved == 0,
        },
    )
    return Gateway(
        settings=settings,
        db=db,
        events=events,
        outbox=outbox,
        metrics=metrics,
        radar=radar,
        uploader=uploader,
        collector=collector,
        services=services,
        close_client=client.aclose,
        mqtt=mqtt,
        radio=watched,
    )


def _sync_event_logger(events: EventBus) -> Callable[[SyncEvent], None]:
    def on_event(event: SyncEvent) -> None:
        events.publish(
            f"gateway.sync.{event.kind}",
            event.user_id,
            {
                "resource": event.resource.value if event.resource else None,
                "detail": event.detail,
                "count": event.count,
            },
        )

    return on_event
