"""`edge-gateway demo`: simulated devices + a local Junction + the gateway, in one process.

Nothing leaves the machine: the simulated BlueZ runs on a private dbus-daemon, the Junction
stub on 127.0.0.1, and the gateway reads, stores and uploads exactly as it would for real.
"""

import asyncio
import contextlib
import logging
import os
import signal
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from drivers.bleak_link import BleakRadio
from drivers.simulator.daemon import PrivateBus
from drivers.simulator.runner import start_simulator
from drivers.simulator.scenario import ScaleDevice, Scenario, builtin_scenario
from gateway.api.queries import reading_counts
from gateway.commands.common import fail
from gateway.config import (
    ApiSettings,
    Binding,
    JunctionSettings,
    KioskSettings,
    MqttSettings,
    Settings,
)
from gateway.failures import GatewayFailureError
from gateway.mqtt.broker import BrokerError, LocalBroker
from gateway.pairing import BlePairing
from gateway.runtime import Gateway, build_gateway
from gateway.store import aio, kiosk
from gateway.store import users as user_store
from sync.junction.stub import create_app
from sync.junction.stub_server import StubServer

DEMO_USER = "demo-patient"
DEMO_USER_NAME = "Demo patient"
DEMO_API_KEY = "sk_demo_local"
# The demo's devices hand over a few days of readings within seconds; this is generous.
ONCE_TIMEOUT_S = 120.0


def expected_samples(scenario: Scenario) -> int:
    """How many samples the stub must hold when every simulated reading was accepted.

    A scale reading with body fat is two samples (body mass and body fat percentage).
    """
    total = 0
    for device in scenario.devices:
        for record in device.records:
            total += 1
            if isinstance(device, ScaleDevice) and getattr(record, "fat_percent", None):
                total += 1
    return total


def demo(
    once: Annotated[
        bool, typer.Option("--once", help="Exit 0 once the stub accepted every reading.")
    ] = False,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Kiosk page / API port.")] = 8080,
    host: Annotated[str, typer.Option(help="Address the page and API listen on.")] = "127.0.0.1",
    data_dir: Annotated[
        Path | None, typer.Option(help="Keep the demo's database here (default: a temp dir).")
    ] = None,
    mqtt: Annotated[
        bool,
        typer.Option(
            "--mqtt",
            help="Also start a local mosquitto on a free loopback port and publish to it "
            "(Home Assistant discovery included).",
        ),
    ] = False,
) -> None:
    """Run the whole gateway against simulated devices and a local Junction stand-in.

    Progress goes to stderr; the closing summary (what Junction accepted) to stdout. Exits 1
    when the kiosk port is taken or (with --once) not every reading arrived in time.
    """
    console = Console(stderr=True)
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="edge-demo-")))
        try:
            bus = stack.enter_context(PrivateBus())
        except Exception as exc:
            raise fail(str(exc)) from exc
        # Bleak reads this for every bus connection it opens: the demo never touches a radio.
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = bus.address
        # The simulated BlueZ has no `bluetoothctl` for Bleak's version probe; its warning
        # ("assuming 5.55+") is right and only noise here.
        logging.getLogger("bleak.backends.bluezdbus.version").setLevel(logging.ERROR)
        mqtt_settings = None
        if mqtt:
            broker_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="edge-mqtt-")))
            try:
                broker = stack.enter_context(LocalBroker(broker_dir))
            except BrokerError as exc:
                raise fail(str(exc)) from exc
            mqtt_settings = MqttSettings(enabled=True, host=broker.host, port=broker.port)
        try:
            ok = asyncio.run(_demo(console, data_dir, host, port, once=once, mqtt=mqtt_settings))
        except GatewayFailureError as exc:
            hint = " (or --port 0 for any free port)" if "taken" in str(exc) else ""
            msg = f"{exc}{hint}"
            raise fail(msg, 1) from exc
    if not ok:
        raise typer.Exit(code=1)


