"""`edge-gateway scan` and `edge-gateway pair`: the Bluetooth side, by hand.

Both talk to whichever BlueZ `DBUS_SYSTEM_BUS_ADDRESS` points at (the real one, or
`edge-gateway simulate`'s), on the adapter from config (``[ble] adapter``).
"""

import asyncio
import json
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from drivers import bleak_link
from drivers.devices.base import Advertisement
from drivers.devices.registry import default_registry
from drivers.errors import LinkError
from gateway.commands.common import ConfigOption, fail, settings_from
from gateway.config import Settings
from gateway.config_check import ADDRESS_PATTERN
from gateway.pairing import BlePairing
from gateway.status import open_existing
from gateway.store import DATABASE_FILENAME, StoreError, device_failures, devices, open_database
from gateway.store.devices import BondState

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
    """List devices in range: kind, brand, RSSI, which driver claims them, whether to pair.

    "needs pairing": "no (paired)" when BlueZ holds a bond; "yes" when the gateway's last
    read of it was refused for want of one (see `edge-gateway status`); "not paired"
    otherwise (many cuffs and meters need a bond before they hand over readings).
    """
    settings = settings_from(config)
    adapter = settings.ble.adapter
    typer.echo(f"listening for {timeout:g} s on {adapter}…", err=True)
    try:
        adverts = asyncio.run(bleak_link.scan(timeout, adapter=adapter))
    except LinkError as exc:
        raise fail(str(exc), FAILED) from exc
    rows = [ScanRow.of(a) for a in adverts]
    if claimed_only:
        rows = [r for r in rows if r.driver is not None]
    pairing = asyncio.run(_pairing_needs([r.address for r in rows], adapter, settings))
    if as_json:
        typer.echo(json.dumps([{**_as_dict(r), "needs_pairing": pairing[r.address]} for r in rows]))
        return
    table = Table(title=f"{len(rows)} device(s) heard in {timeout:g} s")
    # Two lines per device (name under address, brand under kind, slug under driver) keep
    # the table within 80 columns; a long name wraps, it is never cut.
    table.add_column("Device", overflow="fold")
    table.add_column("Kind / brand", no_wrap=True)
    table.add_column("RSSI", justify="right", no_wrap=True)
    table.add_column("Driver / slug", no_wrap=True)
    table.add_column("Needs pairing", no_wrap=True)
    for r in rows:
        table.add_row(
            f"{r.address}\n{r.name or '-'}",
            f"{_KIND_SHORT.get(r.kind or '', r.kind or '-')}\n[dim]{r.brand or '-'}[/]",
            "-" if r.rssi is None else str(r.rssi),
            f"{r.driver}\n[dim]{r.provider}[/]" if r.driver else "no driver",
            _PAIRING_TEXT[pairing[r.address]],
        )
    Console().print(table)


_KIND_SHORT = {"blood_pressure": "BP"}
_PAIRING_TEXT = {"no": "no (paired)", "yes": "yes", "unknown": "not paired"}


async def _pairing_needs(addresses: list[str], adapter: str, settings: Settings) -> dict[str, str]:
    """Per address: "no" (BlueZ holds a bond), "yes" (a read was refused unpaired), "unknown"."""
    refused = _refused_unpaired(settings)
    source = BlePairing(adapter=adapter)
    needs = {}
    for address in addresses:
        bonded = await source.bonded(address)
        if bonded:
            needs[address] = "no"
        else:
            needs[address] = "yes" if address.upper() in refused else "unknown"
    return needs


def _refused_unpaired(settings: Settings) -> set[str]:
    """Devices whose last read the gateway recorded as refused for want of a bond."""
    try:
        db = open_existing(settings.data_dir / DATABASE_FILENAME)
    except StoreError:
        return set()
    try:
        return {f.address for f in device_failures.list_failures(db) if "pair" in f.error.lower()}
    except StoreError:
        return set()
    finally:
        db.close()


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
        advert = asyncio.run(_pair(wanted, pin, timeout, settings.ble.adapter))
    except LinkError as exc:
        raise fail(str(exc), FAILED) from exc
    _remember_bond(settings, advert)
    typer.echo(f"{wanted}: paired")


def _remember_bond(settings: Settings, advert: Advertisement) -> None:
    """Record the bond in the gateway's store, so `status` shows the device as paired.

    A store that cannot be opened (e.g. the running gateway holds it) costs nothing: the
    running gateway refreshes bond states from BlueZ after each read.
    """
    claim = default_registry().match(advert)
    fields: dict[str, Any] = {"name": advert.name} if advert.name else {}
    if claim is not None:
        fields |= {
            "kind": claim.match.kind.value,
            "brand": claim.match.brand,
            "provider": claim.match.provider,
        }
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        db = open_database(settings.data_dir / DATABASE_FILENAME)
    except (StoreError, OSError) as exc:
        typer.echo(f"note: bond not recorded in the store ({exc})", err=True)
        return
    try:
        devices.upsert_device(db, advert.address.upper(), **fields)
        devices.set_bond_state(db, advert.address.upper(), BondState.BONDED)
    except StoreError as exc:
        typer.echo(f"note: bond not recorded in the store ({exc})", err=True)
    finally:
        db.close()


async def _pair(address: str, pin: int | None, find_s: float, adapter: str) -> Advertisement:
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
    return advert


def register(app: typer.Typer) -> None:
    """Add the commands to the root app."""
    app.command()(scan)
    app.command()(pair)
