"""`edge-gateway simulate` as a process: the address line, then real Bleak in another process."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCENARIO = """
[[devices]]
kind = "glucose"
address = "C0:FF:EE:00:00:01"
name = "meter+00012345"
records = [
  { seq = 1, time = "2026-11-20T07:30:00", mg_dl = 104 },
  { seq = 2, time = "2026-11-20T12:05:00", mmol_l = 6.1 },
]
"""

CLIENT = textwrap.dedent(
    """
    import asyncio
    from bleak import BleakClient
    from drivers.gatt import parse_glucose_measurement, racp, uuids

    async def main():
        seen, done = [], asyncio.Event()
        async with BleakClient("C0:FF:EE:00:00:01", timeout=10) as client:
            await client.start_notify(uuids.GLUCOSE_MEASUREMENT,
                lambda _, d: seen.append(parse_glucose_measurement(bytes(d)).sequence))
            await client.start_notify(uuids.RECORD_ACCESS_CONTROL_POINT, lambda _, d: done.set())
            await client.write_gatt_char(uuids.RECORD_ACCESS_CONTROL_POINT, racp.report_all(), True)
            await asyncio.wait_for(done.wait(), 10)
        print(seen)

    asyncio.run(main())
    """
)


def _edge_gateway() -> str:
    return str(Path(sys.executable).with_name("edge-gateway"))


def test_simulate_prints_the_bus_address_first_and_serves_bleak(tmp_path: Path, private_bus: str):
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SCENARIO)
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SYSTEM_BUS_ADDRESS"}
    with subprocess.Popen(
        [_edge_gateway(), "simulate", "--scenario", str(scenario)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    ) as sim:
        assert sim.stdout is not None
        first = sim.stdout.readline().strip()
        assert first.startswith("DBUS_SYSTEM_BUS_ADDRESS=unix:")
        address = first.split("=", 1)[1]
        assert address != private_bus
        client = subprocess.run(
            [sys.executable, "-c", CLIENT],
            env={**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": address},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        sim.send_signal(signal.SIGTERM)
        assert sim.wait(timeout=10) == 0
    assert client.returncode == 0, client.stderr
    assert client.stdout.strip().splitlines()[-1] == "[1, 2]"


def test_simulate_rejects_a_bad_scenario_with_a_clear_error(tmp_path: Path):
    scenario = tmp_path / "bad.toml"
    scenario.write_text("[[devices]]\nkind = 'toaster'\naddress = 'C0:FF:EE:00:00:01'\n")
    result = subprocess.run(
        [_edge_gateway(), "simulate", "--scenario", str(scenario)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "bad.toml" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_simulate_without_scenario_runs_the_demo_until_signalled(signum: int):
    with subprocess.Popen(
        [_edge_gateway(), "simulate"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as sim:
        assert sim.stdout is not None
        assert sim.stdout.readline().startswith("DBUS_SYSTEM_BUS_ADDRESS=")
        sim.send_signal(signum)
        assert sim.wait(timeout=10) == 0
