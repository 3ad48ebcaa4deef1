"""`edge-gateway serve-api` as a process: the API alone over the store."""

import os
import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_api_answers_and_stops(tmp_path) -> None:
    port = free_port()
    config = tmp_path / "gateway.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[api]\nport = {port}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from gateway.cli import main; main()",
            "serve-api",
            "--config",
            str(config),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "serve-api did not come up"
                time.sleep(0.1)
        assert health.json()["ready"] is True
        page = httpx.get(f"http://127.0.0.1:{port}/v1/readings", timeout=5)
        assert page.json()["data"] == []  # loopback: no token needed
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert process.returncode in {0, -15}
