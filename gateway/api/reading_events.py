"""Publishing stored readings as Junction data events (for the collector and the API).

Stage and change decide the event type (junction-digest §3.4, §5.1):

- new readings of a daily read: ``daily.data.<resource>.created`` with Junction samples;
- new readings of a device's first full read (`ReadingFlag.HISTORICAL`, the same readings
  the uploader sends in the historical stage): one data-less
  ``historical.data.<resource>.created`` per resource with the window to read back;
- stored readings that changed (assigned to a user): ``daily.data.<resource>.updated``.

Samples are Junction's (junction-digest §1.1, §1.3): ``{"timestamp", "timezone_offset",
"type": null, "unit", "value"}``, blood pressure with ``systolic``/``diastolic`` instead of
``value``; values come from `reading_out` (units converted once, in `sync.junction.mapping`).
"""

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from drivers.readings import ReadingFlag, ReadingKind
from gateway.api.schemas import Reading, reading_out
from gateway.events import (
    Change,
    Event,
    EventBus,
    Resource,
    historical_event_data,
    reading_event_data,
    reading_event_type,
)
from gateway.store.readings import StoredReading

# Which reading value becomes which Junction resource (a BP reading's pulse: heartrate).
_RESOURCES: dict[ReadingKind, tuple[tuple[Resource, str], ...]] = {
    ReadingKind.GLUCOSE: ((Resource.GLUCOSE, "glucose"),),
    ReadingKind.BLOOD_PRESSURE: (
        (Resource.BLOOD_PRESSURE, "systolic"),
        (Resource.HEARTRATE, "pulse"),
    ),
    ReadingKind.BODY: ((Resource.WEIGHT, "body_mass"), (Resource.FAT, "body_fat_percentage")),
}
# A historical window ends after its last measurement: `end_date` is exclusive in the API.
_WINDOW_PAST_LAST = timedelta(seconds=1)


def junction_sample(reading: Reading, resource: Resource) -> dict[str, Any] | None:
    """One reading's Junction sample for `resource`, or None when it has no such value.

    Raises:
        ValueError: `resource` is not one of the reading kind's resources.
    """
    sample: dict[str, Any] = {
        "timestamp": reading.start_date.isoformat(),
        "timezone_offset": reading.timezone_offset,
        "type": None,  # the sensor mode is `source.type` (junction-digest §1.3, note G)
    }
    values = reading.values
    if resource is Resource.BLOOD_PRESSURE:
        return {
            **sample,
            "unit": values["systolic"].unit,
            "systolic": values["systolic"].value,
            "diastolic": values["diastolic"].value,
        }
    names = dict(_RESOURCES[reading.kind])
    if resource not in names:
        msg = f"a {reading.kind.value} reading has no {resource.value} sample"
        raise ValueError(msg)
    quantity = values.get(names[resource])
    if quantity is None:
        return None
    return {**sample, "unit": quantity.unit, "value": quantity.value}


def publish_readings(
    bus: EventBus, readings: Iterable[StoredReading], *, change: Change = "created"
) -> list[Event]:
    """Publish readings as Junction data events, grouped per (user, device, provider), in order.

    Call after the store committed them. One event per resource of each group: e.g. a cuff's
    readings give a ``blood_pressure`` event and, with pulse, a ``heartrate`` event.

    Args:
        bus: The event bus.
        readings: New readings (``created``) or stored readings that changed (``updated``).
        change: ``created`` or ``updated``.

    Returns:
        The events published.
    """
    groups: dict[tuple[str | None, str, str, str, bool], list[Reading]] = {}
    for stored in readings:
        historical = change == "created" and ReadingFlag.HISTORICAL in stored.reading.flags
        key = (
            stored.user_id,
            stored.reading.kind.value,
            stored.reading.device,
            stored.provider,
            historical,
        )
        groups.setdefault(key, []).append(reading_out(stored))
    events = []
    for (user_id, kind, device, provider, historical), members in groups.items():
        # A kind Junction has no resource for (ketone) has no Junction data event.
        for resource, _ in _RESOURCES.get(ReadingKind(kind), ()):
            with_value = [
                (r, s) for r in members if (s := junction_sample(r, resource)) is not None
            ]
            if not with_value:
                continue
            if historical:
                kept = [r for r, _ in with_value]
                start = min(r.start_date for r in kept)
                end = max(max(r.received_at for r in kept), _after_last(kept))
                data = historical_event_data(user_id, provider, start, end)
                event_type = reading_event_type(resource, stage="historical")
            else:
                samples = [s for _, s in with_value]
                ids = [r.id for r, _ in with_value]
                data = reading_event_data(user_id, provider, kind, device, samples, ids)
                event_type = reading_event_type(resource, change=change)
            events.append(bus.publish(event_type, user_id, data))
    return events


def _after_last(readings: list[Reading]) -> datetime:
    return max(r.start_date for r in readings) + _WINDOW_PAST_LAST
