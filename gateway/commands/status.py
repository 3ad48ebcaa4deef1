"""`edge-gateway status`: devices, stored readings, upload queue and errors at a glance."""

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from drivers.readings import CLOCK_CORRECTION_THRESHOLD_S
from gateway.commands.common import ConfigOption, fail, settings_from
from gateway.health_probe import HealthProbe
from gateway.status import StatusReport, collect_status
from gateway.store import StoreError

# The width when output goes to a pipe or a file (no terminal width): a classic terminal,
# so what a script or a support ticket captures reads the same as on the console.
PIPE_WIDTH = 80
# Exit code when there is no usable database (a config problem exits 2, like other commands).
NO_DATABASE_EXIT = 1
_NONE = "-"  # an unknown value in a table cell


def status(
    config: ConfigOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document for scripts (keys above).")
    ] = False,
) -> None:
    """Show the gateway: adapter and process, devices, readings, upload queue, errors.

    Reads the database in data_dir without changing it, and asks the running gateway's
    /v1/health on the configured API host and port (not running is shown, not an error).
    Shows counts, times, addresses and states only: never a measured value.
    Exit codes: 0 shown; 1 no database yet (run `edge-gateway run` first); 2 config error.

    --json prints one document; times are UTC ISO 8601, null when unknown. Its keys:
    data_dir, database, collected_at, last_sync_at: strings;
    adapter: {name};
    gateway: {url, running, is_gateway, ready, status, checks: {name: bool}, started_at, error};
    devices: list of {address, name, kind, brand, bond_state, last_seen_at, battery_percent,
    clock_skew_s, clock_corrected, last_sequence, readings, uploads_as} (clock_corrected: the
    device clock is more than an hour off, so its readings' instants are corrected by the
    measured skew; uploads_as: the Junction provider slug its readings upload as, "manual"
    for devices of no Junction brand);
    failures: list of {address, name, kind, brand, error, failures, failed_at}: devices whose
    last read failed (seen, perhaps never read), cleared by the next good read;
    readings: {kind: {state: count}}, states unassigned, queued, delivered, dead, local;
    uploads: list of {user_id, resource, queued, due, dead_letters, status, status_at,
    delivered_total, error};
    errors: {dead_letters, holds: {user_id: list of holds}};
    withdrawn: list of {id, device, kind, state, user_id, withdrawn_at}: readings
    `edge-gateway reparse` withdrew (state delivered: Junction has it, deal with it there).
    """
    settings = settings_from(config)
    try:
        report = collect_status(settings)
    except StoreError as exc:
        raise fail(str(exc), code=NO_DATABASE_EXIT) from exc
    if as_json:
        typer.echo(json.dumps(report_document(report), indent=2))
        return
    console = Console()
    if not console.is_terminal:
        console = Console(width=PIPE_WIDTH)
    render(console, report)


def report_document(report: StatusReport) -> dict[str, Any]:
    """The `--json` document: stable keys, times as UTC ISO 8601 strings."""
    gateway = report.gateway
    return {
        "data_dir": str(report.data_dir),
        "database": str(report.database),
        "collected_at": _iso(report.collected_at),
        "last_sync_at": _iso(report.last_sync_at),
        "adapter": {"name": report.adapter},
        "gateway": {
            "url": gateway.url,
            "running": gateway.running,
            "is_gateway": gateway.is_gateway,
            "ready": gateway.ready,
            "status": gateway.status,
            "checks": gateway.checks,
            "started_at": _iso(gateway.started_at),
            "error": gateway.error,
        },
        "devices": [
            {
                "address": d.address,
                "name": d.name,
                "kind": d.kind,
                "brand": d.brand,
                "bond_state": d.bond_state,
                "last_seen_at": _iso(d.last_seen_at),
                "battery_percent": d.battery_percent,
                "clock_skew_s": d.clock_skew_s,
                "clock_corrected": _clock_corrected(d.clock_skew_s),
                "last_sequence": d.last_sequence,
                "readings": d.readings,
                "uploads_as": d.uploads_as,
            }
            for d in report.devices
        ],
        "failures": [
            {
                "address": f.address,
                "name": f.name,
                "kind": f.kind,
                "brand": f.brand,
                "error": f.error,
                "failures": f.failures,
                "failed_at": _iso(f.failed_at),
            }
            for f in report.failures
        ],
        "readings": report.readings,
        "uploads": [
            {
                "user_id": s.user_id,
                "resource": s.resource,
                "queued": s.queued,
                "due": s.due,
                "dead_letters": s.dead_letters,
                "status": s.status,
                "status_at": _iso(s.status_at),
                "delivered_total": s.delivered_total,
                "error": s.error,
            }
            for s in report.streams
        ],
        "errors": {"dead_letters": report.dead_letters, "holds": report.holds},
        "withdrawn": [
            {
                "id": w.id,
                "device": w.device,
                "kind": w.kind,
                "state": w.state,
                "user_id": w.user_id,
                "withdrawn_at": _iso(w.withdrawn_at),
            }
            for w in report.withdrawn
        ],
    }


