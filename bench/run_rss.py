"""Memory of `edge-gateway run`: resident set size idle on the demo scenario and with a big store.

Run: `.venv/bin/python bench/run_rss.py [--settle 10] [--stored 100000] [--queued] [--json]`.

Two runs of the real `edge-gateway run` process, each against a fresh `edge-gateway simulate`
(the built-in demo scenario: a meter, a cuff and a scale) and `edge-gateway junction-stub`:

(a) an empty data dir: the gateway reads the three devices, uploads to the stub, then idles;
(b) the same, but the database already holds `--stored` readings (saved through
    `gateway.store.readings.save_transfer` in transfers of 1,000 and delivered through the
    outbox, as a long-running gateway's history would be).

In both, RSS (VmRSS from /proc/<pid>/status) is sampled every 0.5 s for `--settle` seconds
after the first new reading is stored; VmHWM is the kernel's peak. Prints figures only.

With ``--queued`` the pre-filled readings of (b) stay queued (a backlog after a day offline),
so run (b) drains them to the stub while it is sampled. With --json the last line is one
JSON object: `idle_mib` (median RSS of (a)), `growth_mib` ((b) median - (a) median), the
peaks, and `queued` (whether (b) held a backlog).

Where (a)'s memory goes: a fresh interpreter imports what `run` imports, one library at a
time in `IMPORT_STAGES` order, and VmRSS is read after each (a library's share is what it
added on top of the ones before it, shared libraries' touched pages included). `imports_mib`
holds each stage's MiB, `imported_mib` the total after the last one, and `running_mib` is
(a)'s idle median minus that total: what running adds (modules imported on first use, the
TLS context, the store's connections and caches, the live objects).
"""

import argparse
import asyncio
import json
import os
import shlex
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from drivers.readings import DeviceTime, GlucoseReading, GlucoseUnit, ReadingKind, stable_reading_id
from gateway.store import DATABASE_FILENAME, open_database, users
from gateway.store.outbox import SqliteOutbox
from gateway.store.readings import save_transfer

EDGE_GATEWAY = str(Path(sys.executable).with_name("edge-gateway"))
DEMO_DEVICES = ("C0:FF:EE:00:00:01", "C0:FF:EE:00:00:02", "C0:FF:EE:00:00:03")
# Meters no longer in range whose history fills the store in run (b).
HISTORY_DEVICES = (
    "C0:FF:EE:10:00:01",
    "C0:FF:EE:10:00:02",
    "C0:FF:EE:10:00:03",
    "C0:FF:EE:10:00:04",
)
USER = "bench-user"
API_KEY = "sk_bench"
TRANSFER = 1_000
SAMPLE_EVERY_S = 0.5
START_TIMEOUT_S = 60.0
ZONE = ZoneInfo("UTC")  # the demo scenario's zone
BASE = datetime(2020, 1, 1)  # noqa: DTZ001 - a device's wall clock


# (JSON key, what it is, modules imported at that stage), in the order `run` first needs them;
# the last stage imports `run` itself, so it holds whatever the gateway adds on top.
IMPORT_STAGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("asyncio_ssl", "asyncio with ssl (OpenSSL)", ("asyncio", "ssl")),
    ("pydantic", "pydantic with pydantic-core", ("pydantic", "pydantic.main")),
    # gateway.cli first, as in `run`: it keeps httpx's own CLI (rich, pygments) out.
    ("cli", "typer, gateway.cli (the command line)", ("typer", "gateway.cli")),
    ("pydantic_settings", "pydantic-settings", ("pydantic_settings",)),
    (
        "sqlalchemy_core",
        "SQLAlchemy core, sqlite dialect",
        ("sqlalchemy", "sqlalchemy.dialects.sqlite"),
    ),
    ("sqlalchemy_orm", "SQLAlchemy ORM with SQLModel", ("sqlalchemy.orm", "sqlmodel")),
    (
        "gateway_store",
        "gateway.store: its tables and queries",
        ("gateway.store", "gateway.store.outbox"),
    ),
    ("uvicorn", "uvicorn", ("uvicorn",)),
    (
        "fastapi",
        "Starlette, FastAPI, sse-starlette",
        ("gateway.api", "fastapi", "fastapi.staticfiles", "sse_starlette"),
    ),
    ("httpx", "httpx", ("httpx",)),
    ("prometheus", "prometheus-client", ("prometheus_client",)),
    (
        "ble",
        "dbus-fast, Bleak, bleak-retry-connector",
        ("dbus_fast", "bleak", "bleak_retry_connector"),
    ),
    ("apscheduler", "APScheduler", ("apscheduler.schedulers.asyncio",)),
    (
        "gateway_rest",
        "the gateway's other modules (gateway, drivers, sync)",
        ("gateway.commands.run",),
    ),
)

