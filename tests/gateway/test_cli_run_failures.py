"""`edge-gateway run` when it cannot work: a non-zero status and ONE line, within seconds.

systemd's `Restart=on-failure` restarts only a failed unit, so every one of these must end
non-zero; none may print a traceback or announce "running" first. Config problems exit 2
and write nothing (the data directory is not even created).
"""

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.store import DATABASE_FILENAME, open_database
from tests.gateway.e2e import EDGE_GATEWAY, gateway_env, start_gateway, wait_for
from tests.gateway.running import free_port

# Generous for a loaded 2-core CI box; each case ends in about 1-6 s.
RUN_TIMEOUT_S = 30


def run(config: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    started = time.monotonic()
    result = subprocess.run(
        [EDGE_GATEWAY, "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env={**clean, **env},
        check=False,
    )
    return result, time.monotonic() - started


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single `error:` line; no traceback, no "running" announced."""
    assert "Traceback" not in result.stderr, result.stderr
    assert "edge-gateway running" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def write(tmp_path: Path, body: str = "", *, port: int | None = None) -> Path:
    config = tmp_path / "gateway.toml"
    port = free_port() if port is None else port
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n{body}\n[api]\nport = {port}\n')
    return config


NO_BLUEZ = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent/bluez-bus"}


def test_no_bluez_reachable_stops_the_gateway(tmp_path: Path) -> None:
    result, _ = run(write(tmp_path), **NO_BLUEZ)
    assert result.returncode == 1
    line = error_line(result)
    assert "collector stopped" in line
    assert "BlueZ" in line
    assert "DBUS_SYSTEM_BUS_ADDRESS" in line  # the remedy


def test_a_taken_api_port_stops_before_running(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result, _ = run(write(tmp_path, port=port), **NO_BLUEZ)
    assert result.returncode != 0
    line = error_line(result)
    assert f"port {port} is taken" in line
    assert "[api] port" in line


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "data" / DATABASE_FILENAME
    open_database(path).close()
    return path


def test_a_database_another_process_holds_a_write_lock_on(tmp_path: Path, store: Path) -> None:
    holder = sqlite3.connect(store, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        result, seconds = run(write(tmp_path), **NO_BLUEZ)
    finally:
        holder.close()
    assert result.returncode != 0
    line = error_line(result)
    assert "database is locked" in line
    assert "stop the other process" in line
    assert seconds < 20  # the 5 s busy timeout, not an uploader's retries


@pytest.fixture
def immutable(store: Path) -> Iterator[Path]:
    if subprocess.run(["chattr", "+i", str(store)], check=False).returncode != 0:
        pytest.skip("chattr +i needs root and an ext* file system")
    try:
        yield store
    finally:
        subprocess.run(["chattr", "-i", str(store)], check=True)


def test_an_immutable_database(tmp_path: Path, immutable: Path) -> None:
    before = immutable.read_bytes()
    result, _ = run(write(tmp_path), **NO_BLUEZ)
    assert result.returncode == 2
    line = error_line(result)
    assert "gateway.sqlite3" in line
    assert "chattr -i" in line
    assert immutable.read_bytes() == before


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[junction]\nbase_url = "not a url"', "junction.base_url = 'not a url'"),
        (
            '[[bindings]]\ndevice = "not-an-address"\nuser_id = "alice"',
            "bindings[0].device = 'NOT-AN-ADDRESS'",
        ),
        ('[[bindings]]\ndevice = "C0:FF:EE:00:00:01"\nuser_id = ""', "bindings[0].user_id"),
        (
            '[junction]\nresource_priority = ["glucose", "sleep"]',
            "junction.resource_priority[1] = 'sleep'",
        ),
        ('timezon = "UTC"', "unknown key 'timezon'; did you mean 'timezone'?"),
        ('keep_delivered_days = "30"', "expected a number"),
    ],
)
def test_run_refuses_what_config_check_refuses(tmp_path: Path, body: str, expected: str) -> None:
    config = write(tmp_path, body)
    result, _ = run(config, **NO_BLUEZ)
    assert result.returncode == 2
    line = error_line(result)
    assert expected in line, line
    assert not (tmp_path / "data").exists()  # nothing written

    check = subprocess.run(
        [EDGE_GATEWAY, "config", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert check.returncode == 2
    assert expected in check.stderr


def test_a_config_file_that_is_not_utf8(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_bytes(b'timezone = "Europe/Z\xfcrich"\n')
    result, _ = run(config, **NO_BLUEZ)
    assert result.returncode == 2
    line = error_line(result)
    assert "not UTF-8" in line
    assert "save the file as UTF-8" in line


def test_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("not a directory")
    result, _ = run(write(tmp_path), **NO_BLUEZ)
    assert result.returncode == 2
    assert "a directory, not a file" in error_line(result)
    assert blocker.read_text() == "not a directory"


def test_an_environment_override_is_blamed_on_its_variable(tmp_path: Path) -> None:
    result, _ = run(write(tmp_path), GATEWAY_API__PORT="x", **NO_BLUEZ)
    assert result.returncode == 2
    assert error_line(result).startswith("error: $GATEWAY_API__PORT: api.port = 'x'")


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_bluez_going_away_while_running_stops_the_gateway(
    tmp_path: Path, bluetoothctl_dir: Path, how: signal.Signals
) -> None:
    """bluetoothd stopped (its bus goes too) or killed (the bus stays): `run` exits 1.

    Bleak's scan goes quiet without a word either way; a gateway that kept running would
    read nothing until someone looked. systemd restarts a unit that failed.
    """
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(
        '[[devices]]\nkind = "glucose"\naddress = "C0:FF:EE:00:00:01"\nname = "meter+00012345"\n'
        'manufacturer = "Roche"\nrecords = []\n'
    )
    log = tmp_path / "run.log"
    simulate = subprocess.Popen(
        [EDGE_GATEWAY, "simulate", "--scenario", str(scenario), "--advertise-interval-ms", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its dbus-daemon too, for the cleanup below
    )
    try:
        assert simulate.stdout is not None
        bus = simulate.stdout.readline().strip().split("=", 1)[1]
        gateway = start_gateway(write(tmp_path), gateway_env(bus, bluetoothctl_dir), log)
        try:
            wait_for(lambda: "claimed by" in log.read_text(), RUN_TIMEOUT_S, "a claim")
            simulate.send_signal(how)
            try:
                code = gateway.wait(timeout=RUN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                # Say where `run` was, for the next look (it was the transfer's 30 s stop
                # grace and a dbus-fast bug: see gateway/collector.py, bleak_link/dead_bus.py).
                gateway.send_signal(signal.SIGQUIT)  # every thread's stack, every task's wait
                gateway.wait(timeout=5)
                message = f"run still up {RUN_TIMEOUT_S} s after BlueZ went"
                raise AssertionError(message + "\n" + log.read_text()[-6000:]) from None
            assert code == 1, log.read_text()[-3000:]
        finally:
            if gateway.poll() is None:
                gateway.kill()
                gateway.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(simulate.pid, signal.SIGKILL)
        simulate.wait()
        simulate.stdout.close()
    text = log.read_text()
    assert "Traceback" not in text, text[-5000:]
    errors = [line for line in text.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, text
    assert "collector stopped: BlueZ:" in errors[0]
    assert "systemctl status bluetooth" in errors[0]
