"""The composition root for `edge-gateway run`: store, collector, uploader, scheduler, API.

Everything runs on one event loop. Start-up order: open (and migrate) the store, apply the
config's bindings, then start the uploader, the collector, the jobs and the API. On stop the
collector finishes (and commits) the transfer in progress before anything else closes.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import uvicorn

from drivers.clock import ClockPolicy
from drivers.devices.registry import DriverRegistry, default_registry
from drivers.readings import ReadingKind
from gateway import jobs
from gateway.api.server import server_config
from gateway.app import create_app
from gateway.collector import Collector, CollectorHooks, DeviceState, Radio, TransferDone
from gateway.config import Settings
from gateway.events import EventBus, next_epoch
from gateway.metrics import GatewayMetrics
from gateway.mqtt.sink import MqttSink
from gateway.services import (
    MemoryRadar,
    NoPairing,
    PairingControl,
    RadarDevice,
    Services,
)
from gateway.store import DATABASE_FILENAME, Database, open_database
from gateway.store import users as user_store
from gateway.store.credentials import SqliteTokenStore
from gateway.store.outbox import SqliteOutbox
from gateway.store.readings import assign_device_readings
from sync.uploader import SyncEvent, Uploader, build_uploader

_LOGGER = logging.getLogger(__name__)

# The radar (and its SSE events) is refreshed at most this often per device while advertising.
RADAR_REFRESH_S = 5.0


def apply_config_bindings(db: Database, settings: Settings) -> None:
    """Make the store's bindings include the config's; give matching readings to their user."""
    for binding in settings.bindings:
        user_store.bind(
            db,
            binding.device,
            binding.user_id,
            device_user=binding.device_user,
            provider=binding.provider,
        )
        assigned = assign_device_readings(
            db,
            binding.device,
            binding.user_id,
            zone=settings.zone,
            device_user=binding.device_user,
            provider=binding.provider,
        )
        if assigned:
            _LOGGER.info("%s: %d stored reading(s) assigned from config", binding.device, assigned)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the gateway owns SIGTERM (transfers finish first)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class RadarFeed:
    """Collector state → the API's radar, throttled so advertisements don't flood the bus."""

    radar: MemoryRadar
    _last: dict[str, tuple[float, bool]] = field(default_factory=dict)

    def __call__(self, address: str, state: DeviceState) -> None:
        """Collector hook: refresh the radar entry if it changed or is getting stale."""
        now = time.monotonic()
        previous = self._last.get(address)
        if previous and previous[1] == state.connected and now - previous[0] < RADAR_REFRESH_S:
            return
        self._last[address] = (now, state.connected)
        self.radar.update(
            RadarDevice(
                address=address,
                name=state.advertisement.name,
                kind=state.claim.match.kind.value,
                rssi=state.advertisement.rssi,
                connected=state.connected,
                seen_at=state.seen_at,
            )
        )


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
    mqtt: MqttSink | None = None  # [mqtt] enabled: readings also go to the owner's broker

    async def serve(self, stop: asyncio.Event, *, api: bool = True) -> None:
        """Run until `stop` is set, then shut down in order (transfers first)."""
        scheduler = jobs.build_scheduler(self)
        scheduler.start()
        tasks = {
            asyncio.create_task(self.uploader.run(), name="uploader"),
            asyncio.create_task(self.collector.run(), name="collector"),
        }
        if self.mqtt is not None:
            tasks.add(asyncio.create_task(self.mqtt.run(), name="mqtt"))
        server: uvicorn.Server | None = None
        if api:
            config = server_config(create_app(self.services), self.settings.api)
            server = _EmbeddedServer(config)
            tasks.add(asyncio.create_task(server.serve(), name="api"))
        stopper = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait({*tasks, stopper}, return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stopper}:
                if not task.cancelled() and task.exception() is not None:
                    _LOGGER.error("%s stopped", task.get_name(), exc_info=task.exception())
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
            self.db.close()
            _LOGGER.info("stopped")


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
    apply_config_bindings(db, settings)
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
        api_key=junction.api_key,
        region=junction.region,
        environment=junction.environment,
        time_zone=settings.timezone,
        token_store=SqliteTokenStore(db),
        priority=priority,
        on_event=upstream.follow(_sync_event_logger(events)),
        on_post=on_post,
    )

    mqtt = build_mqtt_sink(db, settings, radar, upstream)

    def on_transfer(done: TransferDone) -> None:
        _LOGGER.debug("%s: %d new reading(s) published", done.address, len(done.new_readings))
        if mqtt is not None and done.new_readings:
            mqtt.wake()

    def on_error(address: str, exc: Exception) -> None:
        metrics.ble_errors.labels(device=address).inc()
        del exc

    collector = Collector(
        db=db,
        registry=registry or default_registry(),
        radio=radio,
        zone=settings.zone,
        events=events,
        max_connections=settings.ble.max_connections,
        poll_interval_s=settings.ble.poll_interval_s,
        clock_policy=ClockPolicy(write=settings.ble.write_device_clock),
        hooks=CollectorHooks(
            on_state=RadarFeed(radar),
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
        pairing=pairing or NoPairing(),
        sync=uploader,
        metrics=metrics,
        readiness={"collector": lambda: not collector.stopping},
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
    )


@dataclass
class UpstreamState:
    """Whether Junction is reachable, from the uploader's offline/online events."""

    online: bool = True

    def follow(self, inner: Callable[[SyncEvent], None]) -> Callable[[SyncEvent], None]:
        """An `on_event` hook that tracks reachability, then calls `inner`."""

        def on_event(event: SyncEvent) -> None:
            if event.kind in ("offline", "online"):
                self.online = event.kind == "online"
            inner(event)

        return on_event


def build_mqtt_sink(
    db: Database, settings: Settings, radar: MemoryRadar, upstream: UpstreamState
) -> MqttSink | None:
    """The MQTT sink when `[mqtt] enabled`, else None."""
    if not settings.mqtt.enabled:
        return None

    def rssi(address: str) -> int | None:
        return next((d.rssi for d in radar.snapshot() if d.address == address), None)

    return MqttSink(db, settings.mqtt, upstream_online=lambda: upstream.online, rssi=rssi)


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