# Run in a fresh interpreter: prints one JSON list, VmRSS in MiB before and after each stage.
_IMPORTS_SCRIPT = """
import gc, importlib, json, sys

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

figures = [rss()]
for modules in json.loads(sys.argv[1]):
    for name in modules:
        importlib.import_module(name)
    gc.collect()
    figures.append(rss())
print(json.dumps(figures))
"""


@dataclass
class Result:
    label: str
    stored: int
    delivered: int
    first_reading_s: float
    rss_first: float
    rss_median: float
    rss_max: float
    hwm: float


# ---------------------------------------------------------------- processes


@contextmanager
def first_line(argv: list[str], env: dict[str, str] | None = None) -> Iterator[str]:
    """Run a process whose first stdout line matters; SIGTERM it on exit."""
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if not line:
                msg = f"{shlex.join(argv)} printed nothing"
                raise SystemExit(msg)
            yield line
        finally:
            stop(proc)


def stop(proc: "subprocess.Popen[str] | subprocess.Popen[bytes]") -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=45)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def fake_bluetoothctl(directory: Path) -> Path:
    """A PATH entry answering `bluetoothctl --version` like BlueZ 5.72 (Bleak asks once)."""
    directory.mkdir(parents=True, exist_ok=True)
    fake = directory / "bluetoothctl"
    fake.write_text("#!/bin/sh\necho 'bluetoothctl: 5.72'\n")
    fake.chmod(0o755)
    return directory


def write_config(tmp: Path, stub_url: str) -> Path:
    lines = [
        f'data_dir = "{tmp / "data"}"',
        'timezone = "UTC"',
        "[junction]",
        f'base_url = "{stub_url}"',
        f'api_key = "{API_KEY}"',
        "[api]",
        "port = 0",
    ]
    for device in DEMO_DEVICES + HISTORY_DEVICES:
        lines += ["[[bindings]]", f'device = "{device}"', f'user_id = "{USER}"']
    path = tmp / "gateway.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------- measuring


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process, in MiB."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            figures[key] = int(value.split()[0]) / 1024
    return figures


def counts(db: Path) -> tuple[int, int]:
    """(readings stored, readings delivered), through a read-only connection."""
    if not db.exists():
        return 0, 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            stored = conn.execute("SELECT count(*) FROM reading").fetchone()[0]
            delivered = conn.execute(
                "SELECT count(*) FROM reading WHERE state = 'delivered'"
            ).fetchone()[0]
            return int(stored), int(delivered)
    except sqlite3.OperationalError:  # schema not there yet
        return 0, 0


def measure(label: str, tmp: Path, path: str, settle_s: float) -> Result:
    """One run: a fresh simulator (devices full again) and stub, then the gateway on `tmp`."""
    with ExitStack() as stack:
        bus = stack.enter_context(first_line([EDGE_GATEWAY, "simulate"]))
        stub_url = stack.enter_context(
            # The strict stub answers 404 for a user it was not told about.
            first_line(
                [EDGE_GATEWAY, "junction-stub", "--port", "0", "--api-key", API_KEY, "--user", USER]
            )
        )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
            "DBUS_SYSTEM_BUS_ADDRESS": bus.split("=", 1)[1],
            "PATH": path,
        }
        return measure_gateway(label, tmp, env, stub_url, settle_s)


