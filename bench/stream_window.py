"""The at-risk window of a paced cuff, and save throughput with per-indication commits.

Run: `.venv/bin/python bench/stream_window.py [--records N] [--pace-ms MS] [--json]`.

A cuff that erases on send forgets a record once BlueZ confirmed its indication; until the
gateway has committed it, a crash loses it. This measures that window end to end, with the
real `edge-gateway run` process (and the Junction stub, so the uploader competes for the
database as in the field): the simulated BlueZ runs in this process and notes when each
indication leaves the device; a reader polls the database (read-only, every 2 ms) and notes
when the row appears. Figures: indication -> durable p50/p99/max, split at the gateway's own
receive time, and the expected loss per kill (p50 / pace). Then `TransferSaver` throughput
on a real file: one commit per reading (each awaited) and group commits (a burst).
Prints figures; with --json the last line is one JSON object.
"""

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from drivers.gatt.blood_pressure import parse_blood_pressure_measurement
from drivers.readings import (
    BloodPressureReading,
    DeviceTime,
    PressureUnit,
    ReadingKind,
    stable_reading_id,
)
from drivers.simulator import gatt as sim_gatt
from drivers.simulator.daemon import PrivateBus
from drivers.simulator.runner import start_simulator
from drivers.simulator.scenario import parse_scenario
from gateway.saver import TransferSaver
from gateway.store import open_database

CUFF = "C0:FF:EE:00:00:02"
EDGE_GATEWAY = str(Path(sys.executable).with_name("edge-gateway"))


def _scenario(records: int, pace_ms: float) -> str:
    rows = ",\n".join(
        f'{{ time = "2026-11-{1 + i // 1440:02d}T{(i // 60) % 24:02d}:{i % 60:02d}:00", '
        f"systolic = {110 + i % 40}, diastolic = {70 + i % 20}, pulse = 60, user = 1 }}"
        for i in range(records)
    )
    return f"""
[[devices]]
kind = "blood_pressure"
address = "{CUFF}"
name = "BLEsmart_00000116"
manufacturer = "OMRON HEALTHCARE"
erase_after_send = true
faults = {{ notify_interval_ms = {pace_ms} }}
records = [
{rows}
]
"""


def _poll(db: Path, seen: dict[tuple[int, ...], float], stop: threading.Event) -> None:
    while not stop.is_set():
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
                    while not stop.is_set():
                        now = time.time()
                        for row in conn.execute(
                            "select dt_day, dt_hour, dt_minute, received_at from reading"
                        ):
                            key = tuple(row[:3])
                            if key not in seen:
                                seen[key] = now
                                seen[(*key, -1)] = datetime.fromisoformat(row[3]).timestamp()
                        time.sleep(0.002)
            except sqlite3.OperationalError:
                pass
        time.sleep(0.01)


