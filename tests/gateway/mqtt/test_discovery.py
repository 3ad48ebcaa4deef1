"""Discovery configs on a real broker, checked against Home Assistant's documented schema.

The schema below is written from Home Assistant's documentation for the fields the gateway
uses: "MQTT" → "MQTT Discovery" (topic format, node/object id characters), "MQTT Sensor" and
"MQTT Binary Sensor" (configuration variables and their types), "Sensor" → "Device class"
(which units each class takes; a timestamp sensor has no unit and no state class) and
"Sensor" → "State class".
"""

import re
from zoneinfo import ZoneInfo

import aiomqtt

from gateway.store import devices, users
from gateway.store.readings import save_transfer
from tests.gateway.mqtt.conftest import (
    fast_sink,
    mqtt_settings,
    retained,
    running_sink,
    subscribe,
    until,
)
from tests.sync.factories import blood_pressure, body, glucose

UTCZ = ZoneInfo("UTC")

# "Discovery topic": <discovery_prefix>/<component>/[<node_id>/]<object_id>/config, where
# node_id and object_id "must match [a-zA-Z0-9_-]+".
TOPIC = re.compile(r"^homeassistant/(sensor|binary_sensor)/[a-zA-Z0-9_-]+/[a-zA-Z0-9_-]+/config$")

# Configuration variables (MQTT Sensor / Binary Sensor pages) → the JSON type they take.
COMMON = {
    "name": str,
    "unique_id": str,
    "state_topic": str,
    "value_template": str,
    "json_attributes_topic": str,
    "json_attributes_template": str,
    "device_class": str,
    "icon": str,
    "entity_category": str,
    "availability_topic": str,
    "payload_available": str,
    "payload_not_available": str,
    "qos": int,
    "device": dict,
    "origin": dict,
    "enabled_by_default": bool,
    "expire_after": int,
}
SENSOR = COMMON | {
    "unit_of_measurement": str,
    "state_class": str,
    "suggested_display_precision": int,
}
BINARY_SENSOR = COMMON | {"payload_on": str, "payload_off": str}
REQUIRED = {"state_topic", "unique_id", "device", "availability_topic"}
DEVICE = {
    "identifiers": list,
    "name": str,
    "manufacturer": str,
    "model": str,
    "via_device": str,
    "sw_version": str,
}
ORIGIN = {"name": str, "sw_version": str, "support_url": str}
ENTITY_CATEGORIES = {"config", "diagnostic"}
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
# Sensor device classes used here and the units the "Device class" table allows for them.
SENSOR_CLASS_UNITS: dict[str, set[str | None]] = {
    "battery": {"%"},
    "blood_glucose_concentration": {"mg/dL", "mmol/L"},
    "signal_strength": {"dB", "dBm"},
    "timestamp": {None},
    "weight": {"kg", "g", "mg", "µg", "oz", "lb", "st"},
}
NO_STATE_CLASS = {"timestamp"}  # "timestamp" takes no state class
BINARY_SENSOR_CLASSES = {"connectivity", "battery", "problem", "running"}
TEMPLATE = re.compile(r"^\{\{ value_json\.([a-z_]+) \}\}$")


def check(topic: str, config: dict) -> list[str]:
    """Every way `config` breaks the documented schema (empty when it is valid)."""
    problems = []
    if not TOPIC.match(topic):
        problems.append(f"topic {topic} does not match the discovery topic format")
    component = topic.split("/")[1]
    allowed = SENSOR if component == "sensor" else BINARY_SENSOR
    for key, value in config.items():
        if key not in allowed:
            problems.append(f"{key} is not a {component} configuration variable")
        elif not isinstance(value, allowed[key]):
            problems.append(f"{key} should be {allowed[key].__name__}")
    problems += [f"{key} missing" for key in REQUIRED - set(config)]
    for key, value in config.get("device", {}).items():
        if key not in DEVICE or not isinstance(value, DEVICE[key]):
            problems.append(f"device.{key} is not a documented device field of that type")
    if not config.get("device", {}).get("identifiers"):
        problems.append("device.identifiers missing")
    for key in config.get("origin", {}):
        if key not in ORIGIN:
            problems.append(f"origin.{key} is not documented")
    if config.get("entity_category", "diagnostic") not in ENTITY_CATEGORIES:
        problems.append("entity_category must be config or diagnostic")
    if component == "binary_sensor":
        if config.get("device_class") not in BINARY_SENSOR_CLASSES:
            problems.append(f"binary_sensor device_class {config.get('device_class')}")
        return problems
    device_class = config.get("device_class")
    unit = config.get("unit_of_measurement")
    state_class = config.get("state_class")
    if device_class is not None:
        if device_class not in SENSOR_CLASS_UNITS:
            problems.append(f"device_class {device_class} is not used by the gateway's schema")
        elif unit not in SENSOR_CLASS_UNITS[device_class]:
            problems.append(f"{device_class} does not take unit {unit!r}")
        if device_class in NO_STATE_CLASS and state_class is not None:
            problems.append(f"{device_class} takes no state_class")
    if state_class is not None and state_class not in STATE_CLASSES:
        problems.append(f"state_class {state_class}")
    if "value_template" in config and not TEMPLATE.match(config["value_template"]):
        problems.append("value_template is not a plain value_json lookup")
    return problems


