"""`edge-gateway simulate`: a simulated BlueZ on a private D-Bus."""

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from drivers.capture import Capture, loads
from drivers.errors import DriverError
from drivers.simulator.daemon import PrivateBus
from drivers.simulator.runner import start_replay, start_simulator
from drivers.simulator.scenario import Scenario, builtin_scenario, load_scenario
from gateway.commands.common import fail

_LOGGER = logging.getLogger(__name__)


def simulate(
    scenario: Annotated[
        Path | None,
        typer.Option(help="Scenario TOML file; the built-in demo scenario when omitted."),
    ] = None,
    advertise_interval_ms: Annotated[
        float, typer.Option(min=5, help="How often in-range devices re-advertise.")
    ] = 100,
    replay: Annotated[
        Path | None,
        typer.Option(
            help="Serve the device of a capture (`edge-gateway capture export`) instead of a "
            "scenario: its GATT database, and each connection plays the next recorded transfer."
        ),
    ] = None,
) -> None:
    """Run a simulated BlueZ with the scenario's devices on a private D-Bus.

    The first stdout line is DBUS_SYSTEM_BUS_ADDRESS=<address>; runs until killed.
    With --replay FILE it serves the captured device instead (same first line).
    """
    capture: Capture | None = None
    loaded: Scenario | None = None
    try:
        if replay is not None:
            if scenario is not None:
                msg = "give --scenario or --replay, not both"
                raise fail(msg)
            try:
                text = replay.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                msg = f"{replay}: cannot read the capture ({exc}); check the path"
                raise fail(msg) from exc
            capture = loads(text, source=str(replay))
        else:
            loaded = builtin_scenario() if scenario is None else load_scenario(scenario)
    except DriverError as exc:
        raise fail(str(exc)) from exc
    with PrivateBus() as bus:
        asyncio.run(
            _run_simulator(loaded, bus.address, advertise_interval_ms / 1000, capture=capture)
        )


async def _run_simulator(
    scenario: Scenario | None, address: str, interval_s: float, *, capture: Capture | None = None
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if capture is not None:
        simulator = await start_replay(capture, address, advertise_interval_s=interval_s)
    else:
        assert scenario is not None  # noqa: S101 - one of the two is given
        simulator = await start_simulator(scenario, address, advertise_interval_s=interval_s)
    # Only now: a script that reads this line may connect at once.
    sys.stdout.write(f"DBUS_SYSTEM_BUS_ADDRESS={address}\n")
    sys.stdout.flush()
    _LOGGER.info(
        "simulated BlueZ running with %d device(s); stop with Ctrl-C", len(simulator.devices)
    )
    try:
        await stop.wait()
    finally:
        await simulator.stop()


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command()(simulate)