def render(console: Console, report: StatusReport) -> None:
    """Print the report as a few rich tables."""
    now = report.collected_at
    console.print(f"[bold]Adapter[/] {report.adapter}    [bold]Data[/] {report.database}")
    console.print(f"[bold]Gateway[/] {_gateway_line(report.gateway, now)}")
    console.print(_devices_table(report, now))
    for line in _device_notes(report):
        console.print(line)
    if report.failures:
        console.print(_failures_table(report, now))
    console.print(_readings_table(report))
    console.print(_uploads_table(report, now))
    console.print(f"[bold]Last sync[/] {_last_sync(report, now)}")
    console.print(_errors_line(report))
    if report.withdrawn:
        console.print(_withdrawn_table(report, now))


def _withdrawn_table(report: StatusReport, now: datetime) -> Table:
    """Readings `reparse` withdrew; delivered ones are already at Junction."""
    table = Table(
        title=f"Withdrawn readings ({len(report.withdrawn)}; see `edge-gateway reparse`)",
        title_justify="left",
    )
    table.add_column("reading", overflow="fold")
    table.add_column("device, kind", no_wrap=True)
    table.add_column("state, when", no_wrap=True)
    for w in report.withdrawn:
        table.add_row(
            w.id,
            f"{w.device}\n[dim]{w.kind}[/]",
            f"{w.state}\n[dim]{_ago(w.withdrawn_at, now)}[/]",
        )
    return table


def _gateway_line(probe: HealthProbe, now: datetime) -> str:
    if not probe.running:
        return f"[yellow]not running[/] ({probe.error or 'nothing answers'} at {probe.url})"
    if not probe.is_gateway:
        return f"[red]port taken[/]: {probe.error} ({probe.url})"
    failing = sorted(name for name, ok in probe.checks.items() if not ok)
    readiness = "[green]ready[/]" if probe.ready else f"[red]not ready[/] ({', '.join(failing)})"
    since = f", started {_when(probe.started_at, now)}" if probe.started_at else ""
    return f"running, {readiness} at {probe.url}{since}"


_KIND_SHORT = {"blood_pressure": "BP"}  # keeps the devices table within 80 columns


