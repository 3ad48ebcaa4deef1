"""`edge-gateway run` as a process against `edge-gateway simulate` and the Junction stub."""

import json
import random
import signal
import sqlite3
import time
import urllib.request
from pathlib import Path

import pytest

from tests.gateway.e2e import (
    gateway_env,
    junction_stub,
    reading_rows,
    simulator,
    start_gateway,
    wait_for,
    write_config,
)

METER, CUFF, SCALE = "C0:FF:EE:00:00:01", "C0:FF:EE:00:00:02", "C0:FF:EE:00:00:03"


def _scenario(
    tmp: Path,
    meter_records: int,
    pacing_ms: float = 0,
    drop_every: int = 0,
    *,
    cuff_and_scale: bool = True,
) -> Path:
    rows = ",\n".join(
        f'{{ seq = {i}, time = "2026-11-{18 + i // 1440:02d}T'
        f'{(i // 60) % 24:02d}:{i % 60:02d}:00", mg_dl = {80 + i % 150} }}'
        for i in range(1, meter_records + 1)
    )
    drop = f", drop_link_every = {drop_every}" if drop_every else ""
    # A meter hangs up an idle link; that is what frees it after a central was killed.
    drop += ", idle_disconnect_ms = 1500"
    meter = f"""
[[devices]]
kind = "glucose"
address = "{METER}"
name = "meter+00012345"
manufacturer = "Roche"
faults = {{ notify_interval_ms = {pacing_ms}{drop} }}
records = [
{rows}
]
"""
    others = f"""
[[devices]]
kind = "blood_pressure"
address = "{CUFF}"
name = "BLEsmart_00000116"
manufacturer = "OMRON HEALTHCARE"
records = [
  {{ time = "2026-11-20T07:40:00", systolic = 128, diastolic = 82, pulse = 68, user = 1 }},
  {{ time = "2026-11-20T20:15:00", systolic = 16.1, diastolic = 10.5, unit = "kPa", user = 1 }},
]

[[devices]]
kind = "scale"
address = "{SCALE}"
name = "BF720"
manufacturer = "Beurer"
records = [
  {{ time = "2026-11-20T07:05:00", weight_kg = 82.4, fat_percent = 24.1, user = 1 }},
]
"""
    path = tmp / "scenario.toml"
    path.write_text(meter + (others if cuff_and_scale else ""))
    return path


def _stub_samples(url: str) -> list[dict[str, object]]:
    with urllib.request.urlopen(f"{url}/_stub/samples", timeout=5) as response:  # noqa: S310
        return json.loads(response.read())  # type: ignore[no-any-return]


