"""The upload bodies' exact bytes and the local API's ``raw`` metadata, pinned.

The mapping and the client were made faster (issue 18: they run per reading while a backlog
drains); what goes on the wire must not change by a byte. `wire_bytes.json` beside this
module holds, for a varied set of readings, the JSON the client sends for each upload (its
``content`` before gzip) and `mapping.metadata` of every reading. Regenerate it only for a
deliberate wire change: ``UPDATE_WIRE_BYTES=1 pytest tests/sync/junction/test_wire_bytes.py``.
"""

import gzip
import json
import math
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import SecretStr

from drivers.readings import (
    BloodPressureReading,
    BodyReading,
    DeviceTime,
    GlucoseReading,
    GlucoseUnit,
    KetoneReading,
    MassUnit,
    PressureUnit,
    Reading,
    ReadingFlag,
    ReadingKind,
)
from sync.junction import mapping
from sync.junction.client import JunctionClient
from sync.outbox import Stage

GOLDEN = Path(__file__).with_name("wire_bytes.json")
ZONE = ZoneInfo("America/New_York")
RECEIVED = datetime(2026, 3, 1, 17, 4, 5, 250_000, tzinfo=UTC)


def varied_readings() -> list[Reading]:
    """Every kind, unit, optional field, flag source and device-time case, deterministic."""
    times: list[tuple[DeviceTime | None, float | None]] = [
        (DeviceTime(2026, 2, 28, 8, 30, 15), None),
        (DeviceTime(2026, 2, 28, 8, 30, 15, offset_minutes=-90), 12.5),
        (None, None),
        (DeviceTime(0, 0, 0, 0, 0, 0), None),
        (DeviceTime(2000, 1, 1, 0, 0, 0), None),
        (DeviceTime(2026, 13, 1, 0, 0, 0), None),
        (DeviceTime(2037, 1, 1, 0, 0, 0), None),
        (DeviceTime(2000, 1, 1, 0, 0, 0), -826_000_000.0),
        (DeviceTime(2026, 3, 8, 2, 30, 0), None),  # a wall time the spring-forward gap skips
        (DeviceTime(2026, 11, 1, 1, 30, 0), -0.25),  # an ambiguous (fall-back) wall time
    ]
    out: list[Reading] = []
    for i, (device_time, skew) in enumerate(times):
        common: dict[str, Any] = {
            "device": f"C0:FF:EE:00:00:{i:02X}",
            "provider": "accuchek_ble",
            "received_at": RECEIVED + timedelta(seconds=i, microseconds=-250_000 * (i % 2)),
            "device_time": device_time,
            "clock_skew_s": skew,
            "sequence": i if i % 3 else None,
            "user_index": i % 4 if i % 2 else None,
        }
        out += [
            GlucoseReading(
                id=f"g{i}",
                concentration=0.00099 + i * 1e-6,
                unit=GlucoseUnit.KG_PER_L,
                sample_type=1,
                sample_location=i % 3 or None,
                sensor_status=0 if i % 2 else None,
                **common,
            ),
            GlucoseReading(
                id=f"gm{i}",
                concentration=0.0061,
                unit=GlucoseUnit.MOL_PER_L,
                meal=2,
                flags=frozenset({ReadingFlag.HISTORICAL, ReadingFlag.HIGH}),
                **common,
            ),
            BloodPressureReading(
                id=f"b{i}",
                systolic=120.0 + i / 3,
                diastolic=80,
                mean_arterial=None,
                unit=PressureUnit.MMHG,
                pulse_bpm=math.nan if i % 2 else 72.0,
                flags=frozenset({ReadingFlag.IRREGULAR_PULSE}),
                **common,
            ),
            BloodPressureReading(
                id=f"bk{i}",
                systolic=16.0,
                diastolic=10.7,
                mean_arterial=12.4,
                unit=PressureUnit.KPA,
                pulse_bpm=61.5 if i % 2 else None,
                measurement_status=4,
                **common,
            ),
            BodyReading(id=f"w{i}", weight=70.25, unit=MassUnit.KG, fat_percent=None, **common),
            BodyReading(
                id=f"wl{i}",
                weight=154.3 if i % 2 else None,
                unit=MassUnit.LB,
                fat_percent=21.75,
                bmi=22.1,
                height=69.5 if i % 2 else None,
                **common,
            ),
            KetoneReading(
                id=f"k{i}",
                concentration_mmol_l=1.2,
                raw_concentration=0.00012,
                raw_unit=GlucoseUnit.KG_PER_L,
                meal=6,
                **common,
            ),
        ]
    return out