def _devices_table(report: StatusReport, now: datetime) -> Table:
    # Two lines per device (name under address, brand under kind, last seen under bond)
    # keep it within 80 columns without cutting anything.
    table = Table(title=f"Devices ({len(report.devices)})", title_justify="left")
    table.add_column("device", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("bond, seen", no_wrap=True)
    for name in ("battery", "clock", "readings"):
        table.add_column(name, justify="right", no_wrap=True)
    for d in report.devices:
        table.add_row(
            # "as manual": the device has no Junction slug of its own (a fallback)
            f"{d.address}\n[dim]{d.name or _NONE}[/]\n[dim]as {_slug(d.uploads_as)}[/]",
            f"{_KIND_SHORT.get(d.kind or '', d.kind or _NONE)}\n[dim]{d.brand or _NONE}[/]",
            f"{d.bond_state}\n[dim]{_ago(d.last_seen_at, now)}[/]",
            _NONE if d.battery_percent is None else f"{d.battery_percent} %",
            _skew_text(d.clock_skew_s),
            str(d.readings),
        )
    return table


def _device_notes(report: StatusReport) -> list[str]:
    """What to do next for a device that is paired but was never read."""
    return [
        f"{d.address}: paired; start `edge-gateway run` to read it"
        for d in report.devices
        if d.bond_state == "bonded" and d.readings == 0 and not report.gateway.running
    ]


def _failures_table(report: StatusReport, now: datetime) -> Table:
    table = Table(title=f"Failed reads ({len(report.failures)})", title_justify="left")
    table.add_column("device", no_wrap=True)
    table.add_column("failed", no_wrap=True)
    table.add_column("last error (and what to do)")
    for f in report.failures:
        table.add_row(
            f"{f.address}\n[dim]{f.name or f.kind or _NONE}[/]",
            f"{f.failures} times\n{_ago(f.failed_at, now)}",
            f.error,
        )
    return table


def _ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "never"
    return _when(value, now).split("(", 1)[1].rstrip(")")


def _clock_corrected(skew_s: float | None) -> bool:
    """Whether readings of a device with this skew get `ReadingFlag.CLOCK_CORRECTED`."""
    return skew_s is not None and abs(skew_s) > CLOCK_CORRECTION_THRESHOLD_S


def _skew_text(skew_s: float | None) -> str:
    if skew_s is None:
        return _NONE
    text = f"{skew_s:+.0f} s"
    return f"{text}\n(corrected)" if _clock_corrected(skew_s) else text


def _slug(slug: str | None) -> str:
    """The upload slug; ``manual`` (no Junction brand) is what a fallback looks like."""
    return _NONE if slug is None else slug


def _readings_table(report: StatusReport) -> Table:
    states = ("unassigned", "queued", "delivered", "dead", "local")
    table = Table(title="Readings stored", title_justify="left")
    table.add_column("kind")
    for name in ("total", *states):
        table.add_column(name, justify="right")
    for kind, by_state in report.readings.items():
        table.add_row(kind, str(sum(by_state.values())), *(str(by_state.get(s, 0)) for s in states))
    return table


def _uploads_table(report: StatusReport, now: datetime) -> Table:
    table = Table(title="Upload queue", title_justify="left")
    table.add_column("user", overflow="fold")
    table.add_column("resource", no_wrap=True)
    for name in ("queued", "due", "dead", "sent"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("last status", overflow="fold")  # an error's name whole, not "ConnectE…"
    table.add_column("at", no_wrap=True)
    for s in report.streams:
        last = s.status or _NONE
        if s.error:
            last = f"{last}: {s.error}"
        table.add_row(
            s.user_id,
            s.resource,
            str(s.queued),
            str(s.due),
            str(s.dead_letters),
            str(s.delivered_total),
            last,
            _ago(s.status_at, now),
        )
    return table


def _last_sync(report: StatusReport, now: datetime) -> str:
    """When the uploader last tried, and how that went if it failed (not "22 s ago" alone)."""
    latest = report.last_sync
    text = _when(report.last_sync_at, now)
    if latest is not None and latest.error:
        text += f" [red](failed: {escape(latest.error)})[/]"
        if not any(s.delivered_total for s in report.streams):
            text += "; nothing delivered yet"
    return text


def _errors_line(report: StatusReport) -> str:
    holds = "; ".join(f"{user}: {', '.join(h)}" for user, h in report.holds.items())
    dead = report.dead_letters
    colour = "red" if dead or holds else "green"
    line = f"[bold]Errors[/] [{colour}]{dead} dead letter{'s' if dead != 1 else ''}[/]"
    if holds:
        line += f"; [red]holds[/] {holds}"
    else:
        line += "; no holds"
    return line


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _when(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "never"
    age = max(0.0, (now - value).total_seconds())
    if age < 60:
        ago = f"{age:.0f} s ago"
    elif age < 3600:
        ago = f"{age / 60:.0f} min ago"
    elif age < 86400:
        ago = f"{age / 3600:.1f} h ago"
    else:
        ago = f"{age / 86400:.1f} d ago"
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z ({ago})"


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command()(status)
