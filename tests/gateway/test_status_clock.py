"""`edge-gateway status` says when a device clock is wrong and its readings' times corrected."""

import io
from pathlib import Path

from rich.console import Console

from gateway.commands.status import render, report_document
from gateway.health_probe import HealthProbe
from gateway.status import DeviceStatus, StatusReport


def _device(address: str, skew: float | None) -> DeviceStatus:
    return DeviceStatus(
        address=address,
        name="BP Monitor",
        kind="blood_pressure",
        brand="Generic",
        bond_state="none",
        last_seen_at=None,
        battery_percent=None,
        clock_skew_s=skew,
        last_sequence=None,
        readings=1,
    )


def test_a_clock_over_an_hour_off_is_reported_as_corrected() -> None:
    factory_year = -5.9 * 365 * 86400  # a cuff back at 2021 (derdilla #410)
    report = StatusReport(
        data_dir=Path("/data"),
        database=Path("/data/gateway.sqlite3"),
        adapter="hci0",
        gateway=HealthProbe(url="http://127.0.0.1:8080/v1/health", running=False),
        devices=[_device("C0:FF:EE:00:00:01", factory_year), _device("C0:FF:EE:00:00:02", -4.0)],
    )
    devices = report_document(report)["devices"]
    assert [d["clock_corrected"] for d in devices] == [True, False]
    out = io.StringIO()
    render(Console(file=out, width=80), report)
    assert out.getvalue().count("(corrected)") == 1