def uploads() -> list[mapping.Upload]:
    """Daily and historical uploads of every uploaded kind."""
    readings = [r for r in varied_readings() if r.kind is not ReadingKind.KETONE]
    window = (RECEIVED - timedelta(days=30), RECEIVED.replace(microsecond=0))
    out = []
    for resource in (ReadingKind.GLUCOSE, ReadingKind.BLOOD_PRESSURE, ReadingKind.BODY):
        batch = [r for r in readings if r.kind is resource]
        for stage, chunk, win in (
            (Stage.DAILY, batch, None),
            (Stage.HISTORICAL, batch[:3], window),
        ):
            out.append(
                mapping.build_upload(
                    chunk,
                    user_id="user-1",
                    resource=resource,
                    provider="omron_kiosk" if resource is ReadingKind.BLOOD_PRESSURE else "p",
                    stage=stage,
                    zone=ZONE,
                    time_zone=ZONE.key,
                    window=win,
                    is_final_chunk=resource is ReadingKind.BODY,
                )
            )
    return out


async def sent_bodies(*, gzip_bodies: bool) -> list[bytes]:
    """What the client puts on the wire for each of `uploads()` (gzip undone)."""
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = request.content
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        if "/v2/timeseries/" in request.url.path or "/v2/summary/" in request.url.path:
            seen.append(body)
        return httpx.Response(200, json={})

    client = JunctionClient(
        base_url="http://junction.test",
        api_key=SecretStr("sk_test"),
        transport=httpx.MockTransport(handler),
        gzip_bodies=gzip_bodies,
    )
    try:
        for upload in uploads():
            await client.post("user-1", upload)
    finally:
        await client.aclose()
    return seen


def current() -> dict[str, Any]:
    return {
        "metadata": {r.id: mapping.metadata(r) for r in varied_readings()},
        "bodies": [json.dumps(u.body, separators=(",", ":"), allow_nan=False) for u in uploads()],
    }


@pytest.mark.parametrize("gzip_bodies", [True, False])
async def test_the_client_sends_exactly_the_pinned_bytes(gzip_bodies):
    golden = json.loads(GOLDEN.read_text())
    sent = await sent_bodies(gzip_bodies=gzip_bodies)
    assert [body.decode() for body in sent] == golden["bodies"]


def _write_golden(now: dict[str, Any]) -> None:
    # One line per body and per reading's metadata, so a wire change reads as a small diff.
    lines = ["{", ' "bodies": [']
    lines += [f"  {json.dumps(body)}," for body in now["bodies"]]
    lines[-1] = lines[-1].rstrip(",")
    lines += [" ],", ' "metadata": {']
    lines += [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in now["metadata"].items()]
    lines[-1] = lines[-1].rstrip(",")
    lines += [" }", "}"]
    GOLDEN.write_text("\n".join(lines) + "\n")


def test_the_mapping_gives_exactly_the_pinned_bodies_and_metadata():
    now = current()
    if os.environ.get("UPDATE_WIRE_BYTES"):
        _write_golden(now)
    golden = json.loads(GOLDEN.read_text())
    # Dict order is part of the bytes: compare the text, not the parsed values.
    assert now["bodies"] == golden["bodies"]
    assert json.dumps(now["metadata"]) == json.dumps(golden["metadata"])
