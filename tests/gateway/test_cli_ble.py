"""`edge-gateway scan` and `pair` as processes against `edge-gateway simulate`."""

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.gateway.e2e import simulated_env
from tests.gateway.running import free_port

METER = "C0:FF:EE:00:00:01"
CUFF = "C0:FF:EE:00:00:02"
SCENARIO = f"""
[[devices]]
kind = "glucose"
address = "{METER}"
name = "meter+00012345"
manufacturer = "Roche"
passkey = 123456
records = [ {{ seq = 1, time = "2026-11-20T07:30:00", mg_dl = 104 }} ]

[[devices]]
kind = "blood_pressure"
address = "{CUFF}"
name = "BLEsmart_00000116"
rssi = -70
records = []
"""

# The real root app; `ble` is registered here until gateway/cli.py lists it itself.
CLI = """
from gateway.cli import app, main
from gateway.commands import ble
if not any(getattr(c.callback, "__name__", "") == "scan" for c in app.registered_commands):
    ble.register(app)
main()
"""


@pytest.fixture(scope="module")
def sim_env(tmp_path_factory: pytest.TempPathFactory, private_bus: str) -> Iterator[dict[str, str]]:
    """`edge-gateway simulate` running; the environment that points a process at it."""
    tmp = tmp_path_factory.mktemp("cli_ble")
    # COLUMNS: rich wraps tables to 80 columns without a terminal.
    with simulated_env(tmp, SCENARIO, COLUMNS="160") as env:
        yield env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_scan_json_lists_devices_with_kind_brand_rssi_and_claim(sim_env):
    result = cli(sim_env, "scan", "--timeout", "0.5", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["address"]: row for row in json.loads(result.stdout)}
    assert rows[METER]["kind"] == "glucose"
    assert rows[METER]["brand"] == "Accu-Chek"
    assert rows[METER]["driver"] == "sig_glucose"
    assert rows[METER]["provider"] == "accuchek_ble"
    assert rows[METER]["claimed"] is True
    assert rows[CUFF]["brand"] == "Omron"
    assert -75 <= rows[CUFF]["rssi"] <= -65


def test_scan_table_for_people(sim_env):
    result = cli({**sim_env, "COLUMNS": "80"}, "scan", "--timeout", "0.5")
    assert result.returncode == 0, result.stderr
    assert "listening for 0.5 s on hci0" in result.stderr  # said before the wait
    assert "Needs pairing" in result.stdout
    assert "meter+00012345" in result.stdout  # whole, at 80 columns
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert METER in result.stdout
    assert "sig_blood_pressure" in result.stdout
    assert "device(s) heard" in result.stdout


def test_pair_with_a_wrong_pin_fails_with_the_remedy(sim_env):
    result = cli(sim_env, "pair", METER, "--pin", "111111", "--timeout", "5")
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: {METER}: pairing failed: the passkey or PIN was wrong; ")
    assert "Settings > Wireless > Pairing > Pair device" in error


def test_pair_with_the_right_pin(sim_env):
    result = cli(sim_env, "pair", METER, "--pin", "123456", "--timeout", "5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{METER}: paired"


def test_pair_an_absent_device_says_so(sim_env):
    result = cli(sim_env, "pair", "C0:FF:EE:00:00:99", "--pin", "1", "--timeout", "0.5")
    assert result.returncode == 1
    assert "C0:FF:EE:00:00:99: not advertising within 0.5 s" in result.stderr


def test_after_pair_status_and_scan_say_it_is_paired(sim_env):
    paired = cli(sim_env, "pair", METER, "--pin", "123456", "--timeout", "5")
    assert paired.returncode == 0, paired.stderr
    status = cli({**sim_env, "GATEWAY_API__PORT": str(free_port())}, "status")
    assert status.returncode == 0, status.stderr  # not "no database yet"
    assert f"{METER}: paired; start `edge-gateway run` to read it" in status.stdout
    scan = cli(sim_env, "scan", "--timeout", "0.5", "--json")
    rows = {row["address"]: row for row in json.loads(scan.stdout)}
    assert rows[METER]["needs_pairing"] == "no"
    assert rows[CUFF]["needs_pairing"] == "unknown"
