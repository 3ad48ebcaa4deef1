"""Local API latency and throughput: `GET /v1/readings` pages over 1,000,000 stored readings.

Run: `.venv/bin/python bench/api_readings.py [--readings N [N ...]] [--seconds S]
[--data-dir DIR] [--rate R] [--json]`. Cost against store size (issue 18: no O(n) work per
request): `--readings 10000 100000 1000000 --rate 200 --json` fills one store step by step
and measures at each size.

The gateway's API runs in its own process (uvicorn, one worker, as `edge-gateway run` serves
it), over a store holding N readings (filled once; reused with `--data-dir`). This process
is the load: httpx clients with a read token (no loopback exemption, so every request is
authenticated), each scenario for S seconds at concurrency 1 (latency) and 16 (throughput):

- ``first page``: ``/v1/readings?limit=100``;
- ``deep page``: ``/v1/readings?limit=100&cursor=<random position>`` (keyset paging);
- ``filtered``: ``kind=glucose&device=<one of 20>&limit=100`` from a random position;
- ``updated_since``: readings changed in the last minute (an incremental-sync poll);
- ``since, deep``: ``updated_since`` long ago (every reading matches) from a random cursor;
- ``kind only``, ``source``: one filter matching every reading, from a random position;
- ``week (Human API)``: ``start_date``/``end_date`` as calendar dates a week apart;
- ``count alone``: ``page[limit]=0`` (Fitbit Plus), the count of every reading.

Every page also counts its matches (``meta.count``, ``X-Total-Count``).

With ``--rate R`` it runs one open-loop test instead of the table: ``deep page`` requests
offered at R per second for S seconds whatever the answers (a latency counts from when the
request was due, so a server that falls behind shows it), and reports the achieved req/s
and p50/p99, and the server's CPU time per request (`server_cpu_ms`, from /proc: what a
request costs whatever else runs on the box). With --json the last line is one JSON object
(`achieved_rps`, `p99_ms`, `server_cpu_ms`, … of the largest store; every size's under
`by_readings`); without ``--rate`` it holds the table (`<scenario>_c<concurrency>_rps`,
`…_p99_ms`, `…_errors`).

Prints figures only (no assertions).
"""

import argparse
import asyncio
import json
import os
import random
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from drivers.readings import DeviceTime, GlucoseReading, GlucoseUnit, ReadingKind, stable_reading_id
from gateway.store import DATABASE_FILENAME, open_database, tokens
from gateway.store.readings import encode_cursor, save_transfer
from gateway.store.tokens import Scope

ZONE = ZoneInfo("Europe/Berlin")
DEVICES = [f"C0:FF:EE:00:01:{i:02X}" for i in range(20)]
CHUNK = 5_000
BASE = datetime(2024, 1, 1)  # noqa: DTZ001 - device wall time

SERVER = """
import sys
from pathlib import Path
import uvicorn
from gateway.app import create_app
from gateway.config import Settings
from gateway.services import standalone_services
settings = Settings(data_dir=Path(sys.argv[1]), timezone="Europe/Berlin",
                    api={"trust_loopback": False})
uvicorn.run(create_app(standalone_services(settings)), host="127.0.0.1", port=int(sys.argv[2]),
            log_level="warning", access_log=False)
"""


