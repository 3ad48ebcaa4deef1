"""MQTT sink: publish rate of a backlog, and latency from a reading's commit to the broker.

Run: `.venv/bin/python bench/mqtt_publish.py [--backlog N] [--latency N] [--json]`.

Starts Debian's mosquitto on a free loopback port and a subscriber to ``edge-gateway/#`` in
this process, then:

1. backlog: N readings (glucose, blood pressure, scale, in turn) already in the store when the
   sink starts — the first enable, or the catch-up after a broker outage. Times the sink from
   start until the last reading is recorded in its ledger (every PUBACK received and the
   cursor committed), and counts what the subscriber received.
2. latency: one reading at a time is committed (`save_transfer`, fsync) to an idle sink, the
   sink is woken as the runtime does, and the clock stops when the subscriber receives the
   reading's event. (The sink commits its ledger after the PUBACK, off this path.)

Prints figures; with --json the last line is one JSON object with every figure.
"""

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import aiomqtt

from drivers.readings import Reading
from gateway.config import MqttSettings
from gateway.mqtt.broker import LocalBroker
from gateway.mqtt.sink import MqttSink
from gateway.store import DATABASE_FILENAME, open_database
from gateway.store.aio import call
from gateway.store.readings import save_transfer
from tests.sync.factories import blood_pressure, body, glucose

UTC = ZoneInfo("UTC")


def _reading(i: int) -> Reading:
    kind = i % 3
    if kind == 0:
        return glucose(i, device="C0:FF:EE:00:00:01", concentration=0.0009 + (i % 50) * 1e-5)
    if kind == 1:
        return blood_pressure(i, device="C0:FF:EE:00:00:02", systolic=110.0 + i % 30)
    return body(i, device="C0:FF:EE:00:00:03", weight=70.0 + (i % 40) / 10)


async def _subscriber(
    broker: LocalBroker, arrivals: dict[str, float], ready: asyncio.Event
) -> None:
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe("edge-gateway/+/reading", qos=1)
        ready.set()
        async for message in client.messages:
            payload = message.payload
            text = payload.decode() if isinstance(payload, bytes) else str(payload)
            arrivals.setdefault(json.loads(text)["reading_id"], time.perf_counter())


async def _bench(backlog: int, latency_n: int, directory: Path) -> dict[str, float]:
    figures: dict[str, float] = {"backlog_readings": backlog, "latency_samples": latency_n}
    with LocalBroker(directory / "broker") as broker:
        db = open_database(directory / DATABASE_FILENAME)
        arrivals: dict[str, float] = {}
        ready = asyncio.Event()
        listener = asyncio.create_task(_subscriber(broker, arrivals, ready))
        await ready.wait()

        readings = [_reading(i) for i in range(1, backlog + 1)]
        for start in range(0, backlog, 500):
            save_transfer(db, readings[start : start + 500], zone=UTC)
        settings = MqttSettings(enabled=True, host=broker.host, port=broker.port)
        sink = MqttSink(db, settings, status_interval_s=5.0)
        cpu, wall = time.process_time(), time.perf_counter()
        runner = asyncio.create_task(sink.run())
        while sink.stats.readings < backlog:  # noqa: ASYNC110 - the sink exposes counters only
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - wall
        figures["backlog_s"] = round(elapsed, 3)
        figures["backlog_readings_per_s"] = round(backlog / elapsed, 1)
        figures["backlog_messages"] = sink.stats.messages
        figures["backlog_cpu_s"] = round(time.process_time() - cpu, 3)
        await asyncio.sleep(0.2)
        figures["subscriber_received"] = len(arrivals)

        latencies = []
        for i in range(backlog + 1, backlog + 1 + latency_n):
            reading = _reading(i)
            await call(save_transfer, db, [reading], zone=UTC)
            committed = time.perf_counter()
            sink.wake()
            while reading.id not in arrivals:  # noqa: ASYNC110 - filled by the subscriber task
                await asyncio.sleep(0.0005)
            latencies.append((arrivals[reading.id] - committed) * 1000)
            # Idle again (its ledger committed) before the next reading: one at a time.
            while sink.stats.readings < i:  # noqa: ASYNC110 - the sink exposes counters only
                await asyncio.sleep(0.001)
        latencies.sort()
        figures["latency_ms_p50"] = round(statistics.median(latencies), 2)
        figures["latency_ms_p95"] = round(latencies[int(0.95 * (len(latencies) - 1))], 2)
        figures["latency_ms_max"] = round(latencies[-1], 2)

        sink.stop()
        await runner
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await listener
        db.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=3000, help="readings stored before start")
    parser.add_argument("--latency", type=int, default=200, help="single readings timed")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmp:
        figures = asyncio.run(_bench(args.backlog, args.latency, Path(tmp)))
    print(
        f"backlog: {figures['backlog_readings']:.0f} readings in {figures['backlog_s']} s = "
        f"{figures['backlog_readings_per_s']} readings/s "
        f"({figures['backlog_messages']:.0f} messages, CPU {figures['backlog_cpu_s']} s); "
        f"subscriber received {figures['subscriber_received']:.0f} reading events"
    )
    print(
        f"commit -> broker -> subscriber, {figures['latency_samples']:.0f} single readings: "
        f"p50 {figures['latency_ms_p50']} ms, p95 {figures['latency_ms_p95']} ms, "
        f"max {figures['latency_ms_max']} ms"
    )
    if args.json:
        print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
