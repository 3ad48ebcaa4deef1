"""The command line loads only the command that runs (issue 18: `run`'s memory, start-up time)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import cli
from tests.gateway.e2e import EDGE_GATEWAY, process_with_first_line, write_config


@pytest.mark.parametrize("module", sorted(set(cli.COMMANDS.values())))
def test_the_table_names_exactly_what_each_module_registers(module: str) -> None:
    registered = set(cli.load_commands(module))
    assert registered == {name for name, owner in cli.COMMANDS.items() if owner == module}


def loaded_after(*args: str) -> set[str]:
    """Module names a fresh interpreter holds after `edge-gateway ARGS` (which must exit 0)."""
    script = (
        "import json, sys\n"
        "from gateway.cli import app\n"
        "try:\n"
        f"    app({list(args)!r})\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print(json.dumps(sorted(name for name, m in sys.modules.items() if m is not None)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_run_help_loads_the_run_command_only() -> None:
    loaded = loaded_after("run", "--help")
    assert "gateway.commands.run" in loaded
    others = {f"gateway.commands.{m}" for m in cli.COMMANDS.values()} - {"gateway.commands.run"}
    assert not loaded & others
    # The simulator, the Junction stub and httpx's own CLI (rich, pygments) are not `run`'s;
    # httpx itself is (the uploader's client).
    assert not loaded & {"drivers.simulator.runner", "sync.junction.stub", "httpx._main"}
    assert "httpx" in loaded


def test_help_still_lists_every_command() -> None:
    loaded = loaded_after("--help")
    assert {f"gateway.commands.{m}" for m in cli.COMMANDS.values()} <= loaded


def test_every_command_module_is_in_the_table() -> None:
    # A new module with `register` but no COMMANDS entry would never be reachable.
    package = Path(cli.__file__).parent / "commands"
    with_register = {
        path.stem for path in package.glob("*.py") if "\ndef register(" in path.read_text()
    }
    assert with_register == set(cli.COMMANDS.values())


# What a running gateway must not hold with the default config ([api] mdns and [mqtt] off):
# each is loaded only by another command or an option that is off (issue 18: `run`'s idle RSS).
NOT_RUNS = {
    "rich": "typer's rich help and httpx's CLI; `run` prints no tables",
    "pygments": "rich's syntax highlighting",
    "markdown_it": "rich's markdown",
    "httpx._main": "httpx's own command line",
    "pydantic.v1": "FastAPI's Pydantic 1 check (gateway.api)",
    "zeroconf": "mDNS, [api] mdns = false",
    "gateway.mdns": "mDNS, [api] mdns = false",
    "aiomqtt": "the MQTT sink, [mqtt] enabled = false",
    "gateway.mqtt.sink": "the MQTT sink, [mqtt] enabled = false",
    "drivers.simulator.runner": "`edge-gateway simulate`",
    "sync.junction.stub": "`edge-gateway junction-stub`",
    "sync.junction.payloads": "the stub's strict request models; run's uploader builds dicts",
    "gateway.status": "`edge-gateway status`",
    "gateway.reparse": "`edge-gateway reparse`",
}

# Runs `edge-gateway run` in-process as the console script does; once it logs "running" (the
# store open, the API listening, the radio scanning), it writes what it has loaded and stops.
RUN_AND_REPORT = """
import gc, json, logging, os, signal, sys
from pathlib import Path

from gateway.cli import app

class Report(logging.Handler):
    def emit(self, record):
        if not record.getMessage().startswith("edge-gateway running"):
            return
        from fastapi import FastAPI
        gc.unfreeze()  # the app froze its start-up objects, which hides them from get_objects
        apps = [o for o in gc.get_objects() if isinstance(o, FastAPI)]
        Path(sys.argv[1]).write_text(json.dumps({
            "modules": sorted(name for name, m in sys.modules.items() if m is not None),
            "apps": len(apps),
            "openapi_built": any(a.openapi_schema is not None for a in apps),
        }))
        os.kill(os.getpid(), signal.SIGTERM)

logging.getLogger("gateway.commands.run").addHandler(Report())
app(["run", "--config", sys.argv[2]])
"""


def test_a_running_gateway_loads_only_what_run_uses(tmp_path: Path) -> None:
    report = tmp_path / "loaded.json"
    with process_with_first_line([EDGE_GATEWAY, "simulate"]) as line:
        # Nothing listens at port 9: uploads are not this test's concern.
        config = write_config(tmp_path, stub_url="http://127.0.0.1:9", bindings={})
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env |= {"DBUS_SYSTEM_BUS_ADDRESS": line.split("=", 1)[1], "PATH": "/usr/bin:/bin"}
        result = subprocess.run(
            [sys.executable, "-c", RUN_AND_REPORT, str(report), str(config)],
            capture_output=True,
            text=True,
            env=env,
            timeout=90,
            check=False,
        )
    assert report.exists(), f"run never said it was running:\n{result.stderr}"
    assert result.returncode == 0, result.stderr
    loaded = json.loads(report.read_text())
    found = {name: why for name, why in NOT_RUNS.items() if name in loaded["modules"]}
    assert not found, f"loaded by a running gateway: {found}"
    others = {f"gateway.commands.{m}" for m in cli.COMMANDS.values()} - {"gateway.commands.run"}
    assert not set(loaded["modules"]) & others
    # The OpenAPI document (~3 MiB) is built on the first /openapi.json or /docs, not at start.
    assert loaded["apps"] == 1
    assert not loaded["openapi_built"]
    # The modules the check is about exist (a renamed module must not pass it vacuously);
    # a None entry is one gateway.cli or gateway.api blocks on purpose.
    for name in NOT_RUNS:
        assert sys.modules.get(name, 0) is None or importlib.util.find_spec(name), name