def test_the_schema_check_catches_what_home_assistant_would_refuse():
    good = {
        "name": "Weight",
        "unique_id": "x_weight",
        "state_topic": "edge-gateway/x/weight",
        "availability_topic": "edge-gateway/status",
        "device_class": "weight",
        "unit_of_measurement": "kg",
        "state_class": "measurement",
        "device": {"identifiers": ["x"], "name": "Scale"},
    }
    assert check("homeassistant/sensor/x/weight/config", good) == []
    assert check("homeassistant/sensor/x.y/weight/config", good)  # bad node id
    assert check("homeassistant/sensor/x/weight/config", good | {"device_class": "battery"})
    assert check("homeassistant/sensor/x/w/config", good | {"unit_of_measurement": "mmHg"})
    assert check(
        "homeassistant/sensor/x/seen/config",
        good | {"device_class": "timestamp", "unit_of_measurement": None},
    )  # a timestamp with a state class
    assert check("homeassistant/sensor/x/w/config", good | {"stat_t": 1})
    assert check(
        "homeassistant/sensor/x/w/config", {k: v for k, v in good.items() if k != "device"}
    )


async def test_discovery_configs_on_the_broker_follow_home_assistants_schema(db, broker):
    users.bind(db, "C0:FF:EE:00:00:02", "u-anna", device_user=1)
    users.upsert_user(db, "u-anna", "Anna")
    save_transfer(db, [glucose(1), blood_pressure(2), body(3)], zone=UTCZ)
    devices.upsert_device(
        db, "C0:FF:EE:00:00:01", name="meter+1", brand="Roche", model="Guide", battery_percent=77
    )
    sink = fast_sink(db, mqtt_settings(broker), rssi=lambda _a: -61)
    async with running_sink(sink):
        await until(lambda: sink.stats.readings == 3, "3 readings published")
        checks = sink.stats.state_checks
        await until(lambda: sink.stats.state_checks > checks, "device state published")
        state = await retained(broker, "edge-gateway/#")
    configs = {m.topic: m.json() for m in (await retained(broker, "homeassistant/#")).messages}
    assert configs, "no discovery config was retained"
    problems = {t: check(t, c) for t, c in configs.items() if check(t, c)}
    assert problems == {}
    unique_ids = [c["unique_id"] for c in configs.values()]
    assert len(unique_ids) == len(set(unique_ids))

    by_entity = {t.split("/")[2] + "/" + t.split("/")[3]: c for t, c in configs.items()}
    # One Home Assistant device per (BLE device, person or slot), each with its measures.
    assert by_entity["c0ffee000001/glucose"]["device_class"] == "blood_glucose_concentration"
    assert by_entity["c0ffee000001/glucose"]["unit_of_measurement"] == "mmol/L"
    assert by_entity["c0ffee000001/glucose"]["device"]["manufacturer"] == "Roche"
    for key in ("systolic", "diastolic", "pulse", "battery", "rssi", "last_seen"):
        assert f"c0ffee000002_anna/{key}" in by_entity
    assert by_entity["c0ffee000002_anna/systolic"]["device"]["name"].endswith("(Anna)")
    assert by_entity["c0ffee000003/weight"]["device_class"] == "weight"
    assert by_entity["c0ffee000003/body_fat"]["unit_of_measurement"] == "%"
    assert by_entity["gateway/upstream"]["device_class"] == "connectivity"
    assert {"gateway/upload_queue", "gateway/dead_letters"} <= set(by_entity)
    for config in configs.values():
        assert config["state_class" if "unit_of_measurement" in config else "name"]
        assert config["availability_topic"] == "edge-gateway/status"

    # Every entity's state topic holds a retained state its template can read.
    retained_state = {m.topic: m.value() for m in state.messages}
    for entity, config in by_entity.items():
        if entity.startswith("c0ffee000001/rssi"):
            assert retained_state[config["state_topic"]] == -61
            continue
        value = retained_state.get(config["state_topic"])
        if entity.split("/")[1] in ("rssi", "battery") and value is None:
            continue  # only the meter has a battery level and a sighting here
        assert value is not None, f"{entity}: nothing retained on {config['state_topic']}"
        if "value_template" in config:
            key = TEMPLATE.match(config["value_template"]).group(1)
            assert isinstance(value[key], float | int), entity
    assert retained_state["edge-gateway/c0ffee000001/battery"] == 77


async def test_a_home_assistant_restart_gets_discovery_again(db, broker):
    save_transfer(db, [glucose(1)], zone=UTCZ)
    sink = fast_sink(db, mqtt_settings(broker))
    async with (
        subscribe(broker, topic="homeassistant/+/+/+/config") as live,
        running_sink(sink),
    ):
        await until(lambda: sink.stats.readings == 1, "the reading")
        await live.wait_for(lambda r: len(r.messages) >= 7, "gateway and meter configs")
        first = len(live.messages)
        async with aiomqtt.Client(broker.host, broker.port) as home_assistant:
            # Home Assistant's birth message (MQTT integration, "Birth and last will messages").
            await home_assistant.publish("homeassistant/status", "online", qos=1)
        await live.wait_for(lambda r: len(r.messages) >= 2 * first, "discovery sent again")
    topics = [m.topic for m in live.messages]
    assert sorted(topics[:first]) == sorted(topics[first : 2 * first])
