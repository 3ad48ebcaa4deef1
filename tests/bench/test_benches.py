"""Every bench script stays runnable: each runs tiny with --json and names its figures.

Figures are never asserted (standards: performance lives in bench/ only); what is checked is
that each script runs against today's code and schema and that its last line is one JSON
object holding the figures README and issue 18 name. bench/store_save.py once failed for
weeks after a schema change ("Incorrect number of bindings"): this is what catches that.

The scripts run at once (they mostly wait on subprocesses and fsync), so the module costs
about as long as its slowest one, `run_rss` (two `edge-gateway run` start-ups).
"""

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"

# Script -> (tiny arguments, figures its JSON must hold); the slowest first, so it overlaps.
TINY: dict[str, tuple[list[str], set[str]]] = {
    "run_rss": (
        ["--settle", "1", "--stored", "200", "--queued"],
        {"idle_mib", "growth_mib", "imports_mib", "imported_mib", "running_mib"},
    ),
    "api_readings": (
        ["--readings", "300", "--seconds", "1", "--rate", "20"],
        {"achieved_rps", "p99_ms", "p50_ms"},
    ),
    "backlog_latency": (["--backlog", "200", "--probes", "1"], {"bp_p50_ms"}),
    "ble_read": (["--records", "5", "--runs", "1"], {"full_read_ms", "incremental_ms"}),
    "frames": (
        ["--readings", "200", "--per-transfer", "50", "--stream-readings", "20"],
        {"frame_bytes_per_reading", "size_ratio_on_off"},
    ),
    "mqtt_publish": (["--backlog", "20", "--latency", "5"], {"latency_ms_p50"}),
    "parse_throughput": (["100"], {"glucose_measurement_full_1_per_s"}),
    "store_save": (
        ["--batched", "500", "--single", "5", "--stored", "600"],
        {"batched_per_s", "floor_per_s", "floor_ratio"},
    ),
    "stream_window": (
        ["--records", "5", "--pace-ms", "1", "--saves", "20"],
        {"stream_window"},
    ),
    "sync_drain": (
        ["--readings", "500", "--sdk-readings", "50"],
        {"raw_per_s", "sqlite_per_s", "sqlite_ratio", "sqlite_catch_up_s"},
    ),
    "upload_cpu": (
        ["--readings", "300", "--backlogs", "200", "400"],
        {"rebuild_trusted_us", "map_us", "json_us", "uploader_sqlite_us", "by_backlog"},
    ),
}

pytestmark = [pytest.mark.bench, pytest.mark.timeout(300)]


def run(script: str) -> subprocess.CompletedProcess[str]:
    args, _ = TINY[script]
    return subprocess.run(
        [sys.executable, str(BENCH / f"{script}.py"), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=BENCH.parent,
        check=False,
    )


@pytest.fixture(scope="module")
def results() -> dict[str, subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(TINY, pool.map(run, TINY), strict=True))


def test_every_bench_script_is_run_here() -> None:
    assert {path.stem for path in BENCH.glob("*.py")} == set(TINY)


@pytest.mark.parametrize("script", sorted(TINY))
def test_bench_runs_tiny_and_prints_its_figures(
    script: str, results: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    result = results[script]
    assert result.returncode == 0, f"{script}: exit {result.returncode}\n{result.stderr[-3000:]}"
    last = result.stdout.strip().splitlines()[-1]
    figures: Any = json.loads(last)
    assert isinstance(figures, dict), last
    _, named = TINY[script]
    assert named <= figures.keys(), f"{script}: {sorted(named - figures.keys())} missing"
    for name in named:
        assert isinstance(figures[name], int | float | dict), (name, figures[name])
