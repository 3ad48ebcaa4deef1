"""`edge-gateway status` as a process over a real store file, with and without a gateway up."""

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drivers.readings import ReadingKind
from gateway.config import load_settings
from gateway.store import (
    DATABASE_FILENAME,
    device_failures,
    devices,
    open_database,
    readings,
    users,
)
from gateway.store.devices import BondState
from gateway.store.migrations import APPLICATION_ID
from gateway.store.outbox import SqliteOutbox
from gateway.store.readings import CursorUpdate
from sync.outbox import SyncStatus, UploadProgress, UserHold
from tests.gateway.e2e import (
    gateway_env,
    junction_stub,
    reading_rows,
    simulator,
    start_gateway,
    wait_for,
)
from tests.gateway.e2e import write_config as write_e2e_config
from tests.gateway.running import free_port, running_gateway
from tests.privacy import measured_values_in
from tests.sync.factories import blood_pressure, body, glucose

METER, CUFF, SCALE = "C0:FF:EE:00:00:01", "C0:FF:EE:00:00:02", "C0:FF:EE:00:00:03"
FAILING = "C0:FF:EE:00:00:0F"
NOT_PAIRED = "subscribe 2a35 needs a bonded device (Not paired); put the cuff in pairing mode"
# Odd measured values, so that finding one in the output cannot be a coincidence.
GLUCOSE_KG_L = 0.001234  # 123.4 mg/dL
SYSTOLIC, DIASTOLIC, PULSE = 141.5, 93.5, 67.5
WEIGHT_KG, FAT_PERCENT = 81.35, 23.45
MEASURED = ("0.001234", "123.4", "6.85", "141.5", "93.5", "67.5", "81.35", "23.45")


def write_config(tmp_path: Path, port: int) -> Path:
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\ntimezone = "Europe/Berlin"\n'
        f'[ble]\nadapter = "hci1"\n[api]\nport = {port}\n'
    )
    return config


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return subprocess.run(
        [sys.executable, "-c", "from gateway.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )


def fill(data_dir: Path) -> None:
    """Three devices, readings in every state, a dead letter, a hold and some progress."""
    db = open_database(data_dir / DATABASE_FILENAME)
    zone = load_settings(None, data_dir=data_dir).zone
    try:
        users.bind(db, METER, "alice")
        users.bind(db, CUFF, "bob")
        devices.upsert_device(
            db, METER, name="meter+0001", kind="glucose", brand="Roche", provider="accuchek_ble"
        )
        devices.upsert_device(
            db, CUFF, name="BP7000", kind="blood_pressure", brand="Omron", provider="omron_ble"
        )
        devices.upsert_device(
            db, SCALE, name="BC-105", kind="body", battery_percent=87, provider="beurer_ble"
        )
        devices.set_bond_state(db, METER, BondState.BONDED)
        # Seen, never read: only its failure is on record.
        device_failures.record_failure(
            db, FAILING, NOT_PAIRED, name="BLEsmart_0000021F", kind="blood_pressure", brand="Omron"
        )
        device_failures.record_failure(db, FAILING, NOT_PAIRED)
        readings.save_transfer(
            db,
            [glucose(seq, device=METER, concentration=GLUCOSE_KG_L) for seq in (1, 2, 3)],
            zone=zone,
            advance=CursorUpdate(device=METER, last_sequence=3),
        )
        readings.save_transfer(
            db,
            [
                blood_pressure(
                    seq, device=CUFF, systolic=SYSTOLIC, diastolic=DIASTOLIC, pulse=PULSE
                )
                for seq in (4, 5)
            ],
            zone=zone,
        )
        readings.save_transfer(
            db, [body(6, device=SCALE, weight=WEIGHT_KG, fat_percent=FAT_PERCENT)], zone=zone
        )
        asyncio.run(_settle(SqliteOutbox(db, zone=zone)))
    finally:
        db.close()


async def _settle(outbox: SqliteOutbox) -> None:
    now = datetime.now(UTC)
    lease = now + timedelta(minutes=1)
    batch = await outbox.claim("alice", ReadingKind.GLUCOSE, limit=1, now=now, lease_until=lease)
    assert batch is not None
    await outbox.complete(batch.claim_id, [i.id for i in batch.items], now)
    outbox.settle_sync()  # the uploader's settle once idle (other readings are due here)
    await outbox.record_progress(
        UploadProgress("alice", ReadingKind.GLUCOSE, SyncStatus.COMPLETED, now, delivered_total=1)
    )
    batch = await outbox.claim(
        "bob", ReadingKind.BLOOD_PRESSURE, limit=10, now=now, lease_until=lease
    )
    assert batch is not None
    await outbox.dead_letter(
        batch.claim_id,
        [i.id for i in batch.items],
        status_code=400,
        body="{}",
        reason="HTTP 400: refused",
        now=now,
    )
    await outbox.set_hold("bob", UserHold.PAUSED, held=True)


def logical_dump(path: Path) -> list[str]:
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    config = write_config(tmp_path, free_port())
    fill(tmp_path / "data")
    return config


def test_no_database_says_so_with_the_remedy_and_creates_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port())
    for args in (("status",), ("status", "--json")):
        result = cli(*args, "--config", str(config))
        assert result.returncode == 1
        assert "no database yet" in result.stderr
        assert "run `edge-gateway run` first" in result.stderr
        assert result.stdout == ""
    assert not (tmp_path / "data").exists()


def test_empty_database_file_counts_as_none(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port())
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / DATABASE_FILENAME).touch()
    result = cli("status", "--config", str(config))
    assert result.returncode == 1
    assert "no database yet" in result.stderr


