"""The field-case corpus: what real devices were reported to send, and what must come of it.

Each ``*.toml`` file beside this module is one case: the advertisement (and which driver must
claim it, or that none may), the device's behaviour (Device Information, clock, the frames it
sends on each read, in hex as on air) and the readings the gateway must end up with. One test
runs them all, so a new field report becomes a new file. Every case also goes through the
store's row mapping and Junction's mapping, which must not raise.

Keys (all optional except ``title``, ``source`` and ``fault``):

- ``now``: the gateway clock (UTC), ``zone``: the zone device clocks show;
- ``[advert]`` ``name``, ``service_uuids`` (16-bit hex), ``manufacturer_data`` /
  ``service_data`` (hex keys, hex values); ``[claim]`` ``driver``, ``brand``, ``provider``,
  or ``claimed = false``;
- ``[device]`` ``manufacturer``, ``clock`` (the device's Current Time, wall clock);
- ``[[reads]]`` one per connection: glucose ``records = [{ measurement, context? }]`` (the
  meter's memory then), cuffs and scales ``frames = [{ char, hex }]`` (sent in that order);
- ``[[expect]]`` the distinct readings after every read, in order: ``kind``, ``start_date``,
  ``flags`` (exact), ``uploadable``, and any reading attribute by name;
  ``notices_absent`` / ``notices`` list notice codes.
"""

import asyncio
import math
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from drivers.devices.base import (
    Advertisement,
    CollectContext,
    Cursor,
    Driver,
    Transfer,
)
from drivers.devices.registry import default_registry
from drivers.devices.sig_blood_pressure import SigBloodPressureDriver
from drivers.devices.sig_glucose import SigGlucoseDriver
from drivers.devices.sig_scale import SigScaleDriver
from drivers.gatt import uuids
from drivers.gatt.current_time import CurrentTime, build_current_time
from drivers.gatt.racp import RacpOpCode, RacpResponse, RacpResponseCode, parse_racp_request
from drivers.readings import Reading
from drivers.simulator.encoding import encode_racp_response
from drivers.testing import FakeLink
from gateway.store.codec import ReadingColumns, reading_columns, reading_from_db
from gateway.store.types import utc_text
from sync.junction.mapping import build_upload
from sync.outbox import Stage, uploadable

CASES = sorted(Path(__file__).parent.glob("*.toml"))
ADDRESS = "C0:FF:EE:12:12:12"
_CHARS = {
    "2a18": uuids.GLUCOSE_MEASUREMENT,
    "2a34": uuids.GLUCOSE_MEASUREMENT_CONTEXT,
    "2a35": uuids.BLOOD_PRESSURE_MEASUREMENT,
    "2a9d": uuids.WEIGHT_MEASUREMENT,
    "2a9c": uuids.BODY_COMPOSITION_MEASUREMENT,
}


