"""Sender CPU per reading on the upload path, piece by piece (issue 18).

Run: `.venv/bin/python bench/upload_cpu.py [--readings N] [--backlogs N ...] [--json]`.

One process, no stub, no network: what the sender spends per reading, so a change to one
piece shows without the stub's share of a 2-core box. Times are µs per reading, best of 3
(process CPU for the uploader figures), over `sync_drain`'s readings (glucose:BP:body 2:2:1,
10 users):

1. **rebuild**: a stored reading from its `READING_COLUMNS_SQL` row, validating
   (`reading_from_row`, as the claim did) and trusted (`reading_from_db`); `outbox_items`
   builds the claim's `OutboxItem`s the trusted way.
2. **map**: `build_upload` over batches of the uploader's size, per resource.
3. **json**, **gzip**: the client's serialisation and compression of those bodies.
4. **uploader**: `sync.uploader.Uploader` draining the in-memory and the SQLite outbox to an
   in-process `httpx.MockTransport` answering 200: everything the sender does per reading
   but the network (the SQLite figure includes the outbox's claim and complete).

Prints figures only; with --json the last line is one JSON object: `rebuild_validating_us`,
`rebuild_trusted_us`, `items_trusted_us`, `map_us`, `json_us`, `gzip_us`,
`uploader_memory_us`, `uploader_sqlite_us`, `load_1m`; with `--backlogs N …`, `by_backlog`: the
SQLite figure for a backlog of each size (the same CPU per reading at every size means no work
grows with the queue: issue 18's "no O(n) work per batch").
"""

import argparse
import asyncio
import gzip
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sync_drain import KEY, ZONE, ZONE_NAME, items_of, make_outbox, make_readings

from drivers.readings import ReadingKind
from gateway.store import DATABASE_FILENAME
from gateway.store.codec import (
    READING_COLUMNS_SQL,
    ReadingColumns,
    outbox_items,
    reading_from_db,
    reading_from_row,
)
from sync.junction.client import GZIP_LEVEL, JunctionClient
from sync.junction.mapping import build_upload
from sync.outbox import Stage
from sync.uploader import BATCH_SIZE, Uploader


def best_us(fn: Callable[[], object], count: int, repeat: int = 3) -> float:
    """Best wall time of `repeat` runs of `fn`, in µs per item of `count`."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return 1e6 * best / count


async def stored_rows(n: int, directory: Path) -> tuple[list[tuple[Any, ...]], list[Any]]:
    """The reading rows and outbox (enqueued_at, attempts) of n readings enqueued to SQLite."""
    outbox = await make_outbox("sqlite", directory)
    await outbox.enqueue(items_of(make_readings(n, "cpu")))
    with sqlite3.connect(directory / DATABASE_FILENAME) as conn:
        query = f"SELECT {READING_COLUMNS_SQL} FROM reading ORDER BY pk"  # noqa: S608 - constants
        rows = [tuple(r) for r in conn.execute(query)]
        queued = conn.execute(
            "SELECT enqueued_at, attempts FROM outbox_item ORDER BY pk"
        ).fetchall()
    return rows, queued


async def uploader_us(n: int, kind: str, directory: Path) -> float:
    """Process CPU per reading of an Uploader draining `kind` to a MockTransport."""
    outbox = await make_outbox(kind, directory)
    await outbox.enqueue(items_of(make_readings(n, f"upl-{kind}")))
    client = JunctionClient(
        base_url="http://junction.test",
        api_key=SecretStr(KEY),
        transport=httpx.MockTransport(lambda _request: httpx.Response(200, json={})),
    )
    uploader = Uploader(outbox, client, time_zone=ZONE_NAME, rng=random.Random(1))
    started = time.process_time()
    await uploader.run(until_idle=True)
    spent = time.process_time() - started
    await client.aclose()
    assert uploader.stats.delivered == n
    return 1e6 * spent / n


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=20_000)
    parser.add_argument(
        "--backlogs",
        type=int,
        nargs="*",
        default=[],
        metavar="N",
        help="also drain SQLite backlogs of these sizes (e.g. 10000 100000 1000000)",
    )
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args()
    n = args.readings
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as directory:
        rows, queued = await stored_rows(n, Path(directory))
    figures["rebuild_validating_us"] = best_us(
        lambda: [reading_from_row(ReadingColumns.from_db(row)) for row in rows], len(rows)
    )
    figures["rebuild_trusted_us"] = best_us(lambda: [reading_from_db(row) for row in rows], n)
    batch = [(at, attempts, row) for (at, attempts), row in zip(queued, rows, strict=True)]
    figures["items_trusted_us"] = best_us(
        lambda: outbox_items(
            batch,
            user_id="u",
            provider="p",
            stage=Stage.DAILY,
            window_start=None,
            window_end=None,
        ),
        n,
    )
    readings = [reading for _user, reading in make_readings(n, "map")]
    batches = []
    for resource in (ReadingKind.GLUCOSE, ReadingKind.BLOOD_PRESSURE, ReadingKind.BODY):
        of_kind = [r for r in readings if r.kind is resource]
        batches += [
            (resource, of_kind[i : i + BATCH_SIZE]) for i in range(0, len(of_kind), BATCH_SIZE)
        ]

    def map_all() -> list[Any]:
        return [
            build_upload(
                chunk,
                user_id="u",
                resource=resource,
                provider="p",
                stage=Stage.DAILY,
                zone=ZONE,
                time_zone=ZONE_NAME,
            ).body
            for resource, chunk in batches
        ]

    figures["map_us"] = best_us(map_all, n)
    bodies = map_all()
    # As `JunctionClient` encodes a body (tests/sync/junction/test_wire_bytes.py pins it).
    encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False, check_circular=False)
    figures["json_us"] = best_us(lambda: [encoder.encode(b).encode() for b in bodies], n)
    encoded = [encoder.encode(b).encode() for b in bodies]
    figures["gzip_us"] = best_us(
        lambda: [gzip.compress(b, compresslevel=GZIP_LEVEL) for b in encoded], n
    )
    with tempfile.TemporaryDirectory() as directory:
        figures["uploader_memory_us"] = await uploader_us(n, "memory", Path(directory))
        figures["uploader_sqlite_us"] = await uploader_us(n, "sqlite", Path(directory))
    by_backlog: dict[str, float] = {}
    for size in args.backlogs:
        with tempfile.TemporaryDirectory() as directory:
            by_backlog[str(size)] = round(await uploader_us(size, "sqlite", Path(directory)), 2)
    print(f"readings: {n} (glucose:BP:body 2:2:1), batch {BATCH_SIZE}; µs per reading")
    for name, value in figures.items():
        print(f"  {name.removesuffix('_us'):22} {value:8.1f}")
    for size, value in by_backlog.items():
        print(f"  uploader_sqlite, {int(size):>9,} queued {value:8.1f}")
    if args.json:
        out: dict[str, object] = {k: round(v, 2) for k, v in figures.items()}
        if by_backlog:
            out["by_backlog"] = by_backlog
        out["readings"] = n
        out["load_1m"] = round(os.getloadavg()[0], 2)
        print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    asyncio.run(main())
