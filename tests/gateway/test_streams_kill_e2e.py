"""kill -9 of `run` while cuffs and scales stream: what they confirmed is on disk, once.

Cuffs and scales push stored records by indication, BlueZ confirms each at once, and these
devices then forget it (`erase_after_send`, or an Omron-style "sent" mark). The only window in
which a reading can be lost is between that confirmation and the commit (`gateway.saver`
commits each one as it arrives); a kill there loses at most the indication in flight. The
Beurer-style family (`resend = "all"`) sends every record on every connection, so nothing can
be lost, and nothing may be doubled either.
"""

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
    simulator,
    start_gateway,
    wait_for,
    write_config,
)

CUFF, SCALE = "C0:FF:EE:00:00:02", "C0:FF:EE:00:00:03"
PACE_MS = 100
# At most this many indications can be between BlueZ's confirmation and the commit at a kill.
# The window is ~10 ms (bench/stream_window.py) against 100 ms pacing, but a starved box (load
# average 9 on 2 cores) was seen to hold up to 4 in flight; records further from a kill than
# this must never be missing.
IN_FLIGHT = 5


def _scenario(tmp: Path, *, cuff_records: int, scale_records: int, family: str) -> Path:
    if family == "erase":
        memory = 'erase_after_send = true\nresend = "unsent"'
    else:
        memory = 'erase_after_send = false\nresend = "all"'
    cuff_rows = ",\n".join(
        f'{{ time = "2026-11-{1 + i // 1440:02d}T{(i // 60) % 24:02d}:{i % 60:02d}:00", '
        f"systolic = {110 + i % 40}, diastolic = {70 + i % 20}, pulse = 60, user = 1 }}"
        for i in range(cuff_records)
    )
    scale_rows = ",\n".join(
        f'{{ time = "2026-11-{1 + i // 1440:02d}T{(i // 60) % 24:02d}:{i % 60:02d}:30", '
        f"weight_kg = {60 + (i % 300) / 10}, fat_percent = {15 + i % 20}, user = 1 }}"
        for i in range(scale_records)
    )
    faults = f"faults = {{ notify_interval_ms = {PACE_MS}, idle_disconnect_ms = 1500 }}"
    text = f"""
[[devices]]
kind = "blood_pressure"
address = "{CUFF}"
name = "BLEsmart_00000116"
manufacturer = "OMRON HEALTHCARE"
{memory}
{faults}
records = [
{cuff_rows}
]

[[devices]]
kind = "scale"
address = "{SCALE}"
name = "BC-scale"
manufacturer = "OMRON HEALTHCARE"
{memory}
{faults}
records = [
{scale_rows}
]
"""
    path = tmp / "scenario.toml"
    path.write_text(text)
    return path


def _rows(db: Path) -> list[tuple[str, str, str]]:
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            return conn.execute("select id, device, start_date from reading").fetchall()
        except sqlite3.OperationalError:
            return []


def _indexes(db: Path) -> dict[str, set[int]]:
    """Which records (by index, from the device time) each device has stored."""
    found: dict[str, set[int]] = {CUFF: set(), SCALE: set()}
    if not db.exists():
        return found
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            rows = conn.execute("select device, dt_day, dt_hour, dt_minute from reading")
            for device, day, hour, minute in rows:
                found[device].add((day - 1) * 1440 + hour * 60 + minute)
        except sqlite3.OperationalError:
            pass
    return found


def _samples(url: str) -> list[dict[str, object]]:
    with urllib.request.urlopen(f"{url}/_stub/samples", timeout=5) as response:  # noqa: S310
        return json.loads(response.read())  # type: ignore[no-any-return]


def _drained(log: Path, since: int) -> bool:
    """Both devices were read empty after the last start (everything they held is stored)."""
    text = log.read_text()[since:]
    return f"{CUFF}: 0 BP record(s)" in text and f"{SCALE}: 0 scale reading(s)" in text


