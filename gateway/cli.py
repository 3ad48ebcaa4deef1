"""The `edge-gateway` command line: the root app; commands live in `gateway.commands`."""

import logging
import sys
from importlib import metadata
from typing import Annotated

import typer

from gateway.commands import (
    ble,
    capture,
    config_cmd,
    demo,
    kiosk_cmd,
    reparse,
    run,
    serve_api,
    simulate,
    status,
    stub,
    token,
)

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Edge Gateway: BLE glucose meters, BP cuffs and scales to Junction.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edge-gateway {metadata.version('edge-gateway')}")
        raise typer.Exit


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Edge Gateway: BLE glucose meters, BP cuffs and scales to Junction."""
    del version  # handled by its callback
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        # Each upload and scheduler tick would be an INFO line; the gateway logs its own.
        for chatty in ("httpx", "apscheduler", "uvicorn.access"):
            logging.getLogger(chatty).setLevel(logging.WARNING)


for module in (
    ble,
    capture,
    config_cmd,
    demo,
    kiosk_cmd,
    reparse,
    run,
    serve_api,
    simulate,
    status,
    stub,
    token,
):
    module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
