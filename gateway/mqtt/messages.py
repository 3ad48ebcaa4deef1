"""A stored reading → the MQTT messages that carry it.

Every reading becomes one event on ``<base>/<node>/reading`` (QoS 1, not retained: a log for
Node-RED/openHAB flows) and, when it is the node's newest of its kind, one retained message
per measure on ``<base>/<node>/<measure>`` (what Home Assistant's sensors read; retained so a
restarted Home Assistant shows the latest value at once — MQTT Sensor docs). Payloads carry
the reading's own measurement time (UTC, ISO 8601), never the publish time, and its flags.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.mqtt.measures import Measure, values_of
from gateway.mqtt.topics import Node, Topics
from gateway.store.readings import StoredReading


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT publish: topic, UTF-8 payload, retain flag (always QoS 1)."""

    topic: str
    payload: str
    retain: bool


def iso(value: datetime) -> str:
    """An instant as ISO 8601 in UTC (``2026-11-20T06:30:00+00:00``)."""
    return value.astimezone(UTC).isoformat()


def json_text(document: dict[str, Any]) -> str:
    """Compact, key-sorted JSON (stable text, so equal documents give equal digests)."""
    return json.dumps(document, separators=(",", ":"), sort_keys=True, allow_nan=False)


@dataclass(frozen=True, slots=True)
class ReadingMessages:
    """What one reading publishes.

    Attributes:
        node: The node it belongs to.
        event: Its every-reading event.
        states: Its latest-value messages (empty when a newer reading is already shown).
        digest: A hash of the event: equal digests mean nothing a subscriber sees changed.
    """

    node: Node
    event: Message
    states: tuple[Message, ...]
    digest: str

    @property
    def all(self) -> tuple[Message, ...]:
        """Event first, then states."""
        return (self.event, *self.states)


def build(
    stored: StoredReading,
    node: Node,
    topics: Topics,
    table: tuple[Measure, ...],
    *,
    newest: bool,
) -> ReadingMessages:
    """The messages for `stored` on `node`; `newest` says whether it updates the states."""
    reading = stored.reading
    values = values_of(reading, table)
    units = {m.key: m.unit for m in table if m.key in values}
    flags = sorted(flag.value for flag in reading.flags)
    time = iso(stored.start_date)
    event = {
        "reading_id": reading.id,
        "kind": reading.kind.value,
        "device": reading.device,
        "time": time,
        "received_at": iso(reading.received_at),
        "flags": flags,
        "values": values,
        "units": units,
    }
    payload = json_text(event)
    states: tuple[Message, ...] = ()
    if newest:
        states = tuple(
            Message(
                topics.measure(node, key),
                json_text(
                    {
                        "value": value,
                        "unit": units[key],
                        "time": time,
                        "flags": flags,
                        "reading_id": reading.id,
                    }
                ),
                retain=True,
            )
            for key, value in values.items()
        )
    digest = hashlib.sha256(f"{node.node_id}\n{payload}".encode()).hexdigest()[:32]
    return ReadingMessages(node, Message(topics.readings(node), payload, False), states, digest)
