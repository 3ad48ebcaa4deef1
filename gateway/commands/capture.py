"""`edge-gateway capture export`: a device's recorded conversations, replayable anywhere."""

from typing import Annotated

import typer

from drivers.capture import Capture, CapturedTransfer, anonymise, dumps
from drivers.recording import GattShape
from gateway.commands.common import ConfigOption, fail, settings_from
from gateway.commands.reparse import NO_DATABASE_EXIT, parse_since
from gateway.status import open_existing
from gateway.store import DATABASE_FILENAME, StoreError
from gateway.store.frames import list_transfers, load_frames

app = typer.Typer(no_args_is_help=True, help="Recorded device conversations (captures).")


@app.command("export")
def export(
    address: Annotated[str, typer.Argument(help="The device's Bluetooth address.")],
    config: ConfigOption = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only transfers recorded from this date or instant (config zone)."),
    ] = None,
    keep_identifiers: Annotated[
        bool,
        typer.Option(
            "--keep-identifiers",
            help="Keep the address, serial number and names (for use inside the clinic only).",
        ),
    ] = False,
) -> None:
    """Write a device's recorded conversations to stdout as a capture (TOML).

    The capture holds the advertisement, the GATT database shape, every recorded transfer's
    frames (hex, as on air) and their timing. The address, serial number, System ID and
    names are replaced (digit runs in names become zeros); measured values are kept: treat a
    capture as health data. `edge-gateway simulate --replay FILE` serves the device from it.
    Exit codes: 0 written; 1 no database, or nothing recorded for the device; 2 bad option.
    """
    settings = settings_from(config)
    start = parse_since(since, settings.zone) if since is not None else None
    try:
        db = open_existing(settings.data_dir / DATABASE_FILENAME)
    except StoreError as exc:
        raise fail(str(exc), code=NO_DATABASE_EXIT) from exc
    try:
        transfers = list_transfers(db, device=address, since=start)
        frames = [load_frames(db, t.pk) for t in transfers]
    except StoreError as exc:
        raise fail(str(exc), code=NO_DATABASE_EXIT) from exc
    finally:
        db.close()
    if not transfers:
        msg = (
            f"{address.upper()}: no recorded transfers"
            f"{' since ' + since if since else ''}; read it with `edge-gateway run` first"
            " ([store] record_frames = true)"
        )
        raise fail(msg, code=NO_DATABASE_EXIT)
    last = transfers[-1].header
    context = last.context
    match = context.get("match") or {}
    advert = context.get("advertisement") or {}
    services: dict[str, dict[str, list[str]]] = {}
    for t in transfers:  # the newest shape wins
        shape = GattShape.from_json(t.header.context.get("shape"))
        services.update({s: dict(c) for s, c in shape.services.items()})
    capture = Capture(
        address=last.device,
        name=advert.get("name"),
        kind=str(match.get("kind", "")),
        driver=last.driver,
        brand=str(match.get("brand", "")),
        provider=str(match.get("provider", "")),
        advert=advert,
        services=services,
        transfers=tuple(
            CapturedTransfer(
                started_at=t.header.started_at,
                driver_version=t.header.driver_version,
                zone=str(t.header.context.get("zone", "UTC")),
                historical=bool(t.header.context.get("historical")),
                frames=tuple(f),
            )
            for t, f in zip(transfers, frames, strict=True)
        ),
    )
    if not keep_identifiers:
        capture = anonymise(capture)
    note = "edge-gateway capture: health data (measured values kept)" + (
        "" if keep_identifiers else "; identifiers replaced"
    )
    typer.echo(dumps(capture, note=note), nl=False)


def register(root: typer.Typer) -> None:
    """Add `capture` to the root app."""
    root.add_typer(app, name="capture")
