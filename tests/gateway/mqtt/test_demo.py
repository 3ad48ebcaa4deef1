"""The demo scenario end to end: simulated BLE devices → gateway → real mosquitto → subscriber.

Runs `edge-gateway demo --once --mqtt`'s own coroutine in-process (real Bleak against the
simulated BlueZ, the Junction stub, the sink) with the test's broker, so a subscriber can be
attached before the first reading is published.
"""

import io
import subprocess
from datetime import UTC

from rich.console import Console

from drivers.readings import GlucoseUnit
from drivers.simulator.scenario import BloodPressureDevice, GlucoseDevice, builtin_scenario
from gateway.commands.demo import _demo
from sync.junction.mapping import glucose_mmol_per_l
from tests.gateway.e2e import EDGE_GATEWAY
from tests.gateway.mqtt.conftest import mqtt_settings, subscribe

NODES = {
    "C0:FF:EE:00:00:01": "c0ffee000001_demo_patient",
    "C0:FF:EE:00:00:02": "c0ffee000002_demo_patient",
    "C0:FF:EE:00:00:03": "c0ffee000003_demo_patient",
}


def _expected(device) -> list[tuple[str, dict[str, float], dict[str, str]]]:
    """(time, values, units) per record, as the sink must publish them (glucose in mmol/L)."""
    out = []
    for record in device.records:
        time = record.time.replace(tzinfo=UTC).isoformat()
        if isinstance(device, GlucoseDevice):
            if record.mg_dl is not None:
                value = glucose_mmol_per_l(record.mg_dl / 100_000, GlucoseUnit.KG_PER_L)
            else:
                value = glucose_mmol_per_l(record.mmol_l / 1000, GlucoseUnit.MOL_PER_L)
            out.append((time, {"glucose": value}, {"glucose": "mmol/L"}))
        elif isinstance(device, BloodPressureDevice):
            values = {"systolic": record.systolic, "diastolic": record.diastolic}
            values["pulse"] = record.pulse
            units = {"systolic": "mmHg", "diastolic": "mmHg", "pulse": "bpm"}
            out.append((time, values, units))
        else:
            values = {"weight": record.weight_kg, "body_fat": record.fat_percent}
            out.append((time, values, {"weight": "kg", "body_fat": "%"}))
    return out


async def test_the_demo_scenarios_readings_arrive_with_values_units_and_times(
    bus_guard, broker, tmp_path
):
    scenario = builtin_scenario()
    quiet = Console(file=io.StringIO())
    async with subscribe(broker, topic="edge-gateway/#") as live:
        ok = await _demo(
            quiet, tmp_path / "data", "127.0.0.1", 0, once=True, mqtt=mqtt_settings(broker)
        )
        await live.wait_for(lambda r: len(r.on("/reading")) >= 16, "16 reading events")
    assert ok

    events = [m.json() for m in live.on("/reading")]
    assert len(events) == 16  # each reading once
    latest = {m.topic: m.json() for m in live.messages if not m.topic.endswith("/reading")
              and m.payload.startswith("{")}  # fmt: skip
    for device in scenario.devices:
        node = NODES[device.address]
        expected = _expected(device)
        got = [
            (e["time"], e["values"], e["units"]) for e in events if m_topic_node(e, live) == node
        ]
        assert sorted(got) == sorted(expected), device.address
        # Home Assistant's sensors show the newest record, by the device's own time.
        time, values, units = max(expected)
        for key, value in values.items():
            state = latest[f"edge-gateway/{node}/{key}"]
            assert (state["value"], state["unit"], state["time"]) == (value, units[key], time)
    # The cuff's third record has the irregular-pulse bit (status 4): its flag travels along.
    cuff = [e for e in events if e["device"] == "C0:FF:EE:00:00:02"]
    flagged = [e for e in cuff if "irregular_pulse" in e["flags"]]
    assert [e["time"] for e in flagged] == ["2026-11-19T07:38:00+00:00"]


def m_topic_node(event: dict, live) -> str:
    """The node an event was published under (its topic's second level)."""
    for message in live.on("/reading"):
        if message.json()["reading_id"] == event["reading_id"]:
            return message.topic.split("/")[1]
    raise AssertionError(event["reading_id"])


def test_demo_once_mqtt_starts_mosquitto_and_publishes_every_reading(tmp_path):
    result = subprocess.run(
        [EDGE_GATEWAY, "demo", "--once", "--mqtt", "--port", "0", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MQTT: mosquitto at 127.0.0.1:" in result.stderr
    assert "MQTT: 16 readings published" in result.stdout
