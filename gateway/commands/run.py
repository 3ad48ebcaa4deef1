"""`edge-gateway run`: the gateway (collector, uploader, API) on the system D-Bus's BlueZ.

Which BlueZ is whatever `DBUS_SYSTEM_BUS_ADDRESS` points at: the real one, or
`edge-gateway simulate`'s.
"""

import asyncio
import faulthandler
import logging
import os
import signal

import typer

from drivers.bleak_link import BleakRadio
from gateway import instance_lock, memory
from gateway.commands.common import ConfigOption, fail, settings_from
from gateway.config import Settings
from gateway.failures import GatewayFailureError
from gateway.instance_lock import InstanceLockedError
from gateway.pairing import BlePairing
from gateway.runtime import build_gateway
from gateway.runtime_loop import dump_tasks, run_bounded
from gateway.store import StoreError

_LOGGER = logging.getLogger(__name__)
SYSTEM_BUS = "unix:path=/run/dbus/system_bus_socket"  # D-Bus's default system bus


def run(config: ConfigOption = None) -> None:
    """Run the gateway until SIGTERM or Ctrl-C (the transfer in progress finishes first).

    Logs "edge-gateway running" only once the store is writable, the API listens and BlueZ
    scans. Exits 2 with one line for a bad config or a store it cannot use, and 1 with one
    line when a part (collector, uploader, API) cannot start or dies, so that systemd's
    Restart=on-failure restarts it.
    """
    settings = settings_from(config)
    if os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", SYSTEM_BUS) != SYSTEM_BUS:
        # Another bus (`edge-gateway simulate`'s): Bleak's BlueZ version probe runs this
        # machine's `bluetoothctl`, which says nothing about the BlueZ on that bus, and
        # warns "Could not determine BlueZ version" when there is none.
        logging.getLogger("bleak.backends.bluezdbus.version").setLevel(logging.ERROR)
    # Before the event loop's worker threads exist: each would get a malloc arena of its own.
    memory.limit_arenas()
    try:
        with instance_lock.hold(settings.data_dir):
            # Not asyncio.run: its wait for leftover tasks is unbounded (a dead D-Bus peer).
            run_bounded(serve(settings))
    except (InstanceLockedError, StoreError) as exc:
        raise fail(str(exc)) from exc
    except GatewayFailureError as exc:
        raise fail(str(exc), exc.exit_code) from exc


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Build and run the gateway until `stop` is set or a signal arrives."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # `kill -QUIT` prints every thread's stack (faulthandler, even with the loop blocked) and
    # then every task's (what an idle loop is waiting on): for a `run` that will not stop.
    loop.add_signal_handler(signal.SIGQUIT, dump_tasks)
    faulthandler.register(signal.SIGQUIT, all_threads=True, chain=True)
    adapter = settings.ble.adapter
    # One radio for reads and pairing: pairing uses the devices its scan found.
    radio = BleakRadio(adapter=adapter)
    gateway = build_gateway(settings, radio, pairing=BlePairing(adapter=adapter, radio=radio))

    def announce(port: int | None) -> None:
        _LOGGER.info(
            "edge-gateway running: data in %s, API on http://%s:%s",
            settings.data_dir,
            settings.api.host,
            port,
        )

    await gateway.serve(stop, on_running=announce)


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command()(run)
