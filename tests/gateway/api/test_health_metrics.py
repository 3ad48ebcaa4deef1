"""/v1/health (liveness, readiness) and /metrics (Prometheus text)."""

from gateway.store import readings
from tests.sync.factories import glucose


async def test_health_ready(services, local) -> None:
    body = (await local.get("/v1/health")).json()
    assert body["status"] == "ok"
    assert body["live"] is True
    assert body["ready"] is True
    assert body["checks"] == {"store": True}


async def test_health_not_ready_is_503(services, local) -> None:
    def broken() -> bool:
        msg = "collector crashed"
        raise RuntimeError(msg)

    services.readiness["collector"] = lambda: False
    services.readiness["uploader"] = broken
    response = await local.get("/v1/health")
    assert response.status_code == 503
    assert response.json()["checks"] == {"store": True, "collector": False, "uploader": False}
    assert response.json()["live"] is True
    assert (await local.get("/v1/health/live")).json() == {"live": True}


class FakeUploader:
    def __init__(self, outbox) -> None:
        self.stats = type(
            "Stats", (), {"batches": 3, "posts": 4, "delivered": 900, "retried": 2, "dead": 1}
        )()
        self.outbox = outbox

    def wake(self) -> None: ...

    async def pause(self, user_id: str) -> None: ...

    async def resume(self, user_id: str) -> None: ...

    async def sign_in(self, user_id, sign_in_token) -> None: ...


async def test_metrics_reads_the_uploaders_counters(services, local) -> None:
    services.sync = FakeUploader(services.outbox)
    text = (await local.get("/metrics")).text
    assert 'edge_gateway_uploader_total{counter="retried"} 2.0' in text
    assert 'edge_gateway_uploader_total{counter="delivered"} 900.0' in text


async def test_metrics(services, local) -> None:
    readings.save_transfer(services.db, [glucose(1), glucose(2)], zone=services.settings.zone)
    services.metrics.ble_errors.labels(device="C0:FF:EE:00:00:01").inc()
    services.metrics.upload_latency.labels(resource="glucose").observe(0.2)
    services.metrics.upload_retries.labels(resource="glucose").inc()
    response = await local.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'edge_gateway_readings_stored{kind="glucose"} 2.0' in text
    assert 'edge_gateway_ble_errors_total{device="C0:FF:EE:00:00:01"} 1.0' in text
    assert 'edge_gateway_upload_latency_seconds_count{resource="glucose"} 1.0' in text
    assert 'edge_gateway_upload_retries_total{resource="glucose"} 1.0' in text
    assert "edge_gateway_upload_queue_depth" in text
    assert "edge_gateway_event_subscribers 0.0" in text
