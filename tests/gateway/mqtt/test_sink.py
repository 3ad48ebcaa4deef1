"""The sink against a real mosquitto: values, units, time, flags; once and in order; resume."""

import asyncio
import json
import logging
import subprocess
import sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from drivers.readings import GlucoseUnit, MassUnit, PressureUnit, ReadingFlag
from gateway.mqtt.broker import LocalBroker
from gateway.store import users
from gateway.store.changes import ReadingState, mark_changed
from gateway.store.readings import save_transfer
from tests.gateway.mqtt.conftest import (
    Recorder,
    fast_sink,
    mqtt_settings,
    retained,
    running_sink,
    subscribe,
    until,
)
from tests.sync.factories import blood_pressure, body, glucose

UTCZ = ZoneInfo("UTC")
METER, CUFF, SCALE = "C0:FF:EE:00:00:01", "C0:FF:EE:00:00:02", "C0:FF:EE:00:00:03"


def _events(recorder: Recorder) -> list[dict]:
    return [m.json() for m in recorder.messages if m.topic.endswith("/reading")]


async def test_readings_arrive_as_state_messages_with_values_units_time_and_flags(db, broker):
    readings = [
        glucose(1, concentration=0.00104, unit=GlucoseUnit.KG_PER_L),  # 104 mg/dL
        blood_pressure(2, systolic=16.0, diastolic=10.6, unit=PressureUnit.KPA, pulse=71.0),
        body(3, weight=180.0, unit=MassUnit.LB, fat_percent=22.5),
    ]
    flagged = glucose(4, concentration=0.0062, unit=GlucoseUnit.MOL_PER_L)  # 6.2 mmol/L
    flagged = type(flagged)(**{**_fields(flagged), "flags": frozenset({ReadingFlag.HIGH})})
    save_transfer(db, [*readings, flagged], zone=UTCZ)
    settings = mqtt_settings(broker, glucose_unit="mg/dL")
    async with (
        subscribe(broker, topic="edge-gateway/#") as live,
        running_sink(fast_sink(db, settings)) as sink,
    ):
        await live.wait_for(lambda r: len(_events(r)) == 4, "4 reading events")
        await until(lambda: sink.stats.readings == 4, "the ledger to record 4")

    state = {m.topic: m.value() for m in (await retained(broker, "edge-gateway/#")).messages}
    assert state["edge-gateway/c0ffee000002_user1/systolic"]["value"] == round(16.0 * 7.50062, 2)
    assert state["edge-gateway/c0ffee000002_user1/systolic"]["unit"] == "mmHg"
    assert state["edge-gateway/c0ffee000002_user1/diastolic"]["value"] == round(10.6 * 7.50062, 2)
    assert state["edge-gateway/c0ffee000002_user1/pulse"] == {
        "value": 71.0,
        "unit": "bpm",
        "time": readings[1].instant(UTCZ).isoformat(),
        "flags": [],
        "reading_id": readings[1].id,
    }
    assert state["edge-gateway/c0ffee000003/weight"]["value"] == round(180 * 0.45359237, 3)
    assert state["edge-gateway/c0ffee000003/weight"]["unit"] == "kg"
    assert state["edge-gateway/c0ffee000003/body_fat"]["value"] == 22.5
    # Glucose shows the newest reading by its own time (seq 4 is later on the device clock).
    glucose_state = state["edge-gateway/c0ffee000001/glucose"]
    assert glucose_state["value"] == round(6.2 * 18.016, 1)
    assert glucose_state["unit"] == "mg/dL"
    assert glucose_state["flags"] == ["high"]
    # The reading's own time, not the publish time.
    assert glucose_state["time"] == flagged.instant(UTCZ).isoformat()
    assert datetime.fromisoformat(glucose_state["time"]) < datetime.now(UTC).replace(year=2026)
    # Device and gateway state are retained too; the availability topic says online.
    assert "edge-gateway/gateway/upload_queue" in state
    events = _events(live)
    assert [e["reading_id"] for e in events] == [r.id for r in [*readings, flagged]]
    assert events[0]["values"] == {"glucose": 104.0}
    assert events[0]["units"] == {"glucose": "mg/dL"}


def _fields(reading):
    return {name: getattr(reading, name) for name in reading.__dataclass_fields__}


async def test_an_older_reading_is_an_event_but_does_not_replace_the_latest_state(db, broker):
    newer, older = glucose(9, concentration=0.0011), glucose(2, concentration=0.0009)
    save_transfer(db, [newer], zone=UTCZ)
    async with (
        subscribe(broker, topic="edge-gateway/#") as live,
        running_sink(fast_sink(db, mqtt_settings(broker, glucose_unit="mg/dL"))),
    ):
        await live.wait_for(lambda r: len(_events(r)) == 1, "first event")
        save_transfer(db, [older], zone=UTCZ)
        await live.wait_for(lambda r: len(_events(r)) == 2, "second event")
    state = (await retained(broker, "edge-gateway/c0ffee000001/glucose")).messages
    assert [m.json()["reading_id"] for m in state] == [newer.id]


