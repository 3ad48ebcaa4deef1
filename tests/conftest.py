"""Suite-wide fixtures: the private D-Bus and the simulated BlueZ (DESIGN.md §5 tier 2)."""

import asyncio
import contextlib
import os
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from drivers.simulator.daemon import PrivateBus
from drivers.simulator.runner import start_simulator
from drivers.simulator.scenario import Scenario
from drivers.simulator.server import Simulator

# Tests re-advertise every 20 ms so Bleak's scans finish in tens of milliseconds.
TEST_ADVERTISE_INTERVAL_S = 0.02


@pytest.fixture(scope="session")
def bluetoothctl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PATH entry whose `bluetoothctl --version` answers like a current BlueZ.

    Bleak asks once per process before its first connect; without an answer it logs a warning.
    """
    bin_dir = tmp_path_factory.mktemp("bin")
    fake = bin_dir / "bluetoothctl"
    fake.write_text("#!/bin/sh\necho 'bluetoothctl: 5.72'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return bin_dir


@pytest.fixture(scope="session")
def private_bus(bluetoothctl_dir: Path) -> Iterator[str]:
    """One dbus-daemon for the whole session; Bleak is pointed at it, never the real bus."""
    bin_dir = bluetoothctl_dir
    saved = {k: os.environ.get(k) for k in ("DBUS_SYSTEM_BUS_ADDRESS", "PATH")}
    with PrivateBus() as bus:
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = bus.address
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
        try:
            yield bus.address
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture
def bus_guard(private_bus: str) -> str:
    """Refuse to run if Bleak would reach anything but the private bus (a developer's radio)."""
    actual = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    if actual != private_bus:
        pytest.fail(f"DBUS_SYSTEM_BUS_ADDRESS is {actual!r}, not the private test bus; refusing")
    return private_bus


@pytest.fixture
def scenario() -> Scenario:
    """Override in a test module (or parametrize) to choose the devices."""
    return Scenario(devices=[])


@pytest.fixture
async def simulator(bus_guard: str, scenario: Scenario) -> AsyncIterator[Simulator]:
    """A simulated BlueZ for this test's event loop (Bleak keeps one manager per loop)."""
    sim = await start_simulator(scenario, bus_guard, advertise_interval_s=TEST_ADVERTISE_INTERVAL_S)
    try:
        yield sim
    finally:
        await _close_bleak_manager()
        await sim.stop()


async def _close_bleak_manager() -> None:
    """Close Bleak's per-loop BlueZ manager connection while its loop still runs.

    Bleak only finalises managers of closed loops lazily, when the next loop asks for one; by
    then the socket may have been garbage-collected, which `filterwarnings=error` turns into
    a failure of whichever test happens to be running.
    """
    from bleak.backends.bluezdbus import manager as bluez_manager

    instance = bluez_manager._global_instances.pop(asyncio.get_running_loop(), None)
    bus = getattr(instance, "_bus", None)
    if bus is not None and bus.connected:
        bus.disconnect()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(bus.wait_for_disconnect(), 2)


@pytest.fixture
def artifacts_dir() -> Path:
    """Where tests leave files for people to look at (screenshots, logs)."""
    path = Path(__file__).resolve().parent.parent / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
