"""Capture → upstream 2xx of a blood-pressure reading while a glucose backlog drains.

Run: `.venv/bin/python bench/backlog_latency.py [--backlog N] [--probes K] [--json]`.

One user has N glucose readings queued in the store's SQLite outbox (a clinic's meter after
a day offline), the last 8 of them a historical backfill queued behind the daily ones, and
the uploader (backfill on, so the historical-stage gate is active) drains them to the
Junction stub (its own process, loopback HTTP). Meanwhile K blood-pressure readings of the
same user, each a cuff's first read (historical), are queued one at a time, one second
apart; each one's latency runs from its enqueue to the stub's 2xx for its POST.

Before issue 18 the gate held such a reading until the glucose backlog was gone (27-30 s at
100k). Prints figures only; with --json the last line is one JSON object (`bp_p50_ms`,
`bp_max_ms`, `backlog`, `drained`).
"""

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sync_drain import KEY, ZONE, ZONE_NAME, free_port, make_readings, start_stub, wait_ready

from drivers.readings import ReadingKind
from gateway.store import DATABASE_FILENAME, open_database
from gateway.store.outbox import SqliteOutbox
from sync.junction.client import JunctionClient
from sync.junction.mapping import Upload
from sync.outbox import OutboxItem, Stage
from sync.uploader import Uploader

USER = "upl-sqlite-user-0"  # registered with the stub by sync_drain.start_stub


class TimedClient(JunctionClient):
    """Sets an event when a blood-pressure POST is answered 2xx."""

    bp_done: asyncio.Event

    async def post(self, user_id: str, upload: Upload) -> None:
        await super().post(user_id, upload)
        if upload.path.endswith("/blood_pressure"):
            self.bp_done.set()


def _item(reading, stage: Stage, now: datetime) -> OutboxItem:
    window = (now - timedelta(days=30), now) if stage is Stage.HISTORICAL else (None, None)
    return OutboxItem(
        reading=reading,
        user_id=USER,
        provider=reading.provider,
        stage=stage,
        enqueued_at=now,
        window_start=window[0],
        window_end=window[1],
    )


async def run(backlog: int, probes: int, base: str, directory: Path) -> dict[str, float]:
    pool = make_readings(backlog * 3 + probes * 6, "upl-sqlite")
    glucose = [r for _, r in pool if r.kind is ReadingKind.GLUCOSE][:backlog]
    pressure = [r for _, r in pool if r.kind is ReadingKind.BLOOD_PRESSURE][:probes]
    now = datetime.now(UTC)
    later = now + timedelta(seconds=1)
    items = [_item(r, Stage.DAILY, now) for r in glucose[:-8]]
    items += [_item(r, Stage.HISTORICAL, later) for r in glucose[-8:]]
    outbox = SqliteOutbox(open_database(directory / DATABASE_FILENAME), zone=ZONE)
    await outbox.enqueue(items)
    client = TimedClient(base_url=base, api_key=SecretStr(KEY), read_timeout_s=60)
    client.bp_done = asyncio.Event()
    uploader = Uploader(outbox, client, time_zone=ZONE_NAME, rng=random.Random(1), backfill_days=30)
    task = asyncio.create_task(uploader.run())
    latencies: list[float] = []
    try:
        for reading in pressure:
            await asyncio.sleep(1.0)
            client.bp_done.clear()
            started = time.perf_counter()
            await outbox.enqueue([_item(reading, Stage.HISTORICAL, datetime.now(UTC))])
            uploader.wake()
            await asyncio.wait_for(client.bp_done.wait(), timeout=300)
            latencies.append(time.perf_counter() - started)
        drained = uploader.stats.delivered
    finally:
        uploader.stop()
        await task
        await client.aclose()
    return {
        "backlog": backlog,
        "probes": probes,
        "bp_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "bp_max_ms": round(max(latencies) * 1000, 1),
        "drained": drained,
        "load_1m": round(os.getloadavg()[0], 2),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=100_000, help="glucose readings queued")
    parser.add_argument("--probes", type=int, default=5, help="BP readings timed")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args()
    port = free_port()
    stub = start_stub(port)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(base)
        with tempfile.TemporaryDirectory() as directory:
            figures = await run(args.backlog, args.probes, base, Path(directory))
    finally:
        stub.terminate()
        stub.wait(10)
    print(
        f"BP capture -> 2xx with {args.backlog} glucose readings queued: "
        f"p50 {figures['bp_p50_ms']} ms, max {figures['bp_max_ms']} ms "
        f"({figures['drained']} readings delivered meanwhile)"
    )
    if args.json:
        print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    asyncio.run(main())
