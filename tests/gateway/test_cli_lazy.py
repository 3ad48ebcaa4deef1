"""The command line loads only the command that runs (issue 18: `run`'s memory, start-up time)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import cli


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
