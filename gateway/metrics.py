"""Prometheus metrics of the gateway, in one registry per `GatewayMetrics` (tests stay apart).

Recorded by the parts that see the facts: the collector (`ble_errors`), the uploader
(`upload_latency`, `upload_retries`, `dead_letters`); the gauges that the store knows
(readings stored, queue depth) are refreshed by `/metrics` at scrape time.
"""

from typing import Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

UPLOADER_COUNTERS = ("batches", "posts", "delivered", "retried", "dead")


@runtime_checkable
class UploaderStats(Protocol):
    """What `/metrics` reads from `sync.uploader.Uploader.stats` (any object with these)."""

    batches: int
    posts: int
    delivered: int
    retried: int
    dead: int


# Upload round trips: tens of ms on a LAN stub, seconds over a Pi's mobile uplink.
_LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class GatewayMetrics:
    """The gateway's metrics and the registry `/metrics` exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.readings_stored = Gauge(
            "edge_gateway_readings_stored",
            "Readings in the store, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "edge_gateway_upload_queue_depth",
            "Readings waiting for upload, by resource.",
            ["resource"],
            registry=self.registry,
        )
        self.upload_latency = Histogram(
            "edge_gateway_upload_latency_seconds",
            "Time from claiming a batch to Junction's answer.",
            ["resource"],
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.upload_retries = Counter(
            "edge_gateway_upload_retries",
            "Upload attempts that will be retried, by resource.",
            ["resource"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "edge_gateway_dead_letters",
            "Readings Junction refused for good, by resource.",
            ["resource"],
            registry=self.registry,
        )
        self.ble_errors = Counter(
            "edge_gateway_ble_errors",
            "Bluetooth failures (connect, GATT, parse), by device address.",
            ["device"],
            registry=self.registry,
        )
        self.uploader_totals = Gauge(
            "edge_gateway_uploader_total",
            "The running uploader's own counters since start (batches, posts, delivered, "
            "retried, dead), read at scrape time.",
            ["counter"],
            registry=self.registry,
        )
        self.event_subscribers = Gauge(
            "edge_gateway_event_subscribers",
            "Clients attached to /v1/events.",
            registry=self.registry,
        )