def test_an_old_schema_is_not_migrated_by_status(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port())
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / DATABASE_FILENAME
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("CREATE TABLE device (address TEXT PRIMARY KEY)")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    result = cli("status", "--config", str(config))
    assert result.returncode == 1
    assert "older than this gateway's" in result.stderr
    assert "run `edge-gateway run` once to migrate it" in result.stderr
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()


def test_a_foreign_database_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port())
    (tmp_path / "data").mkdir()
    conn = sqlite3.connect(tmp_path / "data" / DATABASE_FILENAME)
    conn.execute("CREATE TABLE photos (id INTEGER)")
    conn.commit()
    conn.close()
    result = cli("status", "--config", str(config))
    assert result.returncode == 1
    assert "not an Edge Gateway database" in result.stderr


def test_json_reports_devices_readings_uploads_and_errors(filled: Path) -> None:
    database = filled.parent / "data" / DATABASE_FILENAME
    before = logical_dump(database)
    result = cli("status", "--json", "--config", str(filled))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert logical_dump(database) == before  # read only: nothing migrated or written

    assert set(doc) == {
        "data_dir",
        "database",
        "collected_at",
        "last_sync_at",
        "adapter",
        "gateway",
        "devices",
        "failures",
        "readings",
        "uploads",
        "errors",
        "withdrawn",
    }
    assert doc["withdrawn"] == []  # nothing reparsed here
    (failure,) = doc["failures"]
    assert (failure["address"], failure["failures"], failure["error"]) == (FAILING, 2, NOT_PAIRED)
    assert failure["brand"] == "Omron"
    assert doc["database"] == str(database)
    assert doc["adapter"] == {"name": "hci1"}
    assert doc["gateway"]["running"] is False
    assert doc["gateway"]["ready"] is None

    by_address = {d["address"]: d for d in doc["devices"]}
    assert list(by_address) == [METER, CUFF, SCALE]
    meter = by_address[METER]
    assert meter["name"] == "meter+0001"
    assert meter["kind"] == "glucose"
    assert meter["brand"] == "Accu-Chek"  # the brand the drivers use, not "Roche"
    assert meter["bond_state"] == "bonded"
    assert meter["last_sequence"] == 3
    assert meter["readings"] == 3
    assert meter["last_seen_at"] is not None
    assert by_address[CUFF]["readings"] == 2
    assert by_address[SCALE]["battery_percent"] == 87
    assert by_address[SCALE]["bond_state"] == "none"
    # The slug each device uploads as (issue 16 item 2): Junction lists beurer_ble for blood
    # pressure only, so a Beurer scale falls back to manual.
    assert [d["uploads_as"] for d in by_address.values()] == ["accuchek_ble", "omron_ble", "manual"]

    assert doc["readings"] == {
        "blood_pressure": {"dead": 2},
        "body": {"unassigned": 1},
        "glucose": {"delivered": 1, "queued": 2},
    }
    uploads = {(u["user_id"], u["resource"]): u for u in doc["uploads"]}
    assert set(uploads) == {("alice", "glucose"), ("bob", "blood_pressure")}
    alice = uploads["alice", "glucose"]
    assert (alice["queued"], alice["due"], alice["dead_letters"]) == (2, 2, 0)
    assert alice["status"] == "completed"
    assert alice["delivered_total"] == 1
    assert alice["status_at"] == doc["last_sync_at"]
    bob = uploads["bob", "blood_pressure"]
    assert (bob["queued"], bob["dead_letters"], bob["status"]) == (0, 2, None)
    assert doc["errors"] == {"dead_letters": 2, "holds": {"bob": ["paused"]}}

    assert measured_values_in(result.stdout, MEASURED) == []


