"""Stored reading rows → the API's `Reading` objects as plain dicts, without the ORM.

The hot read path of `GET /v1/readings` (issue 18): building a `ReadingRow`, the driver's
`Reading` dataclass (its `__post_init__` re-derives time flags) and a pydantic `Reading`
for each of 100 rows cost ~3 ms of a 6.5 ms request. This module turns a DB-API row of
`ROW_COLUMNS` straight into the dict that `gateway.api.schemas.Reading` serialises to, key
for key and in the same order, so `pydantic_core.to_json` of it is byte-identical to
FastAPI's response for the same row (tests/gateway/api/test_reading_rows.py compares the
two over every kind, unit, flag and optional field).

What it relies on, so a change elsewhere shows up in that test rather than in a client:

- instants are stored as `gateway.store.types.utc_text` (fixed-width UTC, microseconds) and
  shown as pydantic shows an aware UTC datetime (``…:05Z``, ``…:05.500000Z``);
- `flags_json` holds the flag values sorted (`gateway.store.codec.reading_columns`), which
  is `sorted(reading.flags)`; a reading is saved with every flag its kind derives;
- values are converted by `sync.junction.mapping` (the one place units are converted) and
  the raw fields are named as `sync.junction.mapping.metadata` names them.
"""

import json
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from drivers.readings import GlucoseUnit, MassUnit, PressureUnit, ReadingKind
from gateway.api.schemas import source_type
from sync.junction import mapping

# The reading columns a row must carry, in this order (prefix them with a table alias if
# the query needs one). `change_seq` is last: the page's cursor.
ROW_COLUMNS = (
    "id", "kind", "user_id", "device", "upload_provider", "start_date", "time_zone",
    "received_at", "updated_at", "withdrawn_at", "state", "sequence", "user_index",
    "clock_skew_s", "flags_json", "values_json", "dt_year", "dt_month", "dt_day", "dt_hour",
    "dt_minute", "dt_second", "dt_offset_minutes", "change_seq",
)  # fmt: skip
ROW_COLUMNS_SQL = ", ".join(ROW_COLUMNS)
CHANGE_SEQ = len(ROW_COLUMNS) - 1  # index of change_seq in a row

_UTC_TEXT_LEN = len("2026-01-01T00:00:00.000000+00:00")
_TYPES = {kind.value: source_type(kind) for kind in ReadingKind}
_ZONES: dict[str, ZoneInfo] = {}
# Enum members by value: a dict lookup, where calling the enum is a slow path per row.
_GLUCOSE_UNITS = {unit.value: unit for unit in GlucoseUnit}
_PRESSURE_UNITS = {unit.value: unit for unit in PressureUnit}
_MASS_UNITS = {unit.value: unit for unit in MassUnit}
# A reading's flags (`flags_json`) take few distinct values: each parsed once, with the
# `raw.flags` text. Bounded, in case a store holds many.
_FLAGS: dict[str, tuple[list[str], str]] = {}
_MAX_FLAG_SETS = 4096


def instant(text: str) -> str:
    """Stored UTC text (`utc_text`) → pydantic's JSON form of the aware UTC datetime.

    Pydantic writes ``YYYY-MM-DDTHH:MM:SS`` plus ``.ffffff`` only when there are
    microseconds, and ``Z`` for UTC; `sync.junction.schemas.instant_text` is the same rule.
    """
    if len(text) == _UTC_TEXT_LEN and text.endswith("+00:00"):
        fraction = text[19:26]
        return text[:19] + ("" if fraction == ".000000" else fraction) + "Z"
    # Not written by utc_text (an older or hand-edited row): parse it like the ORM does.
    value = datetime.fromisoformat(text).astimezone(UTC).isoformat()
    return value.removesuffix("+00:00") + "Z"


def _offset_s(start_text: str, zone_key: str) -> int:
    zone = _ZONES.get(zone_key)
    if zone is None:
        zone = _ZONES[zone_key] = ZoneInfo(zone_key)
    start = datetime.fromisoformat(start_text)
    offset = start.astimezone(zone).utcoffset()
    return 0 if offset is None else int(offset.total_seconds())


def _flags(flags_json: str) -> tuple[list[str], str]:
    known = _FLAGS.get(flags_json)
    if known is None:
        flags: list[str] = json.loads(flags_json)
        known = (flags, ",".join(flags))
        if len(_FLAGS) < _MAX_FLAG_SETS:
            _FLAGS[flags_json] = known
    return known


def _fmt(value: object) -> str:
    # As sync.junction.mapping formats raw values (`format(x, "g")` for floats).
    return format(value, "g") if isinstance(value, float) else str(value)


def _quantity(value: float, unit: str) -> dict[str, Any]:
    # float(): a driver may hand over an int (120 mmHg); `Quantity.value` shows it as 120.0.
    return {"value": float(value), "unit": unit}


def _glucose_values(v: dict[str, Any]) -> dict[str, dict[str, Any]]:
    mmol = mapping.glucose_mmol_per_l(v["concentration"], _GLUCOSE_UNITS[v["unit"]])
    return {"glucose": _quantity(mmol, "mmol/L")}