def fill(data_dir: Path, target: int) -> str:
    db = open_database(data_dir / DATABASE_FILENAME)
    try:
        with sqlite3.connect(db.path) as conn:  # what a reused store already holds
            have = int(conn.execute("SELECT count(*) FROM reading").fetchone()[0])
        start = time.perf_counter()
        seq = have
        now = datetime.now(UTC)
        while seq < target:
            count = min(CHUNK, target - seq)
            batch = []
            for n in range(seq, seq + count):
                device = DEVICES[n % len(DEVICES)]
                at = DeviceTime.from_datetime(BASE + timedelta(minutes=n))
                batch.append(
                    GlucoseReading(
                        id=stable_reading_id(
                            device, ReadingKind.GLUCOSE, sequence=n, device_time=at
                        ),
                        device=device,
                        provider="accuchek_ble",
                        received_at=now,
                        device_time=at,
                        sequence=n,
                        concentration=0.00090 + (n % 80) / 100_000,
                        unit=GlucoseUnit.KG_PER_L,
                    )
                )
            save_transfer(db, batch, zone=ZONE)
            seq += count
            if seq % 100_000 == 0:
                print(f"  stored {seq} readings ({time.perf_counter() - start:.0f} s)", flush=True)
        token, _ = tokens.create_token(db, Scope.READ, "bench")
        return token
    finally:
        db.close()


