"""What keeping every GATT frame costs: database bytes per reading and save throughput.

Run: `.venv/bin/python bench/frames.py [--readings N] [--per-transfer K] [--json]`.

Stores N glucose readings (default 100,000) in transfers of K readings (default 50, a meter's
day or two), once with frames off and once with frames on, each into a fresh database file
(WAL, synchronous=FULL, as the gateway runs). The frames are what a SIG glucose meter sends
per transfer (Device Information and Current Time reads, three subscriptions, the RACP
request and its answer) plus a 17-byte Glucose Measurement and, for every other reading, a
4-byte Context per reading, with receive times. Then a cuff stream: one commit per reading
(as indications arrive), each with its indication frame. Figures: file size after a WAL
checkpoint, bytes per reading, the ratio on/off, and readings saved per second.
Prints figures; with --json the last line is one JSON object.
"""

import argparse
import json
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from drivers.gatt import uuids
from drivers.readings import DeviceTime, GlucoseReading, GlucoseUnit, ReadingKind, stable_reading_id
from drivers.recording import Direction, Frame
from gateway.store import DATABASE_FILENAME, Database, open_database
from gateway.store.frames import FrameBatch, TransferHeader
from gateway.store.readings import save_transfer

METER = "C0:FF:EE:00:00:01"
ZONE = ZoneInfo("UTC")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _reading(i: int) -> GlucoseReading:
    when = T0 + timedelta(minutes=7 * i)
    time_ = DeviceTime(when.year, when.month, when.day, when.hour, when.minute, when.second)
    return GlucoseReading(
        id=stable_reading_id(METER, ReadingKind.GLUCOSE, sequence=i, device_time=time_),
        device=METER,
        provider="accuchek_ble",
        received_at=when + timedelta(hours=1),
        device_time=time_,
        sequence=i,
        concentration=0.001 + (i % 200) / 100000,
        unit=GlucoseUnit.KG_PER_L,
    )


def _frames(first: int, count: int, started: datetime) -> list[Frame]:
    """A meter transfer's conversation, sized as on air."""
    script: list[tuple[Direction, str, bytes]] = [
        (Direction.READ, uuids.MANUFACTURER_NAME, b"Roche"),
        (Direction.READ, uuids.MODEL_NUMBER, b"Guide"),
        (Direction.READ, uuids.SERIAL_NUMBER, b"92541837"),
        (Direction.READ, uuids.CURRENT_TIME, bytes(10)),
        (Direction.SUBSCRIBE, uuids.GLUCOSE_MEASUREMENT, b""),
        (Direction.SUBSCRIBE, uuids.GLUCOSE_MEASUREMENT_CONTEXT, b""),
        (Direction.SUBSCRIBE, uuids.RECORD_ACCESS_CONTROL_POINT, b""),
        (
            Direction.WRITE,
            uuids.RECORD_ACCESS_CONTROL_POINT,
            b"\x01\x03\x01" + (first & 0xFFFF).to_bytes(2, "little"),
        ),
    ]
    for i in range(first, first + count):
        measurement = b"\x1b" + (i & 0xFFFF).to_bytes(2, "little") + bytes(14)
        script.append((Direction.NOTIFY, uuids.GLUCOSE_MEASUREMENT, measurement))
        if i % 2:
            script.append((Direction.NOTIFY, uuids.GLUCOSE_MEASUREMENT_CONTEXT, b"\x02" + bytes(3)))
    script.append((Direction.NOTIFY, uuids.RECORD_ACCESS_CONTROL_POINT, b"\x06\x00\x01\x01"))
    return [
        Frame(n, d, c, b, started + timedelta(milliseconds=40 * n), 0.04 * n)
        for n, (d, c, b) in enumerate(script)
    ]


def _header(n: int, started: datetime) -> TransferHeader:
    return TransferHeader(
        id=f"bench-{n:08d}",
        device=METER,
        connection_id=f"conn-{n:08d}",
        driver="sig_glucose",
        driver_version="bench/1",
        started_at=started,
        context={
            "match": {"driver": "sig_glucose", "kind": "glucose", "brand": "Accu-Chek"},
            "cursor": {"last_sequence": n},
            "historical": False,
            "zone": "UTC",
            "advertisement": {"name": "meter+00012345", "service_uuids": ["1808"]},
            "shape": {"services": {"1808": {"2a18": ["notify"], "2a52": ["indicate", "write"]}}},
        },
    )