@pytest.mark.slow
def test_every_reading_lands_attributed_and_uploaded_once(tmp_path: Path, bluetoothctl_dir: Path):
    scenario = _scenario(tmp_path, 25)
    bindings = {METER: "alice", CUFF: "bob", SCALE: "bob"}
    with simulator(scenario) as bus, junction_stub() as stub_url:
        config = write_config(tmp_path, stub_url=stub_url, bindings=bindings)
        db = tmp_path / "data" / "gateway.sqlite3"
        gateway = start_gateway(config, gateway_env(bus, bluetoothctl_dir), tmp_path / "run.log")
        try:
            wait_for(lambda: len(reading_rows(db)) >= 28, 30, "28 readings in SQLite")
            # 25 glucose + 2 BP + 1 weight sample with its body-fat sample.
            wait_for(lambda: len(_stub_samples(stub_url)) >= 29, 30, "29 samples at the stub")
        finally:
            gateway.send_signal(signal.SIGTERM)
            assert gateway.wait(timeout=30) == 0, (tmp_path / "run.log").read_text()[-3000:]
        rows = reading_rows(db)
        samples = _stub_samples(stub_url)
    assert len(rows) == 28
    assert {(device, user) for _, user, device in rows} == {
        (METER, "alice"),
        (CUFF, "bob"),
        (SCALE, "bob"),
    }
    keys = {(s["user_id"], s["resource"], s["timestamp"], s.get("unit")) for s in samples}
    assert len(keys) == len(samples) == 29
    assert all(s["writes"] == 1 for s in samples)  # nothing was sent twice
    with sqlite3.connect(db) as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_kill_9_during_transfers_loses_and_doubles_nothing(tmp_path: Path, bluetoothctl_dir: Path):
    """SIGKILL the gateway 20 times at random moments (start-up, mid-transfer, commit, upload).

    The meter drops the link every 50 records, so each connection commits a partial transfer
    and kills land before, inside and after transfers, commits and uploads. Meter only: cuffs
    and scales erase a reading once BlueZ acknowledged its indication, so a kill between that
    acknowledgement and the commit loses it whatever the gateway does (see README).
    """
    # A kill lets about one 50-record connection commit (two at most: the reconnection takes
    # longer than the kill window), so 20 kills leave part of 1,500 records for the last run.
    records = 1500
    scenario = _scenario(tmp_path, records, pacing_ms=2, drop_every=50, cuff_and_scale=False)
    rng = random.Random(20261123)  # reproducible kill times
    counts: list[int] = []
    with simulator(scenario) as bus, junction_stub() as stub_url:
        config = write_config(tmp_path, stub_url=stub_url, bindings={METER: "alice"})
        db = tmp_path / "data" / "gateway.sqlite3"
        env = gateway_env(bus, bluetoothctl_dir)
        log = tmp_path / "run.log"
        for _ in range(20):
            since = log.stat().st_size if log.exists() else 0
            gateway = start_gateway(config, env, log)
            # Timed from the claim, not the process start: start-up takes longer on a loaded
            # machine, and a kill before any transfer tests nothing.
            wait_for(lambda since=since: "claimed by" in log.read_text()[since:], 30, "a claim")
            time.sleep(rng.uniform(0.0, 1.6))
            gateway.send_signal(signal.SIGKILL)
            gateway.wait(timeout=10)
            counts.append(len(reading_rows(db)))
        gateway = start_gateway(config, env, tmp_path / "run.log")
        try:
            wait_for(lambda: len(reading_rows(db)) >= records, 120, "every record stored")
            wait_for(lambda: len(_stub_samples(stub_url)) >= records, 60, "every upload")
        except AssertionError as exc:
            tail = (tmp_path / "run.log").read_text()[-4000:]
            message = f"{exc}; counts after each kill: {counts}\n{tail}"
            raise AssertionError(message) from exc
        finally:
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(timeout=30)
        samples = _stub_samples(stub_url)
    rows = reading_rows(db)
    assert len(set(counts)) >= 5, f"too few kills between transfers: {counts}"
    assert counts[-1] < records, f"the kills never caught a transfer: {counts}"
    assert len(rows) == len({r[0] for r in rows}) == records
    glucose = [s for s in samples if s["resource"] == "glucose"]
    assert len(glucose) == records  # upserted by key at the stub: resends absorbed
    with sqlite3.connect(db) as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        sequences = [
            row[0]
            for row in conn.execute(
                "select sequence from reading where device = ? order by sequence", (METER,)
            )
        ]
    assert sequences == list(range(1, records + 1))


@pytest.mark.slow
def test_sigterm_mid_transfer_finishes_and_commits_it_first(tmp_path: Path, bluetoothctl_dir: Path):
    records = 400
    scenario = _scenario(tmp_path, records, pacing_ms=4)  # about 2 s of notifications
    with simulator(scenario) as bus, junction_stub() as stub_url:
        config = write_config(tmp_path, stub_url=stub_url, bindings={METER: "alice"})
        db = tmp_path / "data" / "gateway.sqlite3"
        log = tmp_path / "run.log"
        gateway = start_gateway(config, gateway_env(bus, bluetoothctl_dir), log)
        wait_for(lambda: "claimed by sig_glucose" in log.read_text(), 20, "the meter claimed")
        time.sleep(0.5)  # the RACP transfer is under way now
        assert len([r for r in reading_rows(db) if r[2] == METER]) == 0
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(timeout=40) == 0, log.read_text()[-3000:]
    meter_rows = [r for r in reading_rows(db) if r[2] == METER]
    assert len(meter_rows) == records
    assert "finishing transfers in progress" in log.read_text()