def week(first: datetime) -> dict[str, str | int]:
    """Human API date range: seven whole days from `first`'s date."""
    last = first + timedelta(days=6)
    return {
        "start_date": first.date().isoformat(),
        "end_date": last.date().isoformat(),
        "limit": 100,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_up(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(200):
            try:
                if (await client.get("/v1/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    msg = "API process did not come up"
    raise RuntimeError(msg)


async def run_load(
    base: str, token: str, make_params, *, concurrency: int, seconds: float
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as c:

        async def worker(rng: random.Random) -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                params = make_params(rng)
                start = time.perf_counter()
                response = await c.get("/v1/readings", params=params)
                latencies.append(time.perf_counter() - start)
                if response.status_code != 200 or "data" not in response.json():
                    errors += 1

        await asyncio.gather(*(worker(random.Random(i)) for i in range(concurrency)))
    return latencies, errors


async def run_rate(
    base: str, token: str, make_params, *, rate: float, seconds: float
) -> tuple[list[float], int, float]:
    """Open loop: one request every 1/rate s; latency from the due time (no omission)."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(1)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as c:

        async def one(due: float) -> None:
            nonlocal errors
            try:
                response = await c.get("/v1/readings", params=make_params(rng))
                if response.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - due)

        started = time.perf_counter()
        tasks = []
        for n in range(int(rate * seconds)):
            due = started + n / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    return latencies, errors, elapsed


def scenarios_for(n: int) -> dict[str, object]:
    """The request mixes, for a store of `n` readings (cursors at random positions)."""
    return {
        "first page": lambda _rng: {"limit": 100},
        "deep page": lambda rng: {"limit": 100, "cursor": encode_cursor(rng.randrange(n))},
        "filtered": lambda rng: {
            "kind": "glucose",
            "device": rng.choice(DEVICES),
            "limit": 100,
            "cursor": encode_cursor(rng.randrange(n)),
        },
        "updated_since": lambda _rng: {
            "updated_since": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
            "limit": 100,
        },
        # An incremental sync started long ago: every reading matches, pages follow cursors.
        "since, deep": lambda rng: {
            "updated_since": "2020-01-01",
            "limit": 100,
            "cursor": encode_cursor(rng.randrange(n)),
        },
        # Client conventions (README "API conventions"): every page also counts its matches.
        "kind only": lambda rng: {
            "kind": "glucose",
            "limit": 100,
            "cursor": encode_cursor(rng.randrange(n)),
        },
        "source": lambda rng: {
            "source": "accuchek_ble",
            "limit": 100,
            "cursor": encode_cursor(rng.randrange(n)),
        },
        "week (Human API)": lambda rng: week(BASE + timedelta(minutes=rng.randrange(n))),
        "count alone": lambda _rng: {"page[limit]": 0},
    }


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used, from /proc (Linux).

    Less sensitive to a busy machine than wall-clock rates: what one request costs the
    server, whoever else shares the cores.
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The API in its own process over `data_dir`, as `edge-gateway run` serves it."""
    port = free_port()
    root = Path(__file__).resolve().parents[1]
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(data_dir), str(port)],
        cwd=root,  # `-c` puts the working directory first on sys.path: this checkout's code
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    return server, f"http://127.0.0.1:{port}"


def measure(args: argparse.Namespace, n: int, token: str) -> dict[str, object]:
    """Run the table (or the open-loop test with --rate) against a store of `n` readings."""
    server, base = serve(args.data_dir)
    try:
        asyncio.run(wait_up(base))
        scenarios = scenarios_for(n)
        if args.rate is not None:
            cpu_before = cpu_seconds(server.pid)
            latencies, errors, elapsed = asyncio.run(
                run_rate(base, token, scenarios["deep page"], rate=args.rate, seconds=args.seconds)
            )
            cpu_ms = (cpu_seconds(server.pid) - cpu_before) * 1000 / max(1, len(latencies))
            q = statistics.quantiles(latencies, n=100)
            figures: dict[str, object] = {
                "readings": n,
                "offered_rps": args.rate,
                "achieved_rps": round(len(latencies) / elapsed, 1),
                "p50_ms": round(q[49] * 1000, 1),
                "p99_ms": round(q[98] * 1000, 1),
                "errors": errors,
                "server_cpu_ms": round(cpu_ms, 2),
                "load_1m": round(os.getloadavg()[0], 2),
            }
            print(
                f"{n} readings, deep page, {args.rate:.0f} req/s offered: "
                f"{figures['achieved_rps']} req/s, p50 {figures['p50_ms']} ms, "
                f"p99 {figures['p99_ms']} ms, {errors} errors; server CPU "
                f"{figures['server_cpu_ms']} ms a request (load {figures['load_1m']})",
                flush=True,
            )
            return figures
        print(
            f"\n{n} readings\n{'scenario':<16} {'conc':>4} {'req/s':>8} {'p50 ms':>8} "
            f"{'p99 ms':>8} {'errors':>6}"
        )
        figures = {"readings": n, "seconds": args.seconds}
        for name, make_params in scenarios.items():
            for concurrency in (1, 16):
                latencies, errors = asyncio.run(
                    run_load(
                        base, token, make_params, concurrency=concurrency, seconds=args.seconds
                    )
                )
                q = statistics.quantiles(latencies, n=100)
                rps = len(latencies) / args.seconds
                print(
                    f"{name:<16} {concurrency:>4} {rps:>8.0f} "
                    f"{q[49] * 1000:>8.1f} {q[98] * 1000:>8.1f} {errors:>6}",
                    flush=True,
                )
                key = f"{re.sub(r'[^a-z]+', '_', name).strip('_')}_c{concurrency}"
                figures[f"{key}_rps"] = round(rps, 1)
                figures[f"{key}_p99_ms"] = round(q[98] * 1000, 1)
                figures[f"{key}_errors"] = errors
        figures["load_1m"] = round(os.getloadavg()[0], 2)
        return figures
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--readings",
        type=int,
        nargs="+",
        default=[1_000_000],
        help="store size; several (e.g. 10000 100000 1000000) fill one store step by step "
        "and measure at each",
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse a filled store")
    parser.add_argument("--rate", type=float, default=None, help="open loop at R req/s")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args()

    tmp = None
    if args.data_dir is None:
        tmp = tempfile.TemporaryDirectory()
        args.data_dir = Path(tmp.name)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    by_size: dict[str, dict[str, object]] = {}
    try:
        for n in sorted(args.readings):
            print(f"filling {args.data_dir} to {n} readings …", flush=True)
            start = time.perf_counter()
            token = fill(args.data_dir, n)
            print(f"store ready in {time.perf_counter() - start:.0f} s", flush=True)
            by_size[str(n)] = measure(args, n, token)
    finally:
        if tmp is not None:
            tmp.cleanup()
    if args.json:
        # The largest store's figures at the top level; each size's under by_readings.
        last = by_size[str(max(args.readings))]
        print(json.dumps({**last, "by_readings": by_size}, sort_keys=True))


if __name__ == "__main__":
    main()