def _pressure_values(v: dict[str, Any]) -> dict[str, dict[str, Any]]:
    unit = _PRESSURE_UNITS[v["unit"]]
    values = {
        "systolic": _quantity(mapping.pressure_mmhg(v["systolic"], unit), "mmHg"),
        "diastolic": _quantity(mapping.pressure_mmhg(v["diastolic"], unit), "mmHg"),
    }
    if v.get("pulse_bpm") is not None:
        values["pulse"] = _quantity(round(v["pulse_bpm"], 1), "bpm")
    return values


def _body_values(v: dict[str, Any]) -> dict[str, dict[str, Any]]:
    values = {}
    if v.get("weight") is not None:
        values["body_mass"] = _quantity(mapping.mass_kg(v["weight"], _MASS_UNITS[v["unit"]]), "kg")
    if v.get("fat_percent") is not None:
        fat = round(v["fat_percent"], mapping.PERCENT_DECIMALS)
        values["body_fat_percentage"] = _quantity(fat, "%")
    return values


def _ketone_values(v: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"ketone": _quantity(round(v["concentration_mmol_l"], 2), "mmol/L")}


# Per kind: Junction-unit values (as gateway.api.schemas._values), the kind's optional raw
# fields shared by all parts, and its raw value fields (as sync.junction.mapping.metadata:
# (name in `raw`, field of the reading)).
_KIND_VALUES: dict[str, Callable[[dict[str, Any]], dict[str, dict[str, Any]]]] = {
    ReadingKind.GLUCOSE.value: _glucose_values,
    ReadingKind.BLOOD_PRESSURE.value: _pressure_values,
    ReadingKind.BODY.value: _body_values,
    ReadingKind.KETONE.value: _ketone_values,
}
_SHARED_RAW: dict[str, tuple[tuple[str, str], ...]] = {
    ReadingKind.GLUCOSE.value: (
        ("sample_type", "sample_type"),
        ("sample_location", "sample_location"),
        ("sensor_status", "sensor_status"),
        ("meal", "meal"),
    ),
    ReadingKind.BLOOD_PRESSURE.value: (
        ("raw_mean_arterial", "mean_arterial"),
        ("measurement_status", "measurement_status"),
    ),
    ReadingKind.KETONE.value: (
        ("raw_value", "raw_concentration"),
        ("raw_unit", "raw_unit"),
        ("meal", "meal"),
    ),
    ReadingKind.BODY.value: (("bmi", "bmi"), ("raw_height", "height")),
}
_PART_RAW: dict[str, tuple[tuple[str, str], ...]] = {
    ReadingKind.GLUCOSE.value: (("raw_value", "concentration"), ("raw_unit", "unit")),
    ReadingKind.BLOOD_PRESSURE.value: (
        ("raw_unit", "unit"),
        ("raw_systolic", "systolic"),
        ("raw_diastolic", "diastolic"),
    ),
    ReadingKind.BODY.value: (("raw_unit", "unit"), ("raw_weight", "weight")),
    ReadingKind.KETONE.value: (),
}


def reading_dict(row: Sequence[Any]) -> dict[str, Any]:
    """One row of `ROW_COLUMNS` as the API's `Reading` (JSON-ready: strings, numbers, None).

    Raises:
        KeyError: The row's kind or unit is not one this version knows.
        ValueError: The stored zone is not one this version knows.
    """
    (
        reading_id, kind, user_id, device, provider, start_text, zone_key, received_text,
        updated_text, withdrawn_text, state, sequence, user_index, clock_skew_s, flags_json,
        values_json, year, month, day, hour, minute, second, offset_minutes, _seq,
    ) = row  # fmt: skip
    fields: dict[str, Any] = json.loads(values_json)
    flags, flags_text = _flags(flags_json)
    start = instant(start_text)
    received = instant(received_text)
    values = {k: q for k, q in _KIND_VALUES[kind](fields).items() if math.isfinite(q["value"])}
    raw = {"device": device, "received_at": received}
    if year is not None:
        raw["device_time"] = (
            f"{year:04d}-{month or 0:02d}-{day or 0:02d}"
            f"T{hour or 0:02d}:{minute or 0:02d}:{second or 0:02d}"
        )
        if offset_minutes:
            raw["device_time_offset_minutes"] = str(offset_minutes)
    for name, value in (
        ("sequence", sequence),
        ("user_index", user_index),
        ("clock_skew_s", clock_skew_s),
    ):
        if value is not None:
            raw[name] = _fmt(value)
    for name, field in _SHARED_RAW[kind]:
        if fields.get(field) is not None:
            raw[name] = _fmt(fields[field])
    if flags:
        raw["flags"] = flags_text
    for name, field in _PART_RAW[kind]:
        if fields.get(field) is not None:
            raw[name] = _fmt(fields[field])
    return {
        "id": reading_id,
        "kind": kind,
        "user_id": user_id,
        "device": device,
        "provider": provider,
        "start_date": start,
        "end_date": start,
        "time_zone": zone_key,
        "timezone_offset": _offset_s(start_text, zone_key),
        "received_at": received,
        "updated_at": instant(updated_text),
        "withdrawn_at": None if withdrawn_text is None else instant(withdrawn_text),
        "state": state,
        "type": _TYPES[kind],
        "sequence": sequence,
        "user_index": user_index,
        "clock_skew_s": None if clock_skew_s is None else float(clock_skew_s),
        "flags": list(flags),
        "values": values,
        "raw": raw,
    }
