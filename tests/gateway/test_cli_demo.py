"""`edge-gateway demo --once`: the README's first command ends here."""

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
    assert "19 of 19" in result.stderr
    assert (tmp_path / "gateway.sqlite3").exists()
