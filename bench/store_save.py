"""Store throughput and memory: readings saved per second, batched vs one-by-one, and RSS.

Run: `.venv/bin/python bench/store_save.py [--batched N] [--single N] [--stored N] [--json]`.
Prints figures only (no assertions); a real file in a temporary directory, WAL,
synchronous=FULL, so every commit waits for fsync as it does on the gateway.

The floor (same run): a bare `sqlite3` connection writing the very rows `save_transfer`
writes (reading + outbox rows, prepared beforehand) with `executemany`, into a file with the
store's schema and indexes, one transaction (fsync) per transfer. With --json the last line
is one JSON object: `batched_per_s`, `floor_per_s`, `floor_ratio`, `single_per_s`, ….
`batched_cpu_per_s` and `floor_cpu_per_s` count this process's CPU seconds instead of wall
time: on a shared, loaded box they leave out waiting for the CPU and the disk.
"""

import argparse
import gc
import json
import os
import resource
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from drivers.readings import DeviceTime, GlucoseReading, GlucoseUnit, ReadingKind, stable_reading_id
from gateway.store import open_database, users

# The store's own row layout, so the floor writes exactly the rows save_transfer writes.
from gateway.store.readings import list_readings
from gateway.store.save import _INSERT_COLUMNS, CursorUpdate, _own_values, save_transfer
from gateway.store.types import utc_text

ZONE = ZoneInfo("Europe/Berlin")
BASE = datetime(2026, 1, 1)  # noqa: DTZ001 - device wall time
TRANSFER = 500  # records per transfer, e.g. a meter's first full RACP read