async def test_broker_outage_and_restart_publish_every_reading_once_in_order(db, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="gateway.mqtt")
    # A persistent broker and a persistent subscriber: what the sink publishes while the
    # subscriber is away is queued for it, so the subscriber sees everything ever published.
    broker = LocalBroker(tmp_path / "broker", persistence=True)
    broker.start()
    seen = Recorder()
    listener = {"client_id": "recorder", "persistent": True, "recorder": seen}
    try:
        first = [glucose(s) for s in range(1, 6)]
        save_transfer(db, first, zone=UTCZ)
        sink = fast_sink(db, mqtt_settings(broker))
        async with (
            subscribe(broker, topic="edge-gateway/+/reading", **listener),
            running_sink(sink),
        ):
            await seen.wait_for(lambda r: len(r.messages) == 5, "the first 5 readings")
            # Let the recorder's PUBACKs reach the broker first, or the broker rightly
            # redelivers them to it after the restart (QoS 1 between broker and recorder).
            await asyncio.sleep(0.5)
            broker.stop()  # outage: the broker is gone while readings keep coming
            during = [glucose(s) for s in range(6, 31)]
            for reading in during:
                save_transfer(db, [reading], zone=UTCZ)
                sink.wake()
            await until(lambda: not sink.stats.connected, "the sink to notice")
            broker.start()
            await until(lambda: sink.stats.cursor >= 30, "the sink to catch up")
        # Restart of the sink itself: a new sink on the same store resumes from its cursor.
        after = [glucose(s) for s in range(31, 36)]
        save_transfer(db, after, zone=UTCZ)
        # Delivery to Junction re-sequences readings; nothing a subscriber sees changed.
        with db.write() as session:
            ids = [r.id for r in first]
            mark_changed(session, ids, datetime.now(UTC), state=ReadingState.DELIVERED.value)
        restarted = fast_sink(db, mqtt_settings(broker))
        async with (
            subscribe(broker, topic="edge-gateway/+/reading", **listener),
            running_sink(restarted),
        ):
            await seen.wait_for(lambda r: len(r.messages) >= 35, "every reading")
            await until(lambda: restarted.stats.cursor >= 40, "the sink to pass them")
        ids = [m.json()["reading_id"] for m in seen.messages]
        assert ids == [r.id for r in [*first, *during, *after]]  # each once, in store order
        assert sink.stats.readings == 30
        assert restarted.stats.readings == 5
    finally:
        broker.stop()
    assert sink.stats.connects >= 2
    text = caplog.text
    assert "unavailable" in text
    for reading in first:
        assert str(reading.concentration) not in text  # no measured value above DEBUG


async def test_person_topics_use_the_label_never_the_junction_user_id(db, broker):
    users.bind(db, CUFF, "u_7f3a9c-junction-id", device_user=1)
    users.upsert_user(db, "u_7f3a9c-junction-id", "Anna")
    users.bind(db, METER, "u_nameless-id")
    save_transfer(db, [blood_pressure(1), glucose(2)], zone=UTCZ)
    async with subscribe(broker) as live, running_sink(fast_sink(db, mqtt_settings(broker))):
        await live.wait_for(lambda r: len(_events(r)) == 2, "2 events")
    everything = json.dumps([(m.topic, m.payload) for m in live.messages])
    assert "edge-gateway/c0ffee000002_anna/systolic" in everything
    assert "c0ffee000001_person_" in everything
    assert "u_7f3a9c" not in everything
    assert "u_nameless" not in everything


async def test_the_junction_user_id_appears_only_when_configured(db, broker):
    users.bind(db, CUFF, "u_42", device_user=1)
    save_transfer(db, [blood_pressure(1)], zone=UTCZ)
    settings = mqtt_settings(broker, person_topic="user_id")
    async with subscribe(broker) as live, running_sink(fast_sink(db, settings)):
        await live.wait_for(lambda r: len(_events(r)) == 1, "1 event")
    assert live.on("edge-gateway/c0ffee000002_u_42/systolic")


async def test_a_clean_stop_says_offline(db, broker):
    sink = fast_sink(db, mqtt_settings(broker))
    async with running_sink(sink):
        await until(lambda: sink.stats.connected, "connect")
        status = await retained(broker, "edge-gateway/status")
        assert [m.payload for m in status.messages] == ["online"]
    status = await retained(broker, "edge-gateway/status")
    assert [m.payload for m in status.messages] == ["offline"]


async def test_the_last_will_says_offline_when_the_gateway_is_killed(db, broker, tmp_path):
    # A separate process, killed with SIGKILL: no goodbye, only the broker's last will.
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.gateway.mqtt.sink_process", str(db.path), str(broker.port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "connected"
        status = await retained(broker, "edge-gateway/status")
        assert [m.payload for m in status.messages] == ["online"]
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
    async with subscribe(broker, topic="edge-gateway/status") as status:
        await status.wait_for(
            lambda r: [m.payload for m in r.messages][-1:] == ["offline"], "the last will"
        )
