"""Processes for end-to-end tests: the simulator, the Junction stub and the gateway itself."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

EDGE_GATEWAY = str(Path(sys.executable).with_name("edge-gateway"))


@contextmanager
def process_with_first_line(argv: list[str], env: dict[str, str] | None = None) -> Iterator[str]:
    """Start a process whose first stdout line matters; yield that line; SIGTERM on exit."""
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert line, f"{argv[1]} printed nothing"
            yield line
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def simulator(scenario: Path) -> Iterator[str]:
    """`edge-gateway simulate` on a scenario; yields its D-Bus address."""
    with process_with_first_line(
        [EDGE_GATEWAY, "simulate", "--scenario", str(scenario), "--advertise-interval-ms", "20"]
    ) as line:
        yield line.split("=", 1)[1]


@contextmanager
def simulated_env(tmp: Path, scenario: str, **extra: str) -> Iterator[dict[str, str]]:
    """`edge-gateway simulate` on `scenario` (TOML text); the environment that points a CLI
    process at it (its data in `tmp`/data, no inherited ``GATEWAY_*``/``DBUS_*``)."""
    path = tmp / "scenario.toml"
    path.write_text(scenario)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBUS_", "GATEWAY_"))}
    env |= {"GATEWAY_DATA_DIR": str(tmp / "data"), **extra}
    argv = [EDGE_GATEWAY, "simulate", "--scenario", str(path), "--advertise-interval-ms", "20"]
    with process_with_first_line(argv, env) as first:
        assert first.startswith("DBUS_SYSTEM_BUS_ADDRESS="), first
        yield {**env, "DBUS_SYSTEM_BUS_ADDRESS": first.split("=", 1)[1]}


@contextmanager
def junction_stub(
    api_key: str = "sk_e2e", users: tuple[str, ...] = ("alice", "bob")
) -> Iterator[str]:
    """`edge-gateway junction-stub` on a free port, knowing `users`; yields its base URL."""
    registered = [arg for user in users for arg in ("--user", user)]
    with process_with_first_line(
        [EDGE_GATEWAY, "junction-stub", "--port", "0", "--api-key", api_key, *registered]
    ) as url:
        yield url


def write_config(tmp: Path, *, stub_url: str, bindings: dict[str, str]) -> Path:
    """A gateway config with its data in `tmp` and every device bound to a user."""
    lines = [
        f'data_dir = "{tmp / "data"}"',
        'timezone = "UTC"',
        "[junction]",
        f'base_url = "{stub_url}"',
        'api_key = "sk_e2e"',
        "[api]",
        "port = 0",
        "[ble]",
        "poll_interval_s = 1",
    ]
    for device, user in bindings.items():
        lines += ["[[bindings]]", f'device = "{device}"', f'user_id = "{user}"']
    path = tmp / "gateway.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def gateway_env(bus_address: str, bin_dir: Path) -> dict[str, str]:
    """The environment for `edge-gateway run` against the simulator."""
    return {
        **os.environ,
        "DBUS_SYSTEM_BUS_ADDRESS": bus_address,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
    }


def start_gateway(config: Path, env: dict[str, str], log: Path) -> "subprocess.Popen[bytes]":
    """`edge-gateway run` in the background, logging to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [EDGE_GATEWAY, "run", "--config", str(config)],
            stdout=out,
            stderr=out,
            env=env,
        )


def reading_rows(db: Path) -> list[tuple[str, str | None, str | None]]:
    """(id, user_id, device) of every stored reading, read through a separate connection."""
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            return conn.execute("select id, user_id, device from reading").fetchall()
        except sqlite3.OperationalError:  # the schema is not there yet
            return []


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll `predicate` until true or fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    message = f"timed out after {timeout_s} s waiting for {what}"
    raise AssertionError(message)