def readings(device: str, start: int, count: int) -> list[GlucoseReading]:
    now = datetime.now(UTC)
    result = []
    for seq in range(start, start + count):
        time_ = DeviceTime.from_datetime(BASE + timedelta(minutes=seq))
        result.append(
            GlucoseReading(
                id=stable_reading_id(device, ReadingKind.GLUCOSE, sequence=seq, device_time=time_),
                device=device,
                provider="accuchek_ble",
                received_at=now,
                device_time=time_,
                sequence=seq,
                concentration=0.001 + (seq % 200) * 1e-5,
                unit=GlucoseUnit.KG_PER_L,
            )
        )
    return result


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def floor_rate(path: Path, batch: list[GlucoseReading]) -> tuple[float, float]:
    """Readings/s of a bare sqlite3 executemany of the same rows (see the module docstring).

    Returns:
        (readings per wall second, readings per CPU second of this process).
    """
    open_database(path).close()  # the store's schema and indexes
    now = datetime.now(UTC)
    stamp, texts = utc_text(now), {}
    rows = [
        (
            *_own_values(r, ZONE, texts),
            "user-a",
            "binding",
            r.provider,
            "queued",
            stamp,
            stamp,
            n,
            None,
        )
        for n, r in enumerate(batch, start=1)
    ]
    items = [(r.id, "user-a", "glucose", r.provider, "daily", None, None, stamp) for r in batch]
    marks = ", ".join("?" * len(_INSERT_COLUMNS))
    insert_reading = f"INSERT INTO reading ({', '.join(_INSERT_COLUMNS)}) VALUES ({marks})"  # noqa: S608
    insert_item = (
        "INSERT INTO outbox_item (reading_id, user_id, resource, provider, stage,"
        " window_start, window_end, enqueued_at, attempts, state)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 'queued')"
    )
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    start, cpu = time.perf_counter(), time.process_time()
    for offset in range(0, len(rows), TRANSFER):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(insert_reading, rows[offset : offset + TRANSFER])
        conn.executemany(insert_item, items[offset : offset + TRANSFER])
        conn.execute("COMMIT")
    rate = len(rows) / (time.perf_counter() - start)
    cpu_rate = len(rows) / (time.process_time() - cpu)
    conn.close()
    return rate, cpu_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batched", type=int, default=20_000, help="readings saved in transfers")
    parser.add_argument("--single", type=int, default=1_000, help="readings saved one by one")
    parser.add_argument("--stored", type=int, default=100_000, help="readings stored for RSS")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        floor, floor_cpu = floor_rate(
            Path(tmp) / "floor.sqlite3", readings("C0:FF:EE:00:00:01", 1, args.batched)
        )
        for leftover in Path(tmp).iterdir():
            leftover.unlink()
        db = open_database(Path(tmp) / "gateway.sqlite3")
        users.bind(db, "C0:FF:EE:00:00:01", "user-a")  # attributed: the outbox is written too
        users.bind(db, "C0:FF:EE:00:00:02", "user-a")

        batch = readings("C0:FF:EE:00:00:01", 1, args.batched)
        start, cpu = time.perf_counter(), time.process_time()
        for offset in range(0, len(batch), TRANSFER):
            chunk = batch[offset : offset + TRANSFER]
            save_transfer(
                db,
                chunk,
                zone=ZONE,
                advance=CursorUpdate("C0:FF:EE:00:00:01", last_sequence=chunk[-1].sequence),
            )
        batched_rate = len(batch) / (time.perf_counter() - start)
        batched_cpu = len(batch) / (time.process_time() - cpu)

        single = readings("C0:FF:EE:00:00:02", 1, args.single)
        start = time.perf_counter()
        for reading in single:
            save_transfer(db, [reading], zone=ZONE)
        single_rate = len(single) / (time.perf_counter() - start)

        start = time.perf_counter()
        again = save_transfer(db, batch[:TRANSFER], zone=ZONE)
        reread_s = time.perf_counter() - start

        print(f"batched ({TRANSFER} per transfer): {batched_rate:10.0f} readings/s")
        print(f"bare sqlite3 floor, same rows:{floor:10.0f} readings/s")
        print(f"ratio batched / floor:        {batched_rate / floor:10.2f}")
        print(f"per CPU second, batched:      {batched_cpu:10.0f} readings/s")
        print(f"per CPU second, floor:        {floor_cpu:10.0f} readings/s")
        print(f"one-by-one (1 per transfer):  {single_rate:10.0f} readings/s")
        print(f"ratio batched / one-by-one:   {batched_rate / single_rate:10.1f}x")
        print(f"re-read of {TRANSFER} known readings: {reread_s * 1000:.1f} ms ({again.new} new)")

        stored = args.batched + args.single
        device = "C0:FF:EE:00:00:03"  # unbound: kept, not queued
        seq = 1
        while stored < args.stored:
            count = min(5_000, args.stored - stored)
            save_transfer(db, readings(device, seq, count), zone=ZONE)
            seq += count
            stored += count
        gc.collect()
        start = time.perf_counter()
        cursor, pages = None, 0
        while True:
            _, cursor = list_readings(db, limit=1000, cursor=cursor)
            pages += 1
            if cursor is None:
                break
        walk_s = time.perf_counter() - start
        size_mib = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 2**20
        db.close()
        start = time.perf_counter()
        db = open_database(Path(tmp) / "gateway.sqlite3")  # quick_check + migrations
        open_s = time.perf_counter() - start
        print(f"stored readings:              {stored:10d}")
        print(f"RSS after storing and paging: {rss_mib():10.1f} MiB")
        print(f"database files on disk:       {size_mib:10.1f} MiB")
        print(f"full paged walk:              {walk_s:10.2f} s ({pages} pages of 1000)")
        print(f"reopen (quick_check):         {open_s:10.2f} s")
        db.close()
    if args.json:
        figures = {
            "batched_per_s": round(batched_rate),
            "floor_per_s": round(floor),
            "floor_ratio": round(batched_rate / floor, 3),
            "batched_cpu_per_s": round(batched_cpu),
            "floor_cpu_per_s": round(floor_cpu),
            "single_per_s": round(single_rate),
            "reread_ms": round(reread_s * 1000, 1),
            "stored": stored,
            "rss_mib": round(rss_mib(), 1),
            "walk_s": round(walk_s, 2),
            "load_1m": round(os.getloadavg()[0], 2),
        }
        print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
