"""Captures: a transfer recorded from the simulator, exported, served by `simulate --replay`
and read by `run` gives the same readings (ids included)."""

import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from drivers.capture import PSEUDONYM_ADDRESS, loads
from drivers.readings import ReadingKind, stable_reading_id
from drivers.recording import Direction
from tests.gateway.e2e import (
    EDGE_GATEWAY,
    gateway_env,
    junction_stub,
    process_with_first_line,
    simulator,
    start_gateway,
    wait_for,
    write_config,
)

METER = "C0:FF:EE:00:00:01"
CUFF = "C0:FF:EE:00:00:02"
SCENARIO = f"""
[[devices]]
kind = "glucose"
address = "{METER}"
name = "meter+00012345"
manufacturer = "Roche"
serial = "92541837"
records = [
  {{ seq = 1, time = "2026-11-20T07:30:00", mg_dl = 104 }},
  {{ seq = 2, time = "2026-11-20T08:00:00", ketone_mmol_l = 1.5 }},
  {{ seq = 3, time = "2026-11-20T12:05:00", mmol_l = 6.1 }},
]

[[devices]]
kind = "blood_pressure"
address = "{CUFF}"
name = "BLEsmart_00000116"
manufacturer = "OMRON HEALTHCARE"
records = [
  {{ time = "2026-11-20T07:40:00", systolic = 128, diastolic = 82, pulse = 68, user = 1 }},
  {{ time = "2026-11-20T20:15:00", systolic = 16.1, diastolic = 10.5, unit = "kPa", user = 2 }},
]
"""
COLUMNS = (
    "id, device, kind, values_json, flags_json, dt_year, dt_month, dt_day, dt_hour, dt_minute,"
    " dt_second, sequence, user_index, start_date"
)


def _rows(db: Path, device: str) -> list[tuple]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'frame'").fetchone():
            return []  # not migrated yet
        return conn.execute(
            f"SELECT {COLUMNS} FROM reading WHERE device = ? ORDER BY start_date, id",  # noqa: S608
            (device,),
        ).fetchall()


def _export(config: Path, address: str, *extra: str) -> str:
    done = subprocess.run(
        [EDGE_GATEWAY, "capture", "export", address, "--config", str(config), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _read_with_run(
    tmp: Path, name: str, bus: str, stub_url: str, bin_dir: Path, counts: dict[str, int]
) -> Path:
    folder = tmp / name
    folder.mkdir()
    config = write_config(folder, stub_url=stub_url, bindings=dict.fromkeys(counts, "alice"))
    db = folder / "data" / "gateway.sqlite3"
    log = folder / "run.log"
    gateway = start_gateway(config, gateway_env(bus, bin_dir), log)
    try:
        for device, count in counts.items():
            wait_for(lambda d=device, c=count: len(_rows(db, d)) >= c, 60, f"{count} of {device}")
    finally:
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(timeout=30) == 0, log.read_text()[-3000:]
    return config


def _replay(capture: Path) -> "process_with_first_line":
    return process_with_first_line(
        [EDGE_GATEWAY, "simulate", "--replay", str(capture), "--advertise-interval-ms", "20"]
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_recorded_transfer_replays_into_the_same_readings(tmp_path: Path, bluetoothctl_dir: Path):
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SCENARIO)
    with junction_stub() as stub_url:
        with simulator(scenario) as bus:
            original = _read_with_run(
                tmp_path, "original", bus, stub_url, bluetoothctl_dir, {METER: 3, CUFF: 2}
            )
        db = original.parent / "data" / "gateway.sqlite3"

        # Kept identifiers: the replayed meter is the same meter, so ids match exactly.
        kept = tmp_path / "meter-kept.toml"
        kept.write_text(_export(original, METER, "--keep-identifiers"))
        with _replay(kept) as line:
            assert line.startswith("DBUS_SYSTEM_BUS_ADDRESS=")
            replayed = _read_with_run(
                tmp_path, "replayed", line.split("=", 1)[1], stub_url, bluetoothctl_dir, {METER: 3}
            )
        again = replayed.parent / "data" / "gateway.sqlite3"
        assert _rows(again, METER) == _rows(db, METER)
        assert len(_rows(db, METER)) == 3
        assert {r[2] for r in _rows(db, METER)} == {"glucose", "ketone"}

        cuff_capture = tmp_path / "cuff-kept.toml"
        cuff_capture.write_text(_export(original, CUFF, "--keep-identifiers"))
        with _replay(cuff_capture) as line:
            cuff_again = _read_with_run(
                tmp_path,
                "cuff-replayed",
                line.split("=", 1)[1],
                stub_url,
                bluetoothctl_dir,
                {CUFF: 2},
            )
        assert _rows(cuff_again.parent / "data" / "gateway.sqlite3", CUFF) == _rows(db, CUFF)

        # The default export replaces identifiers and keeps values.
        text = _export(original, METER)
        assert METER not in text
        assert "92541837" not in text
        assert "00012345" not in text
        anonymous = loads(text)
        assert anonymous.address == PSEUDONYM_ADDRESS
        assert anonymous.name == "meter+00000000"
        measurements = [
            f for t in anonymous.transfers for f in t.frames if f.direction is Direction.NOTIFY
        ]
        assert measurements  # the bytes a parser reads are all there
        plain = tmp_path / "meter.toml"
        plain.write_text(text)
        with _replay(plain) as line:
            pseudo = _read_with_run(
                tmp_path,
                "anonymous",
                line.split("=", 1)[1],
                stub_url,
                bluetoothctl_dir,
                {PSEUDONYM_ADDRESS: 3},
            )
        rows = _rows(pseudo.parent / "data" / "gateway.sqlite3", PSEUDONYM_ADDRESS)
    # Same readings under the pseudonym: values, flags, times equal; ids are the stable ids
    # the pseudonymous address gives.
    assert [r[2:] for r in rows] == [r[2:] for r in _rows(db, METER)]
    for row in rows:
        from drivers.readings import DeviceTime

        time = DeviceTime(*row[5:11])
        kind = ReadingKind(row[2])
        assert row[0] == stable_reading_id(
            PSEUDONYM_ADDRESS, kind, sequence=row[11], device_time=time
        )


def test_replay_of_a_file_that_is_no_capture_exits_2_with_one_line(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text('format = "something else"\n')
    done = subprocess.run(
        [EDGE_GATEWAY, "simulate", "--replay", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert str(bad) in done.stderr


def test_export_of_a_device_never_recorded_exits_1(tmp_path: Path):
    config = write_config(tmp_path, stub_url="http://127.0.0.1:9", bindings={})
    from gateway.store import open_database

    (tmp_path / "data").mkdir()
    open_database(tmp_path / "data" / "gateway.sqlite3").close()
    done = subprocess.run(
        [EDGE_GATEWAY, "capture", "export", METER, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "no recorded transfers" in done.stderr