def _size(db: Database) -> int:
    db.close()
    with sqlite3.connect(db.path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db.path.stat().st_size


def _meter_run(folder: Path, readings: int, per_transfer: int, *, frames: bool) -> dict[str, float]:
    db = open_database(folder / DATABASE_FILENAME)
    all_readings = [_reading(i) for i in range(readings)]
    batches: list[tuple[Sequence[GlucoseReading], FrameBatch | None]] = []
    for n, start in enumerate(range(0, readings, per_transfer)):
        chunk = all_readings[start : start + per_transfer]
        started = chunk[0].received_at
        batch = (
            FrameBatch(_header(n, started), _frames(start, len(chunk), started)) if frames else None
        )
        batches.append((chunk, batch))
    began = time.perf_counter()
    for chunk, batch in batches:
        save_transfer(db, chunk, zone=ZONE, frames=batch)
    elapsed = time.perf_counter() - began
    size = _size(db)
    return {
        "bytes": size,
        "bytes_per_reading": size / readings,
        "readings_per_s": readings / elapsed,
    }


def _stream_run(folder: Path, readings: int, *, frames: bool) -> float:
    """A cuff stream: one commit per reading, each with its indication (readings/s)."""
    db = open_database(folder / DATABASE_FILENAME)
    started = T0
    header = _header(0, started)
    items = [_reading(i) for i in range(readings)]
    began = time.perf_counter()
    for i, reading in enumerate(items):
        batch = None
        if frames:
            frame = Frame(
                i, Direction.NOTIFY, uuids.BLOOD_PRESSURE_MEASUREMENT, bytes(19), started, 0.1 * i
            )
            batch = FrameBatch(header, [frame], always=True)
        save_transfer(db, [reading], zone=ZONE, frames=batch)
    elapsed = time.perf_counter() - began
    db.close()
    return readings / elapsed


def main() -> None:
    """Run both modes and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--per-transfer", type=int, default=50)
    parser.add_argument("--stream-readings", type=int, default=1000)
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args()
    results: dict[str, object] = {"readings": args.readings, "per_transfer": args.per_transfer}
    for mode, on in (("off", False), ("on", True)):
        with tempfile.TemporaryDirectory() as tmp:
            results[f"meter_frames_{mode}"] = _meter_run(
                Path(tmp), args.readings, args.per_transfer, frames=on
            )
        with tempfile.TemporaryDirectory() as tmp:
            results[f"stream_readings_per_s_frames_{mode}"] = _stream_run(
                Path(tmp), args.stream_readings, frames=on
            )
    off = results["meter_frames_off"]
    on = results["meter_frames_on"]
    assert isinstance(off, dict)
    assert isinstance(on, dict)
    results["size_ratio_on_off"] = on["bytes"] / off["bytes"]
    results["frame_bytes_per_reading"] = on["bytes_per_reading"] - off["bytes_per_reading"]
    print(f"{args.readings} glucose readings, {args.per_transfer} per transfer")
    for mode in ("off", "on"):
        run = results[f"meter_frames_{mode}"]
        assert isinstance(run, dict)
        print(
            f"  frames {mode:3}: {run['bytes'] / 1e6:7.1f} MB,"
            f" {run['bytes_per_reading']:6.0f} B/reading,"
            f" {run['readings_per_s']:8.0f} readings/s saved"
        )
    print(
        f"  frames add {results['frame_bytes_per_reading']:.0f} B/reading;"
        f" database {results['size_ratio_on_off']:.2f}x"
    )
    print(
        "cuff stream, one commit per reading:"
        f" {results['stream_readings_per_s_frames_off']:.0f}/s off,"
        f" {results['stream_readings_per_s_frames_on']:.0f}/s on"
    )
    if args.json:
        print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    main()