def test_table_shows_every_section_without_measured_values(filled: Path) -> None:
    result = cli("status", "--config", str(filled))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in (
        "Adapter hci1",
        "not running",
        "Devices (3)",
        METER,
        CUFF,
        SCALE,
        "meter+0001",
        "Accu-Chek",
        "bonded",
        "87 %",
        "Readings stored",
        "unassigned",
        "Upload queue",
        "alice",
        "completed",
        "Last sync 20",
        "2 dead letters",
        "holds bob: paused",
        "Failed reads (1)",
        FAILING,
        "2 times",
        "as accuchek_ble",
        "as manual",
    ):
        assert expected in out, expected
    # Fits a classic terminal; the error wraps, nothing is cut.
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" not in out
    assert all(word in out for word in NOT_PAIRED.split())
    assert measured_values_in(out, MEASURED) == []


def test_a_running_gateway_is_asked_for_its_health(tmp_path: Path) -> None:
    fill(tmp_path / "data")
    config = write_config(tmp_path, 0)
    with running_gateway(config) as port:
        config = write_config(tmp_path, port)
        result = cli("status", "--json", "--config", str(config))
        table = cli("status", "--config", str(config))
    assert result.returncode == 0, result.stderr
    gateway = json.loads(result.stdout)["gateway"]
    assert gateway["url"] == f"http://127.0.0.1:{port}/v1/health"
    assert gateway["running"] is True
    assert gateway["is_gateway"] is True
    assert gateway["ready"] is True
    assert gateway["status"] == "ok"
    assert gateway["checks"]["store"] is True
    assert gateway["started_at"] is not None
    assert gateway["error"] is None
    assert table.returncode == 0, table.stderr
    assert "running, ready at http://127.0.0.1:" in table.stdout


def test_a_gateway_that_is_not_ready_says_which_check_fails(tmp_path: Path) -> None:
    fill(tmp_path / "data")
    with running_gateway(write_config(tmp_path, 0), ready=False) as port:
        config = write_config(tmp_path, port)
        result = cli("status", "--json", "--config", str(config))
        table = cli("status", "--config", str(config))
    gateway = json.loads(result.stdout)["gateway"]
    assert (gateway["running"], gateway["ready"], gateway["status"]) == (True, False, "degraded")
    assert gateway["checks"] == {"store": True, "collector": False}
    assert "running, not ready (collector)" in table.stdout


