"""What `edge-gateway run` tells an operator, as a process against the simulator and the stub.

One run, several promises about its log: a read refused "not paired" is one WARNING with the
address once (not "ADDR: ADDR: ..."); a delivered upload is an INFO line; a device clock an
hour off is warned about at its first read (not at the next hourly check); an incremental
meter read does not say "1 record" then "0 records"; pointed at a simulated BlueZ, Bleak's
"Could not determine BlueZ version" warning stays quiet. `status` lists the cuff that was seen
and failed, with its error; once paired by another process, the running gateway takes the bond
from BlueZ at its next read and clears the failure.
"""

import os
import re
import signal
import sqlite3
import subprocess
from pathlib import Path

from tests.gateway.e2e import (
    EDGE_GATEWAY,
    junction_stub,
    simulator,
    start_gateway,
    wait_for,
    write_config,
)

METER = "C0:FF:EE:00:00:31"
CUFF = "C0:FF:EE:00:00:32"
SCENARIO = f"""
[[devices]]
kind = "glucose"
address = "{METER}"
name = "meter+00031000"
manufacturer = "Roche"
clock_skew_s = -3601
records = [
  {{ seq = 1, time = "2026-11-20T07:30:00", mg_dl = 104 }},
  {{ seq = 2, time = "2026-11-20T12:30:00", mg_dl = 131 }},
]

[[devices]]
kind = "blood_pressure"
address = "{CUFF}"
name = "BLEsmart_00000132"
manufacturer = "OMRON HEALTHCARE"
passkey = 123456
pairing = "passkey"
records = [{{ time = "2026-11-20T07:40:00", systolic = 128, diastolic = 82, pulse = 68 }}]
"""


def test_the_log_tells_the_operator_what_happened_once_and_plainly(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SCENARIO)
    log = tmp_path / "run.log"
    with simulator(scenario) as bus, junction_stub() as stub_url:
        config = write_config(tmp_path, stub_url=stub_url, bindings={METER: "alice"})
        # No fake `bluetoothctl` on PATH: Bleak's version probe finds none.
        env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": bus, "PATH": "/usr/bin:/bin"}
        gateway = start_gateway(config, env, log)
        try:

            def told(*texts: str) -> bool:
                text = log.read_text()
                return all(t in text for t in texts)

            wait_for(
                lambda: told(
                    "reading(s) delivered to Junction",
                    "0 new record(s) after sequence 2",  # the meter's second, incremental read
                    f"{CUFF}: subscribe",
                ),
                60,
                "a delivery, a second meter read and the cuff's refusal in the log",
            )
            status = subprocess.run(
                [EDGE_GATEWAY, "status", "--config", str(config)],
                capture_output=True,
                text=True,
                timeout=30,
                env={**env, "COLUMNS": "80"},
                check=False,
            )
            # Paired by another process (its own data_dir): the running gateway learns the
            # bond from BlueZ when it next reads the cuff, and forgets the failure.
            paired = subprocess.run(
                [EDGE_GATEWAY, "pair", CUFF, "--pin", "123456", "--timeout", "10"],
                capture_output=True,
                text=True,
                timeout=60,
                env={**env, "GATEWAY_DATA_DIR": str(tmp_path / "elsewhere")},
                check=False,
            )
            assert paired.returncode == 0, paired.stderr
            database = tmp_path / "data" / "gateway.sqlite3"
            wait_for(lambda: _bond(database, CUFF) == "bonded", 60, "the cuff's bond from BlueZ")
            wait_for(lambda: not _failures(database), 10, "the cuff's failure cleared")
        finally:
            gateway.send_signal(signal.SIGTERM)
            assert gateway.wait(timeout=30) == 0, log.read_text()[-3000:]
        text = log.read_text()
    assert f"{CUFF}: {CUFF}:" not in text
    # Once, until it recovers (then one "reading again" line).
    assert text.count(f"WARNING gateway.collector: {CUFF}: subscribe") == 1
    assert f"WARNING gateway.collector: {CUFF}: reading again after earlier failures" in text
    assert "alice/glucose: 2 reading(s) delivered to Junction" in text
    assert re.search(rf"{METER}: device clock is -360\d s off", text)  # skew measured ±1 s
    assert "0 glucose record(s) taken" in text
    assert "Could not determine BlueZ version" not in text
    assert status.returncode == 0, status.stderr
    assert "Failed reads (1)" in status.stdout
    assert CUFF in status.stdout
    assert "BLEsmart_00000132" in status.stdout
    # One brand name: the drivers' ("claimed ... as Accu-Chek"), not Device Information's.
    assert f"{METER} (meter+00031000): claimed by sig_glucose as Accu-Chek" in text
    assert "Accu-Chek" in status.stdout
    assert "Roche" not in status.stdout


def _bond(database: Path, address: str) -> str | None:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
        row = conn.execute("SELECT bond_state FROM device WHERE address = ?", (address,)).fetchone()
    return None if row is None else str(row[0])


def _failures(database: Path) -> list[str]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
        return [str(r[0]) for r in conn.execute("SELECT address FROM device_failure")]
