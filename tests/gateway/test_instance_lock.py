"""One gateway per data_dir: the flock, and real `run`/`serve-api` processes refused beside it."""

import os
import subprocess
import sys

import pytest

from gateway.instance_lock import LOCK_FILENAME, InstanceLockedError, hold
from tests.gateway.api.live import CLI, serve_api


def test_second_holder_is_refused_with_the_first_ones_pid(tmp_path) -> None:
    data_dir = tmp_path / "data"
    with hold(data_dir) as path:
        assert path == data_dir / LOCK_FILENAME
        assert path.read_text().strip() == str(os.getpid())
        with (
            pytest.raises(InstanceLockedError, match=f"PID {os.getpid()}") as refused,
            hold(data_dir),
        ):
            pass
        assert refused.value.pid == os.getpid()
        assert "give this one its own data_dir" in str(refused.value)
    with hold(data_dir):  # released on exit: the next one gets it
        pass


def test_a_stale_lock_file_does_not_block(tmp_path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / LOCK_FILENAME).write_text("999999\n")  # left by a process that died
    with hold(data_dir) as path:
        assert path.read_text().strip() == str(os.getpid())


def cli(*args: str, config) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return subprocess.run(
        [sys.executable, "-c", CLI, *args, "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_second_gateway_on_a_data_dir_exits_2_naming_the_holder(tmp_path) -> None:
    with serve_api(tmp_path) as (first, _url, _token):
        seconds = [
            cli(command, config=tmp_path / "gateway.toml") for command in ("run", "serve-api")
        ]
        assert first.poll() is None  # the first one keeps running
    for second in seconds:
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr
        assert f"PID {first.pid}" in lines[0]
        assert str(tmp_path / "data") in lines[0]
