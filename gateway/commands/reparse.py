"""`edge-gateway reparse`: re-derive stored readings from their stored frames."""

import asyncio
from datetime import datetime, time
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from drivers.devices.registry import DriverRegistry, default_registry
from gateway.commands.common import ConfigOption, fail, settings_from
from gateway.reparse import Outcome, Totals, TransferOutcome, outcome_lines, reparse
from gateway.status import open_existing
from gateway.store import DATABASE_FILENAME, Database, StoreError, open_database
from gateway.store.frames import StoredTransfer, list_transfers

# Below this many transfers a run is over before a progress bar would help.
PROGRESS_FROM = 20
NO_DATABASE_EXIT = 1


def parse_since(value: str, zone: ZoneInfo) -> datetime:
    """``2026-11-20`` (midnight in `zone`) or an ISO 8601 instant (no offset: `zone`).

    Raises:
        typer.Exit: Not a date (exit 2, one line).
    """
    try:
        if len(value) == 10:
            return datetime.combine(datetime.fromisoformat(value).date(), time(), zone)
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        msg = f"--since {value!r} is not a date; use 2026-11-20 or 2026-11-20T08:00:00+01:00"
        raise fail(msg) from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)


def reparse_command(
    config: ConfigOption = None,
    device: Annotated[
        str | None, typer.Option("--device", help="Only this device (Bluetooth address).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only transfers recorded from this date or instant (config zone)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; write nothing.")
    ] = False,
) -> None:
    """Re-derive stored readings from their stored GATT frames with today's drivers.

    Replays each recorded transfer offline through the driver that read it and prints each
    reading's outcome: unchanged, changed (same id; values, flags, kind or time differ),
    new (an id nothing stored has) or withdrawn (no longer derived), then the totals.
    Without --dry-run, each transfer's changes are written in one transaction: a changed
    reading keeps its id and is queued upstream again as a correction; a withdrawn one is
    marked (listed by `status` and GET /v1/readings?withdrawn=true) and kept. Shows ids and
    field names only, never measured values.
    Exit codes: 0 done; 1 no database yet; 2 bad configuration or option.
    """
    settings = settings_from(config)
    zone = settings.zone
    start = parse_since(since, zone) if since is not None else None
    path = settings.data_dir / DATABASE_FILENAME
    db = _open(path, dry_run=dry_run)
    try:
        transfers = list_transfers(db, device=device, since=start)
        totals = asyncio.run(_run(db, transfers, default_registry(), zone=zone, apply=not dry_run))
    except StoreError as exc:
        raise fail(str(exc), code=NO_DATABASE_EXIT) from exc
    finally:
        db.close()
    typer.echo(totals_line(totals, dry_run=dry_run))


def _open(path: Path, *, dry_run: bool) -> Database:
    try:
        if dry_run or not path.is_file():
            return open_existing(path)
        return open_database(path)
    except StoreError as exc:
        raise fail(str(exc), code=NO_DATABASE_EXIT) from exc


async def _run(
    db: Database,
    transfers: list[StoredTransfer],
    registry: DriverRegistry,
    *,
    zone: ZoneInfo,
    apply: bool,
) -> Totals:
    err = Console(stderr=True)
    with Progress(
        TextColumn("reparse"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=len(transfers) < PROGRESS_FROM or not err.is_terminal,
    ) as progress:
        task = progress.add_task("transfers", total=len(transfers))

        def shown(outcome: TransferOutcome) -> None:
            # stdout; while the bar shows, rich prints it above the bar.
            for line in _lines(outcome):
                typer.echo(line)
            progress.advance(task)

        return await reparse(db, transfers, registry, zone=zone, apply=apply, on_transfer=shown)


def _lines(outcome: TransferOutcome) -> list[str]:
    header = outcome.transfer.header
    lines = outcome_lines(outcome)
    if outcome.error is not None:
        lines.append(f"failed    {outcome.error}")
    if not lines:
        return []
    title = (
        f"transfer {header.id} {header.device} {header.started_at.isoformat(timespec='seconds')}"
        f" (read by {header.driver} {header.driver_version})"
    )
    return [title, *(f"  {line}" for line in lines)]


def totals_line(totals: Totals, *, dry_run: bool) -> str:
    """``totals: 3 transfer(s); 10 unchanged, 2 changed, 1 new, 1 withdrawn; 0 failed``."""
    counts = ", ".join(f"{totals.by_outcome[o]} {o.value}" for o in Outcome)
    tail = " (dry run: nothing written)" if dry_run else ""
    return f"totals: {totals.transfers} transfer(s); {counts}; {totals.failed} failed{tail}"


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command("reparse")(reparse_command)