async def _demo(
    console: Console,
    data_dir: Path,
    host: str,
    port: int,
    *,
    once: bool,
    mqtt: MqttSettings | None = None,
) -> bool:
    """Run the demo; True when (with `once`) everything arrived, or the user stopped it."""
    scenario = builtin_scenario()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    simulator = await start_simulator(scenario, os.environ["DBUS_SYSTEM_BUS_ADDRESS"])
    try:
        async with StubServer(create_app(api_key=DEMO_API_KEY, users=[DEMO_USER])) as stub:
            settings = Settings(
                data_dir=data_dir,
                timezone=scenario.timezone,
                junction=JunctionSettings(
                    base_url=stub.base_url,
                    auth_url=stub.auth_url,
                    api_key=SecretStr(DEMO_API_KEY),
                ),
                api=ApiSettings(host=host, port=port),
                bindings=[Binding(device=d.address, user_id=DEMO_USER) for d in scenario.devices],
                mqtt=mqtt or MqttSettings(),
                # The demo's 8-hour session stays while one tries the page (no idle end).
                kiosk=KioskSettings(idle_s=8 * 3600),
            )
            radio = BleakRadio()
            gateway = build_gateway(settings, radio, pairing=BlePairing(radio=radio))
            if mqtt is not None:
                # The binding's label names the person in MQTT topics (never the user id).
                user_store.upsert_user(gateway.db, DEMO_USER, DEMO_USER_NAME)
                console.print(
                    f"MQTT: mosquitto at {mqtt.host}:{mqtt.port}; watch it with "
                    f"[bold]mosquitto_sub -h {mqtt.host} -p {mqtt.port} -t '#' -v[/]"
                )
            kiosk.start_session(gateway.db, DEMO_USER, duration=timedelta(hours=8))
            console.print(
                f"[bold]Edge Gateway demo[/]: {len(scenario.devices)} simulated devices, "
                f"Junction stub at {stub.base_url}"
            )
            started = asyncio.Event()

            def announce(bound: int | None) -> None:
                # Only now: the port is ours, so the link cannot point at another service.
                stops = "" if once else "  (Ctrl-C stops)"
                console.print(f"Kiosk page: [link]http://{host}:{bound}/[/link]{stops}")
                started.set()

            runner = asyncio.create_task(gateway.serve(stop, on_running=announce))
            waiter = asyncio.create_task(started.wait())
            await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if runner.done():
                await runner  # raises the start-up failure
                return False
            expected = expected_samples(scenario)
            readings = sum(len(d.records) for d in scenario.devices) if mqtt else None
            done = await _watch(
                console, stub, gateway, expected, stop, once=once, mqtt_readings=readings
            )
            stop.set()
            await runner
            _summary(stub, scenario, expected)
            if gateway.mqtt is not None:
                Console().print(f"MQTT: {gateway.mqtt.stats.readings} readings published")
            return done or not once
    finally:
        await simulator.stop()


async def _watch(
    console: Console,
    stub: StubServer,
    gateway: Gateway,
    expected: int,
    stop: asyncio.Event,
    *,
    once: bool,
    mqtt_readings: int | None = None,
) -> bool:
    """Show upload progress until everything arrived (with --once) or the user stops.

    With `mqtt_readings`, everything includes that many readings published over MQTT.
    """
    deadline = time.monotonic() + ONCE_TIMEOUT_S
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        stored_bar = progress.add_task("readings stored in SQLite", total=None)
        upload_bar = progress.add_task("samples accepted by Junction", total=expected)
        mqtt_bar = None
        if mqtt_readings is not None:
            mqtt_bar = progress.add_task("readings published over MQTT", total=mqtt_readings)
        while not stop.is_set():
            accepted = len(stub.stub.samples)
            stored = sum((await aio.call(reading_counts, gateway.db)).values())
            progress.update(upload_bar, completed=min(accepted, expected))
            progress.update(stored_bar, completed=stored)
            published = gateway.mqtt.stats.readings if gateway.mqtt is not None else 0
            if mqtt_bar is not None:
                progress.update(mqtt_bar, completed=published)
            if once and accepted >= expected and published >= (mqtt_readings or 0):
                return True
            if once and time.monotonic() > deadline:
                console.print(
                    f"[red]demo: only {accepted} of {expected} readings reached the stub "
                    f"within {ONCE_TIMEOUT_S:.0f} s[/]; run with -v to see why"
                )
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)
    return not once


def _summary(stub: StubServer, scenario: Scenario, expected: int) -> None:
    """What Junction accepted, on stdout; why readings and samples differ in number."""
    counts = Counter(key[1] for key in stub.stub.samples)
    table = Table(title="Accepted by the Junction stub")
    table.add_column("resource")
    table.add_column("samples", justify="right")
    for resource, count in sorted(counts.items()):
        table.add_row(resource, str(count))
    table.add_row("[bold]total[/]", f"[bold]{sum(counts.values())}[/] of {expected}")
    out = Console()
    out.print(table)
    readings = sum(len(device.records) for device in scenario.devices)
    if expected != readings:
        out.print(
            f"{readings} readings became {expected} samples: Junction keeps body fat apart "
            f"from weight, so each of the {expected - readings} scale readings with a body-fat "
            "value is two samples (weight and fat)."
        )


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command()(demo)