def measure_gateway(
    label: str, tmp: Path, env: dict[str, str], stub_url: str, settle_s: float
) -> Result:
    """Start `edge-gateway run`, wait for its first new reading, sample its RSS."""
    config = write_config(tmp, stub_url)
    db = tmp / "data" / DATABASE_FILENAME
    baseline, _ = counts(db)
    log = tmp / "gateway.log"
    with (
        log.open("ab") as out,
        subprocess.Popen(
            [EDGE_GATEWAY, "run", "--config", str(config)], stdout=out, stderr=out, env=env
        ) as proc,
    ):
        try:
            started = time.monotonic()
            while counts(db)[0] <= baseline:
                if proc.poll() is not None:
                    msg = f"{label}: the gateway exited; see {log}:\n{log.read_text()}"
                    raise SystemExit(msg)
                if time.monotonic() - started > START_TIMEOUT_S:
                    msg = f"{label}: no reading stored within {START_TIMEOUT_S} s"
                    raise SystemExit(msg)
                time.sleep(0.05)
            first_s = time.monotonic() - started
            rss_first = proc_status(proc.pid)["VmRSS"]
            samples = []
            deadline = time.monotonic() + settle_s
            while time.monotonic() < deadline:
                time.sleep(SAMPLE_EVERY_S)
                samples.append(proc_status(proc.pid)["VmRSS"])
            hwm = proc_status(proc.pid)["VmHWM"]
        finally:
            stop(proc)
    stored, delivered = counts(db)
    return Result(
        label=label,
        stored=stored,
        delivered=delivered,
        first_reading_s=first_s,
        rss_first=rss_first,
        rss_median=statistics.median(samples),
        rss_max=max(samples),
        hwm=hwm,
    )


def import_stages() -> list[tuple[str, str, float]]:
    """(key, label, MiB added) per `IMPORT_STAGES` entry, the interpreter itself first."""
    stages = json.dumps([modules for _, _, modules in IMPORT_STAGES])
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTS_SCRIPT, stages],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    figures = json.loads(done.stdout.splitlines()[-1])
    rows = [("python", "Python itself", figures[0])]
    for (key, label, _), before, after in zip(
        IMPORT_STAGES, figures[:-1], figures[1:], strict=True
    ):
        rows.append((key, label, after - before))
    return rows


# ---------------------------------------------------------------- the stored history


def history(device: str, start: int, count: int, received_at: datetime) -> list[GlucoseReading]:
    """A meter's records `start`…`start + count - 1`, one every 20 minutes of device time."""
    result = []
    for seq in range(start, start + count):
        time_ = DeviceTime.from_datetime(BASE + timedelta(minutes=20 * seq))
        result.append(
            GlucoseReading(
                id=stable_reading_id(device, ReadingKind.GLUCOSE, sequence=seq, device_time=time_),
                device=device,
                provider="accuchek_ble",
                received_at=received_at,
                device_time=time_,
                sequence=seq,
                concentration=0.001 + (seq % 200) * 1e-5,
                unit=GlucoseUnit.KG_PER_L,
            )
        )
    return result


