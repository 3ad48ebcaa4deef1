"""Sync throughput: drain buffered readings to the Junction stub, against two baselines.

Run: `.venv/bin/python bench/sync_drain.py [--readings N] [--sdk-readings N] [--outbox KIND]
[--json]`.

Three figures from one run, against one stub process (its own core, loopback HTTP):

1. **raw accept rate**: the stub's ceiling. Pre-mapped, pre-serialised, pre-gzipped bodies
   of the uploader's batch size, posted with the uploader's concurrency; no mapping, no
   outbox, no JSON/gzip cost on the sender.
2. **uploader**: `sync.uploader.Uploader` draining an outbox that holds every reading
   (claim → map → JSON → gzip → POST → complete, progress recorded per batch): the
   in-memory outbox, and the store's SQLite outbox (WAL, synchronous=FULL).
3. **SDK-style**: what the mobile Devices SDK does per device read (mobile-sdk-sync.md §2.4):
   `POST /v2/link/provider/manual/{slug}` then one un-gzipped POST with that read's
   samples, one read = one new reading, reads running with the same concurrency.

Prints figures only (no assertions); with --json the last line is one JSON object:
`raw_per_s`, `sdk_per_s`, and per outbox drained `<kind>_per_s` and `<kind>_ratio` (÷ the raw
rate of the same run), e.g. `sqlite_per_s`, `sqlite_ratio`; and `sqlite_catch_up_s`, the time
the SQLite outbox then takes, idle, to give the delivered readings their place in the change
order (`gateway.store.outbox`; `run` does it on a timer once the uploader is idle).
"""

import argparse
import asyncio
import gzip
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from pydantic import SecretStr

from drivers.readings import (
    BloodPressureReading,
    BodyReading,
    DeviceTime,
    GlucoseReading,
    GlucoseUnit,
    MassUnit,
    PressureUnit,
    Reading,
    ReadingKind,
    stable_reading_id,
)
from sync.junction.client import GZIP_LEVEL, JunctionClient
from sync.junction.mapping import build_upload
from sync.memory_outbox import MemoryOutbox
from sync.outbox import Outbox, OutboxItem, Stage, items_for_read
from sync.uploader import BATCH_SIZE, MAX_IN_FLIGHT, Uploader

ZONE_NAME = "Europe/Berlin"
ZONE = ZoneInfo(ZONE_NAME)
KEY = "sk_us_bench"
USERS = 10
BASE = datetime(2026, 1, 1)  # noqa: DTZ001 - device wall time
ROOT = Path(__file__).resolve().parent.parent


