"""`edge-gateway scan` and `edge-gateway pair`: the Bluetooth side, by hand.

Both talk to whichever BlueZ `DBUS_SYSTEM_BUS_ADDRESS` points at (the real one, or
`edge-gateway simulate`'s), on the adapter from config (``[ble] adapter``).
"""

import asyncio
import json
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from drivers import bleak_link
from drivers.devices.base import Advertisement
from drivers.devices.registry import default_registry
from drivers.errors import LinkError
from gateway.commands.common import ConfigOption, fail, settings_from
from gateway.config_check import ADDRESS_PATTERN

# Exit code for "the device or radio said no" (2 is a usage or config error).
FAILED = 1


@dataclass(frozen=True, slots=True)
class ScanRow:
    """One device heard, and what the gateway would make of it."""

    address: str
    name: str | None
    rssi: int | None
    kind: str | None
    brand: str | None
    provider: str | None
    driver: str | None

    @classmethod
    def of(cls, advert: Advertisement) -> "ScanRow":
        """Match `advert` against the registry."""
        claim = default_registry().match(advert)
        match = None if claim is None else claim.match
        return cls(
            address=advert.address,
            name=advert.name,
            rssi=advert.rssi,
            kind=None if match is None else match.kind.value,
            brand=None if match is None else match.brand,
            provider=None if match is None else match.provider,
            driver=None if match is None else match.driver,
        )


def scan(
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to listen.")] = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array on stdout.")] = False,
    claimed_only: Annotated[
        bool, typer.Option("--claimed-only", help="Hide devices no driver claims.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """List devices in range: kind, brand, RSSI, and which driver claims them."""
    settings = settings_from(config)
    try:
        adverts = asyncio.run(bleak_link.scan(timeout, adapter=settings.ble.adapter))
    except LinkError as exc:
        raise fail(str(exc), FAILED) from exc
    rows = [ScanRow.of(a) for a in adverts]
    if claimed_only:
        rows = [r for r in rows if r.driver is not None]
    if as_json:
        typer.echo(json.dumps([_as_dict(r) for r in rows]))
        return
    table = Table(title=f"{len(rows)} device(s) heard in {timeout:g} s")
    for column in ("Address", "Name", "Kind", "Brand", "RSSI", "Claimed by"):
        table.add_column(
            column, justify="right" if column == "RSSI" else "left", no_wrap=column == "Address"
        )
    for r in rows:
        table.add_row(
            r.address,
            r.name or "-",
            r.kind or "-",
            r.brand or "-",
            "-" if r.rssi is None else str(r.rssi),
            f"{r.driver} ({r.provider})" if r.driver else "no driver",
        )
    Console().print(table)


def _as_dict(row: ScanRow) -> dict[str, object]:
    return {
        "address": row.address,
        "name": row.name,
        "rssi": row.rssi,
        "kind": row.kind,
        "brand": row.brand,
        "provider": row.provider,
        "driver": row.driver,
        "claimed": row.driver is not None,
    }


def pair(
    address: Annotated[str, typer.Argument(help="Bluetooth address, AA:BB:CC:DD:EE:FF.")],
    pin: Annotated[
        int | None,
        typer.Option("--pin", min=0, max=999999, help="Passkey or PIN the device shows."),
    ] = None,
    timeout: Annotated[float, typer.Option(min=0.5, help="Seconds to look for the device.")] = 10.0,
    config: ConfigOption = None,
) -> None:
    """Bond with a meter, cuff or scale, answering its passkey or PIN request with --pin."""
    wanted = address.upper()
    if not ADDRESS_PATTERN.match(wanted):
        msg = (
            f"{address!r} is not a Bluetooth address; write it like AA:BB:CC:DD:EE:FF "
            "(`edge-gateway scan` lists them)"
        )
        raise fail(msg)
    settings = settings_from(config)
    try:
        asyncio.run(_pair(wanted, pin, timeout, settings.ble.adapter))
    except LinkError as exc:
        raise fail(str(exc), FAILED) from exc
    typer.echo(f"{wanted}: paired")


async def _pair(address: str, pin: int | None, find_s: float, adapter: str) -> None:
    advert = await bleak_link.find(address, find_s, adapter=adapter)
    if advert is None:
        msg = (
            f"{address}: not advertising within {find_s:g} s; put it in pairing mode (see its "
            "manual), bring it closer and retry"
        )
        raise LinkError(msg)
    claim = default_registry().match(advert)
    hint = bleak_link.PAIR_REMEDY if claim is None else claim.match.pairing_hint
    await bleak_link.pair_device(address, pin, hint=hint, adapter=adapter, find_timeout_s=find_s)


def register(app: typer.Typer) -> None:
    """Add the commands to the root app."""
    app.command()(scan)
    app.command()(pair)
