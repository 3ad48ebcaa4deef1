"""`reparse`: stored frames through today's drivers (playback of real Bleak recordings)."""

import dataclasses
import json
import signal
import sqlite3
import subprocess
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from drivers.bleak_link import BleakRadio
from drivers.devices import sig_glucose
from drivers.devices.base import Advertisement
from drivers.devices.registry import default_registry
from drivers.gatt import uuids
from gateway.collector import Collector, DeviceState
from gateway.reparse import Outcome, reparse_transfer
from gateway.store import DATABASE_FILENAME, Database, open_database
from gateway.store.frames import list_transfers
from gateway.store.readings import get_reading
from gateway.store.users import bind
from tests.drivers.simulator.scenarios import METER, meter
from tests.gateway.e2e import (
    EDGE_GATEWAY,
    gateway_env,
    junction_stub,
    simulator,
    start_gateway,
    wait_for,
    write_config,
)
from tests.privacy import measured_values_in

ZONE = ZoneInfo("UTC")
ADVERT = Advertisement(METER, "meter+00012345", service_uuids=(uuids.GLUCOSE_SERVICE,))


async def _read_meter(db: Database) -> None:
    collector = Collector(
        db=db, registry=default_registry(), radio=BleakRadio(attempts=1), zone=ZONE
    )
    claim = collector.registry.match(ADVERT)
    assert claim is not None
    await collector.read_once(
        claim.driver, claim.match, DeviceState(claim, ADVERT, datetime.now(UTC))
    )


def _wrong_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """The parser as it was before two fixes: ketones taken for glucose, values doubled."""
    real = sig_glucose.parse_glucose_measurement

    def doubled(value: bytes):
        m = real(value)
        return dataclasses.replace(m, concentration=m.concentration * 2)

    monkeypatch.setattr(sig_glucose, "parse_glucose_measurement", doubled)
    monkeypatch.setattr(sig_glucose._Received, "is_ketone", property(lambda _self: False))


@pytest.mark.parametrize("scenario", [meter(6)])
async def test_playback_of_a_recorded_transfer_gives_the_same_readings(simulator, tmp_path):
    db = open_database(tmp_path / DATABASE_FILENAME)
    try:
        await _read_meter(db)
        (transfer,) = list_transfers(db)
        outcome = await reparse_transfer(db, transfer, default_registry(), zone=ZONE)
    finally:
        db.close()
    assert outcome.error is None
    assert outcome.unmatched == 0
    assert [r.outcome for r in outcome.readings] == [Outcome.UNCHANGED] * 6
    # Receive times come from the recording's clock: within the transfer, not "now".
    for r in outcome.readings:
        assert r.reading is not None
        assert abs((r.reading.received_at - transfer.header.started_at).total_seconds()) < 5


SCENARIO = f"""
[[devices]]
kind = "glucose"
address = "{METER}"
name = "meter+00012345"
manufacturer = "Roche"
records = [
  {{ seq = 1, time = "2026-11-20T07:30:00", mg_dl = 104 }},
  {{ seq = 2, time = "2026-11-20T08:00:00", ketone_mmol_l = 1.5 }},
  {{ seq = 3, time = "2026-11-20T12:05:00", mg_dl = 131 }},
]
"""


