"""Store throughput and memory: readings saved per second, batched vs one-by-one, and RSS.

Run: `.venv/bin/python bench/store_save.py [--batched N] [--single N] [--stored N]`.
Prints figures only (no assertions); a real file in a temporary directory, WAL,
synchronous=FULL, so every commit waits for fsync as it does on the gateway.
"""

import argparse
import gc
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from drivers.readings import DeviceTime, GlucoseReading, GlucoseUnit, ReadingKind, stable_reading_id
from gateway.store import open_database, users
from gateway.store.readings import CursorUpdate, list_readings, save_transfer

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batched", type=int, default=20_000, help="readings saved in transfers")
    parser.add_argument("--single", type=int, default=1_000, help="readings saved one by one")
    parser.add_argument("--stored", type=int, default=100_000, help="readings stored for RSS")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db = open_database(Path(tmp) / "gateway.sqlite3")
        users.bind(db, "C0:FF:EE:00:00:01", "user-a")  # attributed: the outbox is written too
        users.bind(db, "C0:FF:EE:00:00:02", "user-a")

        batch = readings("C0:FF:EE:00:00:01", 1, args.batched)
        start = time.perf_counter()
        for offset in range(0, len(batch), TRANSFER):
            chunk = batch[offset : offset + TRANSFER]
            save_transfer(
                db,
                chunk,
                zone=ZONE,
                advance=CursorUpdate("C0:FF:EE:00:00:01", last_sequence=chunk[-1].sequence),
            )
        batched_rate = len(batch) / (time.perf_counter() - start)

        single = readings("C0:FF:EE:00:00:02", 1, args.single)
        start = time.perf_counter()
        for reading in single:
            save_transfer(db, [reading], zone=ZONE)
        single_rate = len(single) / (time.perf_counter() - start)

        start = time.perf_counter()
        again = save_transfer(db, batch[:TRANSFER], zone=ZONE)
        reread_s = time.perf_counter() - start

        print(f"batched ({TRANSFER} per transfer): {batched_rate:10.0f} readings/s")
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


if __name__ == "__main__":
    main()