async def window(records: int, pace_ms: float) -> dict[str, float]:
    sent: dict[tuple[int, ...], float] = {}
    original = sim_gatt.CharacteristicInterface.send_value

    async def timed(self: sim_gatt.CharacteristicInterface, value: bytes) -> bool:
        delivered = await original(self, value)
        if delivered and self._char.uuid.startswith("00002a35"):
            stamp = parse_blood_pressure_measurement(value).timestamp
            assert stamp is not None
            sent[(stamp.day, stamp.hour, stamp.minute)] = time.time()
        return delivered

    sim_gatt.CharacteristicInterface.send_value = timed  # type: ignore[method-assign]
    seen: dict[tuple[int, ...], float] = {}
    with tempfile.TemporaryDirectory() as tmp, PrivateBus() as bus:
        base = Path(tmp)
        sim = await start_simulator(
            parse_scenario(_scenario(records, pace_ms)), bus.address, advertise_interval_s=0.05
        )
        stub = await asyncio.create_subprocess_exec(
            EDGE_GATEWAY,
            *("junction-stub", "--port", "0", "--api-key", "sk_bench"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert stub.stdout is not None
        url = (await stub.stdout.readline()).decode().strip()
        config = base / "gateway.toml"
        config.write_text(
            f'data_dir = "{base / "data"}"\ntimezone = "UTC"\n[junction]\nbase_url = "{url}"\n'
            'api_key = "sk_bench"\n[api]\nport = 0\n'
            f'[[bindings]]\ndevice = "{CUFF}"\nuser_id = "bob"\n'
        )
        bin_dir = base / "bin"
        bin_dir.mkdir()
        fake = bin_dir / "bluetoothctl"
        fake.write_text("#!/bin/sh\necho 'bluetoothctl: 5.72'\n")
        fake.chmod(0o755)
        env = {
            **os.environ,
            "DBUS_SYSTEM_BUS_ADDRESS": bus.address,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        }
        stop = threading.Event()
        poller = threading.Thread(
            target=_poll, args=(base / "data" / "gateway.sqlite3", seen, stop), daemon=True
        )
        poller.start()
        gateway = await asyncio.create_subprocess_exec(
            EDGE_GATEWAY,
            *("run", "--config", str(config)),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
        )
        try:
            deadline = time.monotonic() + 60 + records * pace_ms / 1000
            while time.monotonic() < deadline:
                if len([k for k in seen if len(k) == 3]) >= records:
                    break
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            # Awaited, not blocking: the simulated cuff in this loop must answer its hang-up.
            gateway.send_signal(signal.SIGTERM)
            await asyncio.wait_for(gateway.wait(), 30)
            stub.send_signal(signal.SIGTERM)
            await asyncio.wait_for(stub.wait(), 10)
            await sim.stop()
            sim_gatt.CharacteristicInterface.send_value = original  # type: ignore[method-assign]
    total = [(seen[k] - sent[k]) * 1000 for k in sent if k in seen]
    delivery = [(seen[(*k, -1)] - sent[k]) * 1000 for k in sent if (*k, -1) in seen]
    commit = [(seen[k] - seen[(*k, -1)]) * 1000 for k in sent if k in seen]
    total.sort()
    return {
        "records": float(len(total)),
        "pace_ms": pace_ms,
        "window_p50_ms": statistics.median(total),
        "window_p99_ms": total[int(len(total) * 0.99) - 1],
        "window_max_ms": total[-1],
        "delivery_p50_ms": statistics.median(delivery),
        "commit_p50_ms": statistics.median(commit),
        "loss_per_kill": statistics.median(total) / pace_ms,
    }


def _readings(count: int) -> list[BloodPressureReading]:
    now = datetime.now(UTC)
    base = datetime(2026, 1, 1)  # noqa: DTZ001 - device wall time
    out = []
    for i in range(count):
        t = DeviceTime.from_datetime(base + timedelta(minutes=i))
        out.append(
            BloodPressureReading(
                id=stable_reading_id(
                    CUFF, ReadingKind.BLOOD_PRESSURE, sequence=None, device_time=t
                ),
                device=CUFF,
                provider="omron_ble",
                received_at=now,
                device_time=t,
                user_index=1,
                systolic=120,
                diastolic=80,
                unit=PressureUnit.MMHG,
                pulse_bpm=60,
                mean_arterial=93,
            )
        )
    return out


async def throughput(count: int) -> dict[str, float]:
    zone = ZoneInfo("UTC")
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("per_indication", "group"):
            db = open_database(Path(tmp) / f"{mode}.sqlite3")
            saver = TransferSaver(db, zone, CUFF)
            readings = _readings(count)
            started = time.perf_counter()
            if mode == "per_indication":
                for reading in readings:
                    saver.add([reading])
                    await saver.wait(None)
            else:
                for reading in readings:
                    saver.add([reading])
                await saver.wait(None)
            figures[f"{mode}_per_s"] = count / (time.perf_counter() - started)
            db.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100)
    parser.add_argument("--pace-ms", type=float, default=100)
    parser.add_argument("--saves", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = asyncio.run(window(args.records, args.pace_ms))
    figures.update(asyncio.run(throughput(args.saves)))
    print(
        f"paced cuff, {int(figures['records'])} records every {args.pace_ms:g} ms, erase on send:"
    )
    print(
        f"  indication -> durable  p50 {figures['window_p50_ms']:.1f} ms, "
        f"p99 {figures['window_p99_ms']:.1f} ms, max {figures['window_max_ms']:.1f} ms"
    )
    print(
        f"  of which D-Bus + Bleak p50 {figures['delivery_p50_ms']:.1f} ms, "
        f"commit p50 {figures['commit_p50_ms']:.1f} ms (2 ms polling granularity)"
    )
    print(f"  expected readings lost per kill -9 mid-stream: {figures['loss_per_kill']:.3f}")
    print(
        f"TransferSaver on a real file: {figures['per_indication_per_s']:,.0f} readings/s "
        f"one commit each, {figures['group_per_s']:,.0f} readings/s group-committed"
    )
    if args.json:
        print(json.dumps({"stream_window": figures}))


if __name__ == "__main__":
    main()
