"""Home Assistant MQTT discovery payloads: the gateway device and one device per node.

Each entity's config is published retained to
``<discovery_prefix>/<component>/<node_id>/<object_id>/config`` (Home Assistant, "MQTT",
section "MQTT Discovery"). Fields used, from the MQTT Sensor / MQTT Binary Sensor pages:
`name`, `unique_id`, `state_topic`, `value_template`, `json_attributes_topic`,
`json_attributes_template`, `device_class`, `unit_of_measurement`, `state_class`,
`suggested_display_precision`, `icon`, `entity_category`, `availability_topic`,
`payload_available`, `payload_not_available`, `payload_on`, `payload_off`, `qos`, `device`
(`identifiers`, `name`, `manufacturer`, `model`, `via_device`) and `origin` (`name`).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gateway.mqtt.measures import Measure
from gateway.mqtt.topics import STATUS_OFFLINE, STATUS_ONLINE, Node, Topics, slug

Json = dict[str, Any]

ORIGIN = {"name": "Edge Gateway"}
GATEWAY_NODE = "gateway"

# Per BLE device, on every node of it: (key, name, device_class, unit, state_class).
_DEVICE_SENSORS: tuple[tuple[str, str, str, str | None, str | None], ...] = (
    ("battery", "Battery", "battery", "%", "measurement"),
    ("rssi", "Signal strength", "signal_strength", "dBm", "measurement"),
    # A timestamp sensor takes no state class (Home Assistant refuses one).
    ("last_seen", "Last seen", "timestamp", None, None),
)

# The attributes each measure entity shows next to its value: the reading's own time, flags.
_ATTRIBUTES = (
    "{{ {'time': value_json.time, 'flags': value_json.flags,"
    " 'reading_id': value_json.reading_id} | tojson }}"
)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What the store knows of a BLE device, for the Home Assistant device card."""

    name: str | None = None
    brand: str | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class Discovery:
    """Builds discovery configs for one gateway (its topics and unique-id prefix)."""

    topics: Topics

    @property
    def _uid(self) -> str:
        return slug(self.topics.base)

    def _availability(self) -> Json:
        return {
            "availability_topic": self.topics.status,
            "payload_available": STATUS_ONLINE,
            "payload_not_available": STATUS_OFFLINE,
            "qos": 1,
            "origin": ORIGIN,
        }

    def gateway_device(self) -> Json:
        """The gateway's own Home Assistant device block."""
        return {
            "identifiers": [f"{self._uid}_{GATEWAY_NODE}"],
            "name": "Edge Gateway",
            "manufacturer": "Edge Gateway",
            "model": "BLE health gateway",
        }

    def gateway(self) -> list[tuple[str, Json]]:
        """(topic, config) for the gateway's upload queue, dead letters and connectivity."""
        device = self.gateway_device()
        configs: list[tuple[str, Json]] = []
        for key, name, icon in (
            ("upload_queue", "Upload queue", "mdi:tray-full"),
            ("dead_letters", "Dead letters", "mdi:email-alert"),
        ):
            config = {
                "name": name,
                "unique_id": f"{self._uid}_{GATEWAY_NODE}_{key}",
                "state_topic": self.topics.gateway(key),
                "unit_of_measurement": "readings",
                "state_class": "measurement",
                "icon": icon,
                "entity_category": "diagnostic",
                "device": device,
                **self._availability(),
            }
            configs.append((self.topics.discovery("sensor", GATEWAY_NODE, key), config))
        upstream = {
            "name": "Junction connection",
            "unique_id": f"{self._uid}_{GATEWAY_NODE}_upstream",
            "state_topic": self.topics.gateway("upstream"),
            "device_class": "connectivity",
            "payload_on": "ON",
            "payload_off": "OFF",
            "entity_category": "diagnostic",
            "device": device,
            **self._availability(),
        }
        configs.append((self.topics.discovery("binary_sensor", GATEWAY_NODE, "upstream"), upstream))
        return configs

    def node_device(self, node: Node, info: DeviceInfo) -> Json:
        """A node's Home Assistant device block (linked to the gateway by `via_device`)."""
        title = info.name or node.address
        device: Json = {
            "identifiers": [f"{self._uid}_{node.node_id}"],
            "name": title if node.label is None else f"{title} ({node.label})",
            "via_device": f"{self._uid}_{GATEWAY_NODE}",
        }
        if info.brand:
            device["manufacturer"] = info.brand
        if info.model:
            device["model"] = info.model
        return device

    def node(
        self, node: Node, info: DeviceInfo, measures: Iterable[Measure]
    ) -> list[tuple[str, Json]]:
        """(topic, config) for a node's measures and its device's battery, signal, last seen."""
        device = self.node_device(node, info)
        configs: list[tuple[str, Json]] = []
        for measure in measures:
            topic = self.topics.measure(node, measure.key)
            config: Json = {
                "name": measure.name,
                "unique_id": f"{self._uid}_{node.node_id}_{measure.key}",
                "state_topic": topic,
                "value_template": "{{ value_json.value }}",
                "json_attributes_topic": topic,
                "json_attributes_template": _ATTRIBUTES,
                "unit_of_measurement": measure.unit,
                "state_class": "measurement",
                "suggested_display_precision": measure.precision,
                "device": device,
                **self._availability(),
            }
            if measure.device_class is not None:
                config["device_class"] = measure.device_class
            if measure.icon is not None:
                config["icon"] = measure.icon
            configs.append((self.topics.discovery("sensor", node.node_id, measure.key), config))
        for key, name, device_class, unit, state_class in _DEVICE_SENSORS:
            config = {
                "name": name,
                "unique_id": f"{self._uid}_{node.node_id}_{key}",
                "state_topic": self.topics.device(node.address, key),
                "device_class": device_class,
                "entity_category": "diagnostic",
                "device": device,
                **self._availability(),
            }
            if unit is not None:
                config["unit_of_measurement"] = unit
            if state_class is not None:
                config["state_class"] = state_class
            configs.append((self.topics.discovery("sensor", node.node_id, key), config))
        return configs