def prefill(data_dir: Path, total: int, *, deliver: bool = True) -> tuple[float, float]:
    """Store `total` readings of the history meters and deliver them; returns both durations.

    With `deliver` False they stay queued (the delivery duration is then 0).
    """
    db = open_database(data_dir / DATABASE_FILENAME)
    try:
        for device in HISTORY_DEVICES:
            users.bind(db, device, USER)
        per_device = -(-total // len(HISTORY_DEVICES))
        started = time.monotonic()
        saved = 0
        now = datetime.now(UTC)
        for device in HISTORY_DEVICES:
            for start in range(1, per_device + 1, TRANSFER):
                count = min(TRANSFER, per_device - start + 1, total - saved)
                if count <= 0:
                    break
                save_transfer(db, history(device, start, count, now), zone=ZONE)
                saved += count
        saving = time.monotonic() - started
        started = time.monotonic()
        if deliver:
            asyncio.run(deliver_all(SqliteOutbox(db, zone=ZONE)))
        return saving, time.monotonic() - started
    finally:
        db.close()


async def deliver_all(outbox: SqliteOutbox) -> None:
    """Claim and complete everything queued, as uploads answered 2xx would."""
    while True:
        now = datetime.now(UTC)
        streams = await outbox.streams(now)
        if not streams:
            return
        for stream in streams:
            batch = await outbox.claim(
                stream.user_id,
                stream.resource,
                limit=TRANSFER,
                now=now,
                lease_until=now + timedelta(minutes=5),
            )
            if batch is not None:
                await outbox.complete(batch.claim_id, [i.id for i in batch.items], now)


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds sampled per run")
    parser.add_argument("--stored", type=int, default=100_000, help="readings stored for (b)")
    parser.add_argument("--queued", action="store_true", help="(b)'s readings stay queued")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args()

    results: list[Result] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="edge-rss-") as name:
        tmp = Path(name)
        path = f"{fake_bluetoothctl(tmp / 'bin')}{os.pathsep}{os.environ['PATH']}"

        idle = tmp / "a"
        (idle / "data").mkdir(parents=True)
        results.append(measure("(a) demo scenario, empty store", idle, path, args.settle))

        big = tmp / "b"
        (big / "data").mkdir(parents=True)
        saving, delivering = prefill(big / "data", args.stored, deliver=not args.queued)
        notes.append(
            f"(b) pre-fill: {args.stored:,} readings saved in {saving:.1f} s "
            f"(transfers of {TRANSFER:,}), "
            + (
                "left queued"
                if args.queued
                else f"delivered through the outbox in {delivering:.1f} s"
            )
        )
        label = f"(b) + {args.stored:,} {'queued' if args.queued else 'stored'}"
        results.append(measure(label, big, path, args.settle))

    print(f"$ {shlex.join([os.path.relpath(sys.executable), *sys.argv])}")
    print(
        f"edge-gateway run RSS in MiB; sampled every {SAMPLE_EVERY_S} s for {args.settle:g} s "
        "after the first new reading was stored"
    )
    header = (
        f"{'run':<34} {'stored':>8} {'delivered':>9} {'1st rdg s':>9} "
        f"{'RSS 1st':>8} {'median':>8} {'max':>8} {'VmHWM':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.label:<34} {r.stored:>8,} {r.delivered:>9,} {r.first_reading_s:>9.1f} "
            f"{r.rss_first:>8.1f} {r.rss_median:>8.1f} {r.rss_max:>8.1f} {r.hwm:>8.1f}"
        )
    for note in notes:
        print(note)

    stages = import_stages()
    imported = sum(mib for _, _, mib in stages)
    print()
    print("where (a)'s idle RSS goes: VmRSS added by each import, in turn, in a fresh interpreter")
    for _, label, mib in stages:
        print(f"  {label:<54} {mib:>6.1f} MiB")
    print(f"  {'imported, total':<54} {imported:>6.1f} MiB")
    print(
        f"  {'running adds ((a) idle median - imported)':<54} "
        f"{results[0].rss_median - imported:>6.1f} MiB"
    )
    if args.json:
        idle_r, big_r = results
        figures = {
            "idle_mib": round(idle_r.rss_median, 1),
            "growth_mib": round(big_r.rss_median - idle_r.rss_median, 1),
            "idle_hwm_mib": round(idle_r.hwm, 1),
            "backlog_hwm_mib": round(big_r.hwm, 1),
            "stored": args.stored,
            "queued": args.queued,
            "load_1m": round(os.getloadavg()[0], 2),
            "imports_mib": {key: round(mib, 1) for key, _, mib in stages},
            "imported_mib": round(imported, 1),
            "running_mib": round(idle_r.rss_median - imported, 1),
        }
        print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
