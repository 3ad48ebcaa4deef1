"""`/metrics`: Prometheus text exposition (store gauges refreshed at scrape time)."""

from datetime import UTC, datetime

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.api import queries
from gateway.api.deps import ReadScope, ServicesDep
from gateway.api.schemas import AUTH_RESPONSES
from gateway.metrics import UPLOADER_COUNTERS, UploaderStats
from gateway.store import aio

router = APIRouter(tags=["metrics"], responses=AUTH_RESPONSES)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."}},
)
async def metrics(services: ServicesDep, _: ReadScope) -> Response:
    """Readings stored, queue depth, upload latency, retries, BLE errors per device."""
    m = services.metrics
    counts = await aio.call(queries.reading_counts, services.db)
    m.readings_stored.clear()
    for kind, count in counts.items():
        m.readings_stored.labels(kind=kind).set(count)
    depth: dict[str, int] = {}
    for stream in await services.outbox.streams(datetime.now(UTC)):
        depth[stream.resource.value] = depth.get(stream.resource.value, 0) + stream.queued
    m.queue_depth.clear()
    for resource, queued in depth.items():
        m.queue_depth.labels(resource=resource).set(queued)
    stats = getattr(services.sync, "stats", None)
    if isinstance(stats, UploaderStats):
        for name in UPLOADER_COUNTERS:
            m.uploader_totals.labels(counter=name).set(getattr(stats, name))
    m.event_subscribers.set(services.events.subscribers)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
