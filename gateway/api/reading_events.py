"""Publishing stored readings as ``daily.data.<kind>.created`` events (for the collector)."""

from collections.abc import Iterable

from gateway.api.schemas import reading_out
from gateway.events import Event, EventBus, reading_event_data, reading_event_type
from gateway.store.readings import StoredReading


def publish_readings(bus: EventBus, readings: Iterable[StoredReading]) -> list[Event]:
    """Publish new readings, one event per (user, kind, device, provider) group, in order.

    Call after the store committed them. Each event's ``data.data`` holds the readings as
    `GET /v1/readings` shows them.

    Returns:
        The events published.
    """
    groups: dict[tuple[str | None, str, str, str], list[StoredReading]] = {}
    for stored in readings:
        key = (stored.user_id, stored.reading.kind.value, stored.reading.device, stored.provider)
        groups.setdefault(key, []).append(stored)
    events = []
    for (user_id, kind, device, provider), members in groups.items():
        items = [reading_out(s).model_dump(mode="json") for s in members]
        data = reading_event_data(user_id, provider, kind, device, items)
        events.append(bus.publish(reading_event_type(kind), user_id, data))
    return events