def test_something_else_on_the_port_is_not_taken_for_the_gateway(filled: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        config = write_config(filled.parent, port)
        accepted: list[socket.socket] = []

        def answer() -> None:
            conn, _ = listener.accept()
            accepted.append(conn)
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        result = cli("status", "--json", "--config", str(config))
        thread.join(10)
        for conn in accepted:
            conn.close()
    assert result.returncode == 0, result.stderr
    gateway = json.loads(result.stdout)["gateway"]
    assert gateway["running"] is True
    assert gateway["is_gateway"] is False
    assert "not an edge gateway" in gateway["error"]


def _odd_scenario(tmp_path: Path) -> Path:
    path = tmp_path / "scenario.toml"
    bp = f'time = "2026-11-20T07:40:00", systolic = {SYSTOLIC}, diastolic = {DIASTOLIC}'
    bp += f", pulse = {PULSE}, user = 1"
    weight = f'time = "2026-11-20T07:05:00", weight_kg = {WEIGHT_KG}'
    weight += f", fat_percent = {FAT_PERCENT}, user = 1"
    path.write_text(
        f"""
[[devices]]
kind = "glucose"
address = "{METER}"
name = "meter+00012345"
manufacturer = "Roche"
records = [
  {{ seq = 1, time = "2026-11-20T07:30:00", mg_dl = 123.4 }},
  {{ seq = 2, time = "2026-11-20T12:05:00", mg_dl = 123.4 }},
]

[[devices]]
kind = "blood_pressure"
address = "{CUFF}"
name = "BLEsmart_00000116"
manufacturer = "OMRON HEALTHCARE"
records = [
  {{ {bp} }},
]

[[devices]]
kind = "scale"
address = "{SCALE}"
name = "BF720"
manufacturer = "Beurer"
records = [
  {{ {weight} }},
]
"""
    )
    return path


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_status_of_a_real_gateway_process_while_it_runs(
    tmp_path: Path, bluetoothctl_dir: Path
) -> None:
    """`edge-gateway run` against the simulator and the stub; status reads alongside it."""
    with simulator(_odd_scenario(tmp_path)) as bus, junction_stub() as stub_url:
        config = write_e2e_config(
            tmp_path, stub_url=stub_url, bindings={METER: "alice", CUFF: "bob", SCALE: "bob"}
        )
        text = config.read_text().replace("port = 0", f"port = {free_port()}")
        config.write_text(text)
        db = tmp_path / "data" / DATABASE_FILENAME
        env = gateway_env(bus, bluetoothctl_dir)
        with start_gateway(config, env, tmp_path / "run.log") as gateway:
            try:
                wait_for(lambda: len(reading_rows(db)) == 4, 60, "4 readings stored")

                def delivered() -> bool:
                    doc = json.loads(cli("status", "--json", "--config", str(config)).stdout)
                    return sum(u["delivered_total"] for u in doc["uploads"]) == 4

                wait_for(delivered, 60, "4 readings delivered")
                result = cli("status", "--json", "--config", str(config))
                table = cli("status", "--config", str(config))
            finally:
                gateway.send_signal(signal.SIGTERM)
                gateway.wait(timeout=45)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["gateway"]["running"] is True
    assert doc["gateway"]["ready"] is True, doc["gateway"]
    assert [d["address"] for d in doc["devices"]] == [METER, CUFF, SCALE]
    assert {d["address"]: d["readings"] for d in doc["devices"]} == {METER: 2, CUFF: 1, SCALE: 1}
    assert doc["readings"] == {
        "blood_pressure": {"delivered": 1},
        "body": {"delivered": 1},
        "glucose": {"delivered": 2},
    }
    assert doc["last_sync_at"] is not None
    assert doc["errors"] == {"dead_letters": 0, "holds": {}}
    assert table.returncode == 0, table.stderr
    assert "running, ready" in table.stdout
    for out in (result.stdout, table.stdout):
        assert measured_values_in(out, (*MEASURED, "123.4")) == []


def test_a_failing_upstream_is_not_shown_as_a_recent_sync(tmp_path: Path) -> None:
    """Junction unreachable from the start: 'Last sync 20 s ago' alone reads as all well."""
    config = write_config(tmp_path, free_port())
    db = open_database(tmp_path / "data" / DATABASE_FILENAME)
    try:
        outbox = SqliteOutbox(db, zone=load_settings(None, data_dir=tmp_path / "data").zone)
        progress = UploadProgress(
            "alice",
            ReadingKind.GLUCOSE,
            SyncStatus.EXPECTED_ERROR,
            datetime.now(UTC) - timedelta(seconds=20),
            error="ConnectError: connection refused",
        )
        asyncio.run(outbox.record_progress(progress))
    finally:
        db.close()
    result = cli("status", "--config", str(config))
    assert result.returncode == 0, result.stderr
    table, last_sync = result.stdout.split("Last sync", 1)
    flowed = " ".join(last_sync.split())  # wrapped to 80 columns
    assert "(failed: ConnectError: connection refused); nothing delivered yet" in flowed
    assert "ConnectE…" not in table  # the table folds the error instead of cutting it
