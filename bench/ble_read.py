"""A meter read through the real stack: Bleak → private dbus-daemon → simulated BlueZ.

Run: `.venv/bin/python bench/ble_read.py [--records N] [--runs N] [--json]`.

Times the collector's own path (`BleakRadio.connect` + `SigGlucoseDriver.collect` +
disconnect) for a full read of N records and for an incremental read with nothing new, and
the process CPU it costs (Bleak and the simulator share this process, as in the tests).
Prints figures only; with --json the last line is one JSON object: `full_read_ms`,
`incremental_ms` (wall medians), `full_cpu_ms`, `per_record_us`, `records`, `runs`, `load_1m`.
"""

import argparse
import asyncio
import json
import os
import statistics
import time

from drivers.bleak_link import BleakRadio
from drivers.devices.base import Advertisement, CollectContext, Cursor
from drivers.devices.registry import default_registry
from drivers.gatt import uuids
from drivers.simulator.daemon import PrivateBus
from drivers.simulator.runner import start_simulator
from drivers.simulator.scenario import parse_scenario

METER = "C0:FF:EE:00:00:01"


def _scenario(records: int) -> str:
    rows = ",\n".join(
        f'{{ seq = {i}, time = "2026-11-{1 + i // 1440:02d}T{(i // 60) % 24:02d}:{i % 60:02d}:00", '
        f"mg_dl = {80 + i % 150} }}"
        for i in range(1, records + 1)
    )
    return f"""
[[devices]]
kind = "glucose"
address = "{METER}"
name = "meter+00012345"
manufacturer = "Roche"
records = [
{rows}
]
"""


async def _read(radio: BleakRadio, cursor: Cursor) -> tuple[float, float, Cursor, int]:
    advert = Advertisement(METER, "meter+00012345", service_uuids=(uuids.GLUCOSE_SERVICE,))
    claim = default_registry().match(advert)
    assert claim is not None
    wall, cpu = time.perf_counter(), time.process_time()
    async with radio.connect(advert) as link:
        transfer = await claim.driver.collect(link, cursor, CollectContext(match=claim.match))
    return (
        time.perf_counter() - wall,
        time.process_time() - cpu,
        transfer.cursor,
        len(transfer.readings),
    )


async def main(records: int, runs: int, *, as_json: bool = False) -> None:
    with PrivateBus() as bus:
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = bus.address
        simulator = await start_simulator(
            parse_scenario(_scenario(records)), bus.address, advertise_interval_s=0.02
        )
        radio = BleakRadio()
        try:
            async with radio.advertisements() as adverts:  # let BlueZ hear the meter first
                async for advert in adverts:
                    if advert.address == METER:
                        break
            full, incremental = [], []
            for _ in range(runs):
                wall, cpu, cursor, count = await _read(radio, Cursor())
                assert count == records
                full.append((wall, cpu))
                wall, cpu, _, count = await _read(radio, cursor)
                incremental.append((wall, cpu))
        finally:
            await simulator.stop()
    print(f"glucose meter read over Bleak + dbus-daemon + simulated BlueZ, {runs} runs")
    for label, samples in (
        (f"full read, {records} records", full),
        ("incremental, nothing new", incremental),
    ):
        walls = [w * 1000 for w, _ in samples]
        cpus = [c * 1000 for _, c in samples]
        print(
            f"{label:32s} wall median {statistics.median(walls):7.1f} ms "
            f"(min {min(walls):.1f}, max {max(walls):.1f}); "
            f"CPU median {statistics.median(cpus):6.1f} ms"
        )
    per_record = statistics.median(w for w, _ in full) / records * 1e6
    print(f"{'per record, full read':32s} {per_record:.0f} µs")
    if as_json:
        figures = {
            "full_read_ms": round(statistics.median(w for w, _ in full) * 1000, 1),
            "full_cpu_ms": round(statistics.median(c for _, c in full) * 1000, 1),
            "incremental_ms": round(statistics.median(w for w, _ in incremental) * 1000, 1),
            "per_record_us": round(per_record),
            "records": records,
            "runs": runs,
            "load_1m": round(os.getloadavg()[0], 2),
        }
        print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args()
    asyncio.run(main(args.records, args.runs, as_json=args.json))