@pytest.mark.slow
@pytest.mark.timeout(420)
@pytest.mark.parametrize(
    ("family", "kills", "cuff_records", "scale_records"),
    [
        ("erase", 15, 160, 120),
        # Resend-everything devices start over at every connection: a short memory is enough.
        ("all", 5, 60, 40),
    ],
)
def test_kill_9_while_cuffs_and_scales_stream(
    family: str,
    kills: int,
    cuff_records: int,
    scale_records: int,
    tmp_path: Path,
    bluetoothctl_dir: Path,
    artifacts_dir: Path,
):
    scenario = _scenario(
        tmp_path, cuff_records=cuff_records, scale_records=scale_records, family=family
    )
    rng = random.Random(20261130 + kills)  # reproducible kill times
    counts: list[int] = []
    at_kills: list[dict[str, set[int]]] = []
    log = tmp_path / "run.log"
    with simulator(scenario) as bus, junction_stub() as stub_url:
        config = write_config(tmp_path, stub_url=stub_url, bindings={CUFF: "bob", SCALE: "bob"})
        db = tmp_path / "data" / "gateway.sqlite3"
        env = gateway_env(bus, bluetoothctl_dir)
        for _ in range(kills):
            since = log.stat().st_size if log.exists() else 0
            gateway = start_gateway(config, env, log)
            wait_for(lambda since=since: "claimed by" in log.read_text()[since:], 30, "a claim")
            time.sleep(rng.uniform(0.2, 2.5))  # mid-stream, mid-commit, between records
            gateway.send_signal(signal.SIGKILL)
            gateway.wait(timeout=10)
            counts.append(len(_rows(db)))
            at_kills.append(_indexes(db))
        since = log.stat().st_size
        gateway = start_gateway(config, env, log)
        try:
            if family == "all":  # such devices never run empty: they resend everything
                total = cuff_records + scale_records
                wait_for(lambda: len(_rows(db)) >= total, 150, "every record stored")
            else:
                wait_for(lambda: _drained(log, since), 150, "both devices read empty")
            stored = _rows(db)
            # One BP sample per cuff reading; a weight and a fat sample per scale reading.
            expected = sum(1 if r[1] == CUFF else 2 for r in stored)
            wait_for(lambda: len(_samples(stub_url)) >= expected, 60, "every upload")
        except AssertionError as exc:
            message = f"{exc}; rows after each kill: {counts}\n{log.read_text()[-4000:]}"
            raise AssertionError(message) from exc
        finally:
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(timeout=30)
        samples = _samples(stub_url)
    rows = _rows(db)
    cuff_rows = [r for r in rows if r[1] == CUFF]
    scale_rows = [r for r in rows if r[1] == SCALE]
    lost = (cuff_records - len(cuff_rows)) + (scale_records - len(scale_rows))
    final = _indexes(db)
    totals = {CUFF: cuff_records, SCALE: scale_records}
    missing = {d: sorted(set(range(totals[d])) - final[d]) for d in totals}
    # What was in flight at each kill: the records right after the newest one stored when the
    # kill landed (records stream in order and each is gone from the device once sent).
    # BlueZ (the simulator) confirms an indication before the central has it; a loaded
    # machine can hold one or two of them in that window (see `bench/stream_window.py`).
    in_flight = {
        d: {
            first + j
            for stored in at_kills
            for first in [max(stored[d], default=-1) + 1]
            for j in range(IN_FLIGHT)
        }
        for d in totals
    }
    report = {
        "family": family,
        "missing": missing,
        "lost_per_kill": lost / kills,
        "kills": kills,
        "rows_after_each_kill": counts,
        "lost_cuff": cuff_records - len(cuff_rows),
        "lost_scale": scale_records - len(scale_rows),
        "pace_ms": PACE_MS,
    }
    (artifacts_dir / f"stream_kill_trials_{family}.json").write_text(json.dumps(report, indent=2))
    # Nothing doubled: one row per device time, and ids unique.
    assert len({r[0] for r in rows}) == len(rows)
    assert len({(r[1], r[2]) for r in rows}) == len(rows)
    if family == "erase":  # (a resend-everything device starts over at every connection)
        assert len(set(counts)) >= min(kills, 4), f"kills never caught streams: {counts}"
    assert counts[0] > 0, f"the first kill came before any reading: {counts}"
    if family == "all":
        assert lost == 0, report  # such devices resend everything: nothing can be lost
    for device in totals:
        # Only records in flight at a kill (confirmed by BlueZ, not yet committed: the
        # window `bench/stream_window.py` measures) may be lost; nothing else, ever.
        assert set(missing[device]) <= in_flight[device], report
    # Every stored reading is upstream exactly once: the stub keys samples as Junction does, so
    # a batch re-sent after a kill that landed between the POST and its 2xx upserts, not doubles.
    by_resource = {
        r: sum(1 for s in samples if s["resource"] == r)
        for r in ("blood_pressure", "weight", "fat")
    }
    assert by_resource == {
        "blood_pressure": len(cuff_rows),
        "weight": len(scale_rows),
        "fat": len(scale_rows),
    }
    with sqlite3.connect(db) as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"


@pytest.mark.slow
def test_a_restart_releases_the_link_a_killed_run_left_up(tmp_path: Path, bluetoothctl_dir: Path):
    """The cuff never hangs up an idle link: only releasing it lets anyone read it again."""
    scenario = _scenario(tmp_path, cuff_records=40, scale_records=0, family="erase")
    text = scenario.read_text().replace("idle_disconnect_ms = 1500", "idle_disconnect_ms = 0")
    text = text[: text.index('[[devices]]\nkind = "scale"')]
    scenario.write_text(text)
    log = tmp_path / "run.log"
    with simulator(scenario) as bus, junction_stub() as stub_url:
        config = write_config(tmp_path, stub_url=stub_url, bindings={CUFF: "bob"})
        db = tmp_path / "data" / "gateway.sqlite3"
        env = gateway_env(bus, bluetoothctl_dir)
        gateway = start_gateway(config, env, log)
        wait_for(lambda: len(_rows(db)) >= 5, 30, "the first readings")
        gateway.send_signal(signal.SIGKILL)
        gateway.wait(timeout=10)
        stored_at_kill = len(_rows(db))
        since = log.stat().st_size
        gateway = start_gateway(config, env, log)
        try:
            wait_for(
                lambda: (
                    "released the link an earlier run left connected" in log.read_text()[since:]
                ),
                20,
                "the stale link released",
            )
            wait_for(lambda: len(_rows(db)) >= 39, 30, "the rest of the cuff's records")
        finally:
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(timeout=30)
    assert stored_at_kill < 39
    assert len(_rows(db)) >= 39  # at most the record in flight at the kill is missing
