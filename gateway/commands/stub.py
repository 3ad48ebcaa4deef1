"""`edge-gateway junction-stub`: the local Junction stand-in on 127.0.0.1."""

import sys
from typing import Annotated

import typer
from pydantic import ValidationError

from gateway.commands.common import fail
from sync.junction.stub_faults import Faults
from sync.junction.stub_server import run


def junction_stub(
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port on 127.0.0.1.")] = 8090,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="JUNCTION_STUB_API_KEY", help="Team key accepted as X-Vital-API-Key."),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(help="Inject faults, e.g. --fault rate_limit=0.1 --fault server_error=0.05"),
    ] = None,
) -> None:
    """Serve a faithful local Junction (timeseries, body summary, link, tokens) until Ctrl-C.

    Prints its base URL as the first stdout line.
    """
    try:
        faults = Faults.from_flags(fault or [])
    except (ValueError, ValidationError) as exc:
        message = f"--fault: {exc}"
        raise fail(message) from exc

    def ready(url: str) -> None:
        sys.stdout.write(f"{url}\n")
        sys.stdout.flush()

    run(port, api_key=api_key, faults=faults, on_ready=ready)


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command("junction-stub")(junction_stub)
