"""Wiring the MQTT sink into a running gateway: built only when `[mqtt] enabled`."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.config import Settings
from gateway.services import MemoryRadar
from gateway.store import Database
from sync.uploader import SyncEvent

if TYPE_CHECKING:
    from gateway.mqtt.sink import MqttSink


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
) -> "MqttSink | None":
    """The MQTT sink when `[mqtt] enabled`, else None."""
    if not settings.mqtt.enabled:
        return None
    # Imported only when enabled: aiomqtt and paho cost start-up time a Pi need not pay.
    from gateway.mqtt.sink import MqttSink

    def rssi(address: str) -> int | None:
        return next((d.rssi for d in radar.snapshot() if d.address == address), None)

    return MqttSink(db, settings.mqtt, upstream_online=lambda: upstream.online, rssi=rssi)