def _samples(url: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/_stub/samples", timeout=5) as response:  # noqa: S310
        return json.loads(response.read())


def _cli(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EDGE_GATEWAY, *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_a_parser_fix_corrects_uploaded_readings_and_withdraws_the_wrong_one(
    tmp_path: Path, bluetoothctl_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    scenario = tmp_path / "meter.toml"
    scenario.write_text(SCENARIO)
    with simulator(scenario) as bus, junction_stub() as stub_url:
        config = write_config(tmp_path, stub_url=stub_url, bindings={METER: "alice"})
        env = gateway_env(bus, bluetoothctl_dir)
        data = tmp_path / "data"
        data.mkdir(exist_ok=True)
        # 1. Read with the wrong parser (in this process, against the simulator's bus).
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus)
        db = open_database(data / DATABASE_FILENAME)
        bind(db, METER, "alice")
        with monkeypatch.context() as patched:
            _wrong_parser(patched)
            await _read_meter(db)
        wrong = {
            r[0]: r
            for r in sqlite3.connect(db.path).execute(
                "SELECT id, kind, values_json FROM reading ORDER BY sequence"
            )
        }
        db.close()
        assert [r[1] for r in wrong.values()] == ["glucose"] * 3
        # 2. The gateway uploads what is stored (wrong values).
        log = tmp_path / "run.log"
        gateway = start_gateway(config, env, log)
        try:
            wait_for(lambda: len(_samples(stub_url)) >= 3, 60, "3 samples at the stub")
        finally:
            gateway.send_signal(signal.SIGTERM)
            assert gateway.wait(timeout=30) == 0, log.read_text()[-3000:]
        first = {s["timestamp"]: s for s in _samples(stub_url)}
        assert all(s["writes"] == 1 for s in first.values())

        # 3. The fixed parser (today's): a dry run shows, changes nothing.
        dry = _cli("reparse", "--dry-run", config=config)
        assert dry.returncode == 0, dry.stderr
        assert dry.stdout.splitlines()[-1] == (
            "totals: 1 transfer(s); 0 unchanged, 2 changed, 1 new, 1 withdrawn; 0 failed"
            " (dry run: nothing written)"
        )
        assert measured_values_in(dry.stdout + dry.stderr, ["104"]) == []  # no measured value
        with sqlite3.connect(data / DATABASE_FILENAME) as conn:
            assert conn.execute("SELECT count(*) FROM reading").fetchone()[0] == 3
        done = _cli("reparse", "--device", METER.lower(), config=config)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        changed = [line.split()[2] for line in lines if line.strip().startswith("changed")]
        withdrawn = [line.split()[2] for line in lines if line.strip().startswith("withdrawn")]
        new = [line.split() for line in lines if line.strip().startswith("new")]
        assert sorted(changed) == sorted(i for i in wrong if i not in withdrawn)
        assert len(withdrawn) == 1
        assert withdrawn[0] in wrong
        assert new[0][1] == "ketone"
        assert done.stdout.splitlines()[-1].startswith(
            "totals: 1 transfer(s); 0 unchanged, 2 changed, 1 new, 1 withdrawn"
        )

        # A second run finds nothing left to do.
        again = _cli("reparse", config=config)
        assert "0 changed, 0 new, 0 withdrawn" in again.stdout
        assert again.stdout.count("  unchanged ") == 3  # each reading has its line

        db = open_database(data / DATABASE_FILENAME)
        try:
            for rid in changed:
                stored = get_reading(db, rid)
                assert stored is not None
                assert stored.state.value == "queued"  # a correction on its way
        finally:
            db.close()
        status = _cli("status", "--json", config=config)
        withdrawn_listed = json.loads(status.stdout)["withdrawn"]
        assert [(w["id"], w["device"], w["kind"], w["state"]) for w in withdrawn_listed] == [
            (withdrawn[0], METER, "glucose", "delivered")
        ]

        # 4. The gateway sends the corrections once, under the same ids.
        gateway = start_gateway(config, env, log)
        try:
            wait_for(lambda: sum(s["writes"] for s in _samples(stub_url)) >= 5, 60, "2 corrections")
        finally:
            gateway.send_signal(signal.SIGTERM)
            assert gateway.wait(timeout=30) == 0, log.read_text()[-3000:]
        after = {s["timestamp"]: s for s in _samples(stub_url)}
    assert after.keys() == first.keys()  # nothing new upstream: the ketone stays local
    rewritten = [t for t in after if after[t]["writes"] == 2]
    assert len(rewritten) == 2
    for t in rewritten:
        assert after[t]["value"] == pytest.approx(first[t]["value"] / 2, abs=0.001)  # mmol/L, 3 dp
    withdrawn_sample = [t for t in after if after[t]["writes"] == 1]
    assert len(withdrawn_sample) == 1


async def test_a_transfer_whose_driver_is_gone_is_reported_and_left_alone(tmp_path):
    from gateway.store.frames import FrameBatch, TransferHeader
    from gateway.store.readings import save_transfer
    from tests.sync.factories import glucose

    db = open_database(tmp_path / DATABASE_FILENAME)
    try:
        header = TransferHeader("t1", METER, "c1", "retired_driver", "0.0.1/1", datetime.now(UTC))
        save_transfer(db, [glucose(1)], zone=ZONE, frames=FrameBatch(header, []))
        (transfer,) = list_transfers(db)
        outcome = await reparse_transfer(db, transfer, default_registry(), zone=ZONE)
        assert outcome.error is not None
        assert "retired_driver" in outcome.error
        assert outcome.readings == ()
        assert get_reading(db, glucose(1).id) is not None
    finally:
        db.close()
