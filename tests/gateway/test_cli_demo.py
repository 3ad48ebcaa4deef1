"""`edge-gateway demo --once`: the README's first command ends here."""

import socket
import subprocess

from drivers.simulator.scenario import builtin_scenario
from gateway.commands.demo import expected_samples
from tests.gateway.e2e import EDGE_GATEWAY


def test_expected_samples_counts_body_fat_separately():
    # 8 glucose + 5 blood pressure + 3 weights each with a body-fat sample.
    assert expected_samples(builtin_scenario()) == 8 + 5 + 3 + 3


def test_demo_once_exits_zero_when_the_stub_has_every_reading(tmp_path):
    result = subprocess.run(
        [EDGE_GATEWAY, "demo", "--once", "--port", "0", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # The summary is the command's output (stdout); progress and logs are stderr.
    assert "19 of 19" in result.stdout
    assert "16 readings became 19 samples" in result.stdout
    assert "Kiosk page: http://127.0.0.1:" in result.stderr
    assert "Ctrl-C" not in result.stderr  # it ends by itself


def test_demo_on_a_busy_port_names_it_and_shows_no_kiosk_url(tmp_path):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = subprocess.run(
            [EDGE_GATEWAY, "demo", "--once", "--port", str(port), "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert "Kiosk page" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert f"port {port} is taken" in errors[0]
    assert "--port 0" in errors[0]
    assert (tmp_path / "gateway.sqlite3").exists()