def _hex(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def load_case(path: Path) -> dict[str, Any]:
    case = tomllib.loads(path.read_text(encoding="utf-8"))
    for key in ("title", "source", "fault"):
        assert case.get(key), f"{path.name}: every case names its {key}"
    return case


def advertisement(case: dict[str, Any]) -> Advertisement:
    ad = case.get("advert", {})
    return Advertisement(
        address=ADDRESS,
        name=ad.get("name"),
        service_uuids=tuple(uuids.sig_uuid(int(u, 16)) for u in ad.get("service_uuids", [])),
        manufacturer_data={int(k, 16): _hex(v) for k, v in ad.get("manufacturer_data", {}).items()},
        service_data={
            uuids.sig_uuid(int(k, 16)): _hex(v) for k, v in ad.get("service_data", {}).items()
        },
    )


@dataclass
class ScriptedMeter:
    """A RACP meter holding raw frames; `report` answers like the Glucose Profile asks."""

    records: list[tuple[bytes, bytes | None]]

    def by_sequence(self) -> dict[int, tuple[bytes, bytes | None]]:
        return {int.from_bytes(m[1:3], "little"): (m, c) for m, c in self.records}

    def on_racp(self, link: FakeLink, value: bytes) -> None:
        request = parse_racp_request(value)
        stored = self.by_sequence()
        selected = request.select(stored)
        if request.op_code is RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS:
            response = RacpResponse(
                op_code=RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE,
                number_of_records=len(selected),
            )
            link.notify(uuids.RECORD_ACCESS_CONTROL_POINT, encode_racp_response(response))
            return
        for seq in selected:
            measurement, context = stored[seq]
            link.notify(uuids.GLUCOSE_MEASUREMENT, measurement)
            if context is not None:
                link.notify(uuids.GLUCOSE_MEASUREMENT_CONTEXT, context)
        code = RacpResponseCode.SUCCESS if selected else RacpResponseCode.NO_RECORDS_FOUND
        response = RacpResponse(
            op_code=RacpOpCode.RESPONSE_CODE, request_op_code=request.op_code, response_code=code
        )
        link.notify(uuids.RECORD_ACCESS_CONTROL_POINT, encode_racp_response(response))


def _values(case: dict[str, Any]) -> dict[str, bytes]:
    device = case.get("device", {})
    values = {uuids.MANUFACTURER_NAME: device.get("manufacturer", "Generic").encode()}
    if "clock" in device:
        shown = datetime.fromisoformat(device["clock"])
        values[uuids.CURRENT_TIME] = build_current_time(CurrentTime.from_datetime(shown))
    return values


def link_for(case: dict[str, Any], driver: Driver, read: dict[str, Any]) -> FakeLink:
    name = case.get("advert", {}).get("name")
    values = _values(case)
    if isinstance(driver, SigGlucoseDriver):
        meter = ScriptedMeter(
            [
                (_hex(r["measurement"]), _hex(r["context"]) if "context" in r else None)
                for r in read["records"]
            ]
        )
        return FakeLink(
            ADDRESS,
            name,
            values=values,
            notifiable=(
                uuids.GLUCOSE_MEASUREMENT,
                uuids.GLUCOSE_MEASUREMENT_CONTEXT,
                uuids.RECORD_ACCESS_CONTROL_POINT,
            ),
            on_write={uuids.RECORD_ACCESS_CONTROL_POINT: meter.on_racp},
        )
    frames = [(_CHARS[f["char"]], _hex(f["hex"])) for f in read["frames"]]
    start = (
        uuids.WEIGHT_MEASUREMENT
        if isinstance(driver, SigScaleDriver)
        else uuids.BLOOD_PRESSURE_MEASUREMENT
    )

    def stream(link: FakeLink) -> None:
        for char, value in frames:
            link.notify(char, value)
        link.drop_later()  # cuffs and scales hang up after their last record

    notifiable = {start, *(char for char, _ in frames)}
    return FakeLink(
        ADDRESS, name, values=values, notifiable=notifiable, on_subscribe={start: stream}
    )


def _driver(name: str) -> Driver:
    if name == "sig_scale":
        return SigScaleDriver(idle_s=0.5, total_s=10)
    if name == "sig_blood_pressure":
        return SigBloodPressureDriver(idle_s=0.5, total_s=10)
    return SigGlucoseDriver(racp_timeout_s=2)


async def run_case(case: dict[str, Any]) -> tuple[list[Reading], list[Transfer]]:
    """Every read of the case, as the collector does them; readings deduplicated by id."""
    ad = advertisement(case)
    claim = default_registry().match(ad)
    assert claim is not None, "the device must be claimed to be read"
    driver = _driver(claim.driver.name)
    now = datetime.fromisoformat(case.get("now", "2026-11-20T08:00:00+00:00"))
    stored: dict[str, Reading] = {}
    transfers: list[Transfer] = []
    cursor = Cursor()
    for index, read in enumerate(case.get("reads", [])):
        context = CollectContext(
            match=claim.match,
            historical=index == 0,
            clock=lambda: now,
            zone=case.get("zone", "UTC"),
        )
        transfer = await driver.collect(link_for(case, driver, read), cursor, context)
        transfers.append(transfer)
        cursor = transfer.cursor
        for reading in transfer.readings:
            stored.setdefault(reading.id, reading)
    return list(stored.values()), transfers


def _same(actual: object, expected: object) -> bool:
    if isinstance(expected, float) and isinstance(actual, float):
        return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9)
    if hasattr(actual, "value") and not isinstance(actual, int | float):  # enums
        return bool(actual.value == expected)  # type: ignore[attr-defined]
    return actual == expected