def make_readings(n: int, tag: str) -> list[tuple[str, Reading]]:
    """n readings over USERS users, glucose/BP/body in 2:2:1, mixed units."""
    now = datetime.now(UTC)
    rng = random.Random(1)
    out: list[tuple[str, Reading]] = []
    for i in range(n):
        user = f"{tag}-user-{i % USERS}"
        device = f"C0:FF:EE:{tag[:2].upper()}:{i % USERS:02X}:0{i % 5}"
        wall = DeviceTime.from_datetime(BASE + timedelta(minutes=i))
        kind = (
            ReadingKind.GLUCOSE,
            ReadingKind.GLUCOSE,
            ReadingKind.BLOOD_PRESSURE,
            ReadingKind.BLOOD_PRESSURE,
            ReadingKind.BODY,
        )[(i // USERS) % 5]
        rid = stable_reading_id(device, kind, sequence=i, device_time=wall)
        common = {
            "id": rid,
            "device": device,
            "received_at": now,
            "device_time": wall,
            "sequence": i,
        }
        reading: Reading
        if kind is ReadingKind.GLUCOSE:
            reading = GlucoseReading(
                provider="accuchek_ble",
                concentration=rng.uniform(0.0007, 0.0015),
                unit=GlucoseUnit.KG_PER_L,
                sample_type=1,
                **common,
            )
        elif kind is ReadingKind.BLOOD_PRESSURE:
            reading = BloodPressureReading(
                provider="omron_ble",
                systolic=rng.uniform(100, 150),
                diastolic=80.0,
                mean_arterial=None,
                unit=PressureUnit.MMHG,
                pulse_bpm=64.0,
                **common,
            )
        else:
            reading = BodyReading(
                provider="omron_ble",
                weight=rng.uniform(60, 90),
                unit=MassUnit.KG,
                fat_percent=21.0,
                **common,
            )
        out.append((user, reading))
    return out


def items_of(readings: list[tuple[str, Reading]]) -> list[OutboxItem]:
    now = datetime.now(UTC)
    items: list[OutboxItem] = []
    for user, reading in readings:
        items += items_for_read([reading], user_id=user, zone=ZONE, enqueued_at=now)
    return items


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_stub(port: int) -> subprocess.Popen[bytes]:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    tags = ("raw", "upl-memory", "upl-sqlite", "sdk")
    users = [f"{tag}-user-{i}" for tag in tags for i in range(USERS)]  # the strict stub's registry
    return subprocess.Popen(
        [sys.executable, "-m", "sync.junction.stub_server", str(port), KEY, *users],
        env=env,
        cwd=ROOT,
    )


async def wait_ready(base: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                await client.get(f"{base}/_stub/faults")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    msg = "stub did not start"
    raise SystemExit(msg)


async def reset(base: str) -> int:
    # A generous timeout: listing 100k+ stored samples takes the stub a while on a busy box.
    async with httpx.AsyncClient(base_url=base, timeout=300) as client:
        count = len((await client.get("/_stub/samples")).json())
        await client.post("/_stub/reset")
        return count


async def raw_accept_rate(base: str, n: int) -> float:
    readings = make_readings(n, "raw")
    bodies: list[tuple[str, bytes]] = []
    by_stream: dict[tuple[str, ReadingKind], list[Reading]] = {}
    for user, reading in readings:
        by_stream.setdefault((user, reading.kind), []).append(reading)
    for (user, kind), group in by_stream.items():
        for start in range(0, len(group), BATCH_SIZE):
            upload = build_upload(
                group[start : start + BATCH_SIZE],
                user_id=user,
                resource=kind,
                provider=group[0].provider,
                stage=Stage.DAILY,
                zone=ZONE,
                time_zone=ZONE_NAME,
            )
            body = json.dumps(upload.body, separators=(",", ":")).encode()
            bodies.append((upload.path, gzip.compress(body, GZIP_LEVEL)))
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {
        "x-vital-api-key": KEY,
        "content-encoding": "gzip",
        "content-type": "application/json",
    }

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            path, content = queue.get_nowait()
            (await client.post(path, content=content, headers=headers)).raise_for_status()

    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for user, provider in {(u, r.provider) for u, r in readings}:  # the stub wants links
            link = f"/v2/link/provider/manual/{provider}"
            await client.post(link, json={"user_id": user}, headers={"x-vital-api-key": KEY})
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(MAX_IN_FLIGHT)))
        elapsed = time.perf_counter() - started
    return n / elapsed


async def make_outbox(kind: str, directory: Path) -> Outbox:
    if kind == "memory":
        return MemoryOutbox()
    from gateway.store import DATABASE_FILENAME, open_database
    from gateway.store.outbox import SqliteOutbox

    return SqliteOutbox(open_database(directory / DATABASE_FILENAME), zone=ZONE)


async def uploader_rate(
    base: str, n: int, kind: str, directory: Path
) -> tuple[float, int, float | None]:
    """(readings/s, POSTs, seconds the SQLite outbox then took to catch up the change order)."""
    outbox = await make_outbox(kind, directory)
    await outbox.enqueue(items_of(make_readings(n, f"upl-{kind}")))
    client = JunctionClient(base_url=base, api_key=SecretStr(KEY), read_timeout_s=60)
    uploader = Uploader(outbox, client, time_zone=ZONE_NAME, rng=random.Random(1))
    started = time.perf_counter()
    await uploader.run(until_idle=True)
    elapsed = time.perf_counter() - started
    await client.aclose()
    assert uploader.stats.delivered == n
    catch_up_s = None
    if kind == "sqlite":  # what `run` does next, on its 1 s timer, while idle
        from gateway.store.outbox import SqliteOutbox

        assert isinstance(outbox, SqliteOutbox)
        started = time.perf_counter()
        while await outbox.catch_up():
            pass
        catch_up_s = time.perf_counter() - started
    return n / elapsed, uploader.stats.posts, catch_up_s


async def sdk_style_rate(base: str, n: int) -> float:
    readings = make_readings(n, "sdk")
    queue: asyncio.Queue[tuple[str, Reading]] = asyncio.Queue()
    for pair in readings:
        queue.put_nowait(pair)
    key = {"x-vital-api-key": KEY}

    async def device_reads(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            user, reading = queue.get_nowait()
            link = await client.post(
                f"/v2/link/provider/manual/{reading.provider}", json={"user_id": user}, headers=key
            )
            assert link.status_code in {200, 409}
            upload = build_upload(
                [reading],
                user_id=user,
                resource=reading.kind,
                provider=reading.provider,
                stage=Stage.DAILY,
                zone=ZONE,
                time_zone=ZONE_NAME,
            )
            (await client.post(upload.path, json=upload.body, headers=key)).raise_for_status()

    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        started = time.perf_counter()
        await asyncio.gather(*(device_reads(client) for _ in range(MAX_IN_FLIGHT)))
        elapsed = time.perf_counter() - started
    return n / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--sdk-readings", type=int, default=5_000)
    parser.add_argument(
        "--outbox",
        choices=["memory", "sqlite", "both"],
        default="both",
        help="drain the in-memory or the store's SQLite outbox (WAL, synchronous=FULL), or both",
    )
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args()
    port = free_port()
    stub = start_stub(port)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(base)
        raw = await raw_accept_rate(base, args.readings)
        stored_raw = await reset(base)
        kinds = ["memory", "sqlite"] if args.outbox == "both" else [args.outbox]
        drains = {}
        with tempfile.TemporaryDirectory() as directory:
            for kind in kinds:
                drains[kind] = await uploader_rate(base, args.readings, kind, Path(directory))
                drains[kind] += (await reset(base),)
        sdk = await sdk_style_rate(base, args.sdk_readings)
        await reset(base)
    finally:
        stub.terminate()
        stub.wait(10)
    print(
        f"readings: {args.readings} ({USERS} users, glucose:BP:body 2:2:1), "
        f"batch {BATCH_SIZE}, {MAX_IN_FLIGHT} in flight, cpus {os.cpu_count()}"
    )
    print(f"stub raw accept rate     {raw:10.0f} readings/s  ({stored_raw} samples stored)")
    print(f"SDK-style (per read)     {sdk:10.0f} readings/s  (on {args.sdk_readings} readings)")
    for kind, (rate, posts, catch_up_s, stored) in drains.items():
        print(
            f"uploader, {kind:6} outbox {rate:10.0f} readings/s  ({posts} POSTs, {stored} stored)"
        )
        print(f"  / raw accept rate      {rate / raw:10.2f}")
        print(f"  / SDK-style            {rate / sdk:10.1f}x")
        if catch_up_s is not None:
            print(f"  then change order caught up in {catch_up_s:.1f} s (idle, after the drain)")
    if args.json:
        figures: dict[str, float | int] = {
            "readings": args.readings,
            "raw_per_s": round(raw),
            "sdk_per_s": round(sdk),
            "load_1m": round(os.getloadavg()[0], 2),
        }
        for kind, (rate, _posts, catch_up_s, _stored) in drains.items():
            figures[f"{kind}_per_s"] = round(rate)
            figures[f"{kind}_ratio"] = round(rate / raw, 3)
            if catch_up_s is not None:
                figures[f"{kind}_catch_up_s"] = round(catch_up_s, 2)
        print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    asyncio.run(main())
