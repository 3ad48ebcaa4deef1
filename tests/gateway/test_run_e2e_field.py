"""Field cases end to end: `edge-gateway run` against `simulate` and the Junction stub.

The devices behave as reported from the field (README "Device quirks"): a CareSens meter that
marks a ketone result with context meal code 6, a TaiDoc meter numbering its records
newest-first, a Beurer scale sending its body composition without user or time.
"""

import json
import signal
import sqlite3
import time
import urllib.request
from collections.abc import Callable
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

METER, SCALE = "C0:FF:EE:00:00:01", "C0:FF:EE:00:00:03"


def _stub_samples(url: str) -> list[dict[str, object]]:
    with urllib.request.urlopen(f"{url}/_stub/samples", timeout=5) as response:  # noqa: S310
        return json.loads(response.read())  # type: ignore[no-any-return]


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        return conn.execute(sql).fetchall()


def _run(
    tmp: Path,
    scenario_text: str,
    bindings: dict[str, str],
    bluetoothctl_dir: Path,
    settled: Callable[[Path, str], bool],
    *,
    reads_after: float = 3.0,
) -> tuple[Path, list[dict[str, object]], str]:
    """Run the gateway until `settled(db, stub_url)`, let it read again, stop it.

    Returns:
        The database path, the stub's samples and the gateway's log.
    """
    scenario = tmp / "scenario.toml"
    scenario.write_text(scenario_text)
    log = tmp / "run.log"
    with simulator(scenario) as bus, junction_stub() as stub_url:
        config = write_config(tmp, stub_url=stub_url, bindings=bindings)
        db = tmp / "data" / "gateway.sqlite3"
        gateway = start_gateway(config, gateway_env(bus, bluetoothctl_dir), log)
        try:
            wait_for(lambda: settled(db, stub_url), 45, "the gateway to store and upload")
            time.sleep(reads_after)  # poll_interval_s = 1: the device is read again meanwhile
        finally:
            gateway.send_signal(signal.SIGTERM)
            assert gateway.wait(timeout=30) == 0, log.read_text()[-3000:]
        samples = _stub_samples(stub_url)
    return db, samples, log.read_text()


CARESENS = f"""
[[devices]]
kind = "glucose"
address = "{METER}"
name = "CareSens N Premier"
manufacturer = "i-SENS"
faults = {{ idle_disconnect_ms = 1500 }}
records = [
  {{ seq = 1, time = "2026-11-20T07:31:00", ketone_mmol_l = 1.5 }},
  {{ seq = 2, time = "2026-11-20T07:35:00", mg_dl = 120, meal = 1 }},
]
"""


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_ketone_result_is_stored_and_never_uploaded_as_glucose(
    tmp_path: Path, bluetoothctl_dir: Path
):
    db, samples, _ = _run(
        tmp_path,
        CARESENS,
        {METER: "alice"},
        bluetoothctl_dir,
        lambda db, url: len(reading_rows(db)) >= 2 and len(_stub_samples(url)) >= 1,
    )
    rows = _rows(db, "select kind, state, user_id from reading order by kind")
    assert rows == [("glucose", "delivered", "alice"), ("ketone", "local", "alice")]
    [sample] = samples  # the glucose; the ketone never went out, as glucose or otherwise
    assert sample["resource"] == "glucose"
    assert sample["value"] == pytest.approx(120 / 18.016, abs=1e-3)
    assert sample["timestamp"] == "2026-11-20T07:35:00Z"
    assert _rows(
        db,
        "select count(*) from outbox_item where reading_id in (select id from "
        "reading where kind = 'ketone')",
    ) == [(0,)]


TAIDOC = f"""
[[devices]]
kind = "glucose"
address = "{METER}"
name = "TAIDOC TD4277"
manufacturer = "TaiDoc"
numbering = "newest_first"
faults = {{ idle_disconnect_ms = 1500 }}
records = [
  {{ seq = 1, time = "2026-11-20T07:00:00", mg_dl = 120 }},
  {{ seq = 2, time = "2026-11-20T08:00:00", mg_dl = 110 }},
  {{ seq = 3, time = "2026-11-20T09:00:00", mg_dl = 100 }},
  {{ seq = 4, time = "2026-11-20T10:00:00", mg_dl = 130, after_reads = 1 }},
]
"""


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_newest_first_meter_read_again_uploads_each_measurement_once(
    tmp_path: Path, bluetoothctl_dir: Path
):
    db, samples, log = _run(
        tmp_path,
        TAIDOC,
        {METER: "alice"},
        bluetoothctl_dir,
        lambda db, url: len(reading_rows(db)) >= 4 and len(_stub_samples(url)) >= 4,
    )
    assert len(reading_rows(db)) == 4
    assert sorted(str(s["timestamp"]) for s in samples) == [
        f"2026-11-20T{h:02d}:00:00Z" for h in (7, 8, 9, 10)
    ]
    assert all(s["writes"] == 1 for s in samples)  # nothing uploaded twice
    assert "reset" not in log.lower()  # no false meter_reset


BF720 = f"""
[[devices]]
kind = "scale"
address = "{SCALE}"
name = "BF720"
manufacturer = "Beurer"
advert_manufacturer_data = {{ "0611" = "" }}
advert_service_data = {{ "181d" = "01" }}

[[devices.records]]
time = "2026-05-12T18:53:54"
weight_kg = 79.96
fat_percent = 19.4
user = 1
body_bare = true

[[devices.records]]
time = "2026-05-12T19:10:00"
weight_kg = 64.2
fat_percent = 27.5
user = 2
body_bare = true
"""


def _slot_binding(config: Path, device: str, slot: int, user: str) -> None:
    """Bind one user slot of a device (e2e.write_config binds whole devices)."""
    lines = ["[[bindings]]", f'device = "{device}"', f'user_id = "{user}"', f"device_user = {slot}"]
    config.write_text(config.read_text() + "\n".join(lines) + "\n")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_split_packet_scale_uploads_one_body_summary_per_measurement_for_the_slot(
    tmp_path: Path, bluetoothctl_dir: Path
):
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(BF720)
    log = tmp_path / "run.log"
    with simulator(scenario) as bus, junction_stub() as stub_url:
        config = write_config(tmp_path, stub_url=stub_url, bindings={})
        _slot_binding(config, SCALE, 1, "bob")
        db = tmp_path / "data" / "gateway.sqlite3"
        gateway = start_gateway(config, gateway_env(bus, bluetoothctl_dir), log)
        try:
            wait_for(lambda: len(reading_rows(db)) >= 2, 45, "both measurements stored")
            wait_for(lambda: len(_stub_samples(stub_url)) >= 2, 45, "bob's body summary")
            time.sleep(2)
        finally:
            gateway.send_signal(signal.SIGTERM)
            assert gateway.wait(timeout=30) == 0, log.read_text()[-3000:]
        samples = _stub_samples(stub_url)
    rows = _rows(db, "select user_index, user_id, state, values_json from reading order by 1")
    assert [(r[0], r[1], r[2]) for r in rows] == [(1, "bob", "delivered"), (2, None, "unassigned")]
    assert json.loads(str(rows[0][3]))["fat_percent"] == 19.4  # weight and fat: one reading
    assert sorted((s["user_id"], s["unit"], s["value"], s["timestamp"]) for s in samples) == [
        ("bob", "%", 19.4, "2026-05-12T18:53:54Z"),
        ("bob", "kg", 79.96, "2026-05-12T18:53:54Z"),
    ]
    assert all(s["writes"] == 1 for s in samples)