def check_reading(reading: Reading, expected: dict[str, Any], zone: ZoneInfo, where: str) -> None:
    for key, want in expected.items():
        if key == "kind":
            assert reading.kind.value == want, f"{where}: kind"
        elif key == "start_date":
            got = reading.instant(zone)
            assert got == datetime.fromisoformat(want), f"{where}: start_date {got}"
        elif key == "flags":
            assert sorted(f.value for f in reading.flags) == sorted(want), f"{where}: flags"
        elif key == "uploadable":
            assert uploadable(reading) is want, f"{where}: uploadable"
        elif want == "absent":
            assert getattr(reading, key) is None, f"{where}: {key} must be absent"
        elif key == "device_time":
            t = reading.device_time
            assert t is not None, f"{where}: raw device time kept"
            assert [t.year, t.month, t.day, t.hour, t.minute, t.second] == want, where
        else:
            got = getattr(reading, key)
            assert _same(got, want), f"{where}: {key} is {got!r}, expected {want!r}"


def _params() -> list[Any]:
    """One parameter per case; a case with ``pending`` (a known gap, named) must still fail."""
    params = []
    for path in CASES:
        pending = tomllib.loads(path.read_text(encoding="utf-8")).get("pending")
        marks = [pytest.mark.xfail(strict=True, reason=pending)] if pending else []
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


@pytest.mark.parametrize("path", _params())
def test_field_case(path: Path) -> None:
    case = load_case(path)
    ad = advertisement(case)
    expected_claim = case.get("claim")
    if expected_claim is not None:
        claim = default_registry().match(ad)
        if expected_claim.get("claimed", True) is False:
            assert claim is None, f"{path.name}: must not be claimed, got {claim}"
        else:
            assert claim is not None, f"{path.name}: not claimed"
            got = (claim.driver.name, claim.match.brand, claim.match.provider)
            want = (expected_claim["driver"], expected_claim["brand"], expected_claim["provider"])
            assert got == want, f"{path.name}: claim"
    if not case.get("reads"):
        return
    readings, transfers = asyncio.run(run_case(case))
    zone = ZoneInfo(case.get("zone", "UTC"))
    expected = case.get("expect", [])
    assert len(readings) == len(expected), (
        f"{path.name}: {len(readings)} readings, expected {len(expected)}: {readings}"
    )
    for index, (reading, want) in enumerate(zip(readings, expected, strict=True)):
        check_reading(reading, want, zone, f"{path.name} reading {index}")
    notices = {n.code.value for t in transfers for n in t.notices}
    for code in case.get("notices_absent", []):
        assert code not in notices, f"{path.name}: unexpected notice {code}"
    for code in case.get("notices", []):
        assert code in notices, f"{path.name}: missing notice {code}"
    # Nothing a device sent may raise past the driver/store boundary or in the mapping.
    for reading in readings:
        columns = reading_columns(reading, zone)
        # The upload claim's trusted rebuild of the stored row gives the reading back
        # (compared as columns: a NaN value is not == itself, its JSON text is).
        row = [columns[name] for name in ReadingColumns._fields]
        row[ReadingColumns._fields.index("received_at")] = utc_text(reading.received_at)
        rebuilt = reading_from_db(row)
        assert type(rebuilt) is type(reading), path.name
        assert reading_columns(rebuilt, zone) == columns, path.name
        if uploadable(reading):
            build_upload(
                [reading],
                user_id="u1",
                resource=reading.kind,
                provider=reading.provider,
                stage=Stage.DAILY,
                zone=zone,
                time_zone=zone.key,
            )


def test_the_corpus_is_not_empty() -> None:
    assert len(CASES) >= 10
    assert all(load_case(path)["fault"] for path in CASES)
