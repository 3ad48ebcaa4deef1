"""Readings → Junction upload bodies. Pure, and the only place units are converted.

Units (junction-digest.md §8, DESIGN.md §3):

- glucose → mmol/L: kg/L * 100 000 = mg/dL, mg/dL ÷ 18.016 = mmol/L; mol/L * 1000 = mmol/L;
- blood pressure → mmHg: kPa * 7.50062; pulse in bpm, nested in the BP sample;
- body mass → kg: lb * 0.45359237; body fat in %.

Instants come from `Reading.instant(zone)` (the one place device wall time becomes UTC) and
are sent as UTC ISO-8601 with ``start_date == end_date``. The raw device fields and flags go
in `metadata` (strings), so nothing the device said is lost. Sample ids are the reading's
stable id (suffixed per component for BP and body), so resends upsert.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from drivers.readings import (
    BloodPressureReading,
    BodyReading,
    GlucoseReading,
    GlucoseUnit,
    KetoneReading,
    MassUnit,
    PressureUnit,
    Reading,
    ReadingFlag,
    ReadingKind,
)
from sync.junction.schemas import instant_text
from sync.outbox import Stage

MG_DL_PER_KG_L = 100_000.0
MMOL_L_PER_MOL_L = 1000.0
MG_DL_PER_MMOL_L = 18.016  # glucose molar mass 180.16 g/mol
MMHG_PER_KPA = 7.50062
KG_PER_LB = 0.45359237

# Rounding keeps float noise out of the wire without losing device resolution:
GLUCOSE_DECIMALS = 3  # meters resolve 0.1 mmol/L or 1 mg/dL (0.055 mmol/L)
PRESSURE_DECIMALS = 2  # cuffs resolve 1 mmHg or 0.1 kPa (0.75 mmHg)
MASS_DECIMALS = 3  # scales resolve 5 g or 0.01 lb (4.5 g)
PERCENT_DECIMALS = 2  # body fat resolves 0.1 %

Json = dict[str, Any]


def glucose_mmol_per_l(concentration: float, unit: GlucoseUnit) -> float:
    """A Glucose Measurement concentration in mmol/L."""
    if unit is GlucoseUnit.MOL_PER_L:
        value = concentration * MMOL_L_PER_MOL_L
    else:
        value = concentration * MG_DL_PER_KG_L / MG_DL_PER_MMOL_L
    return round(value, GLUCOSE_DECIMALS)


def pressure_mmhg(value: float, unit: PressureUnit) -> float:
    """A blood pressure in mmHg."""
    return round(value * MMHG_PER_KPA if unit is PressureUnit.KPA else value, PRESSURE_DECIMALS)


def mass_kg(value: float, unit: MassUnit) -> float:
    """A body mass in kg."""
    return round(value * KG_PER_LB if unit is MassUnit.LB else value, MASS_DECIMALS)


def _fmt(value: object) -> str:
    return format(value, "g") if isinstance(value, float) else str(value)


def metadata(reading: Reading) -> dict[str, str]:
    """Every raw device field and flag of the reading, as strings (the local API's ``raw``)."""
    meta = shared_metadata(reading)
    raw: tuple[tuple[str, object | None], ...] = ()
    if isinstance(reading, GlucoseReading):
        raw = (("raw_value", reading.concentration), ("raw_unit", reading.unit.value))
    elif isinstance(reading, BloodPressureReading):
        raw = (
            ("raw_unit", reading.unit.value),
            ("raw_systolic", reading.systolic),
            ("raw_diastolic", reading.diastolic),
        )
    elif isinstance(reading, BodyReading):
        raw = (("raw_unit", reading.unit.value), ("raw_weight", reading.weight))
    # Set in this order (the API's JSON order); a key shared_metadata set keeps its place.
    for key, value in raw:
        if value is not None:
            meta[key] = _fmt(value)
    return meta


# Per kind, the optional fields `shared_metadata` adds after the common ones: (metadata key,
# reading attribute), in wire order. Looked up by exact class (issue 18: this runs per
# reading while a backlog drains); subclasses go by isinstance.
_OPTIONAL: dict[type[Reading], tuple[tuple[str, str], ...]] = {
    GlucoseReading: (
        ("sample_type", "sample_type"),
        ("sample_location", "sample_location"),
        ("sensor_status", "sensor_status"),
        ("meal", "meal"),
    ),
    BloodPressureReading: (
        ("raw_mean_arterial", "mean_arterial"),
        ("measurement_status", "measurement_status"),
    ),
    KetoneReading: (("raw_value", "raw_concentration"), ("raw_unit", "raw_unit"), ("meal", "meal")),
    BodyReading: (("bmi", "bmi"), ("raw_height", "height")),
}
# Flag set -> its ``flags`` text: a handful of distinct sets (bounded all the same).
_FLAGS_TEXT: dict[frozenset[ReadingFlag], str] = {}
# The last receive time's text: a transfer's readings share one receive time.
_LAST_RECEIVED: tuple[datetime, str] = (datetime.min.replace(tzinfo=UTC), "")


def _optional_fields(reading: Reading) -> tuple[tuple[str, str], ...]:
    fields = _OPTIONAL.get(type(reading))
    if fields is None:
        fields = next((f for cls, f in _OPTIONAL.items() if isinstance(reading, cls)), ())
    return fields


def _received_text(value: datetime) -> str:
    global _LAST_RECEIVED
    last, text = _LAST_RECEIVED
    # Same zone object and equal: the same fields, so the same text (fold is not written).
    if value.tzinfo is not last.tzinfo or value != last:
        text = instant_text(value)
        _LAST_RECEIVED = (value, text)
    return text


def _flags_text(flags: frozenset[ReadingFlag]) -> str:
    text = _FLAGS_TEXT.get(flags)
    if text is None:
        text = ",".join(sorted(flags))
        if len(_FLAGS_TEXT) < 256:
            _FLAGS_TEXT[flags] = text
    return text


def shared_metadata(reading: Reading) -> dict[str, str]:
    """The reading's raw device fields and flags shared by all its parts (string-to-string).

    Uploads add the raw value and unit of each part with `part_metadata`, so every sample
    carries its own (a BP ``pulse`` sample does not claim ``raw_unit: "mmHg"``). Keys come
    in a fixed order (the wire's bytes): device, received_at, device_time(+offset),
    sequence, user_index, clock_skew_s, the kind's own, flags.
    """
    meta = {"device": reading.device, "received_at": _received_text(reading.received_at)}
    t = reading.device_time
    if t is not None:
        meta["device_time"] = (
            f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
        )
        if t.offset_minutes:
            meta["device_time_offset_minutes"] = str(t.offset_minutes)
    if reading.sequence is not None:
        meta["sequence"] = _fmt(reading.sequence)
    if reading.user_index is not None:
        meta["user_index"] = _fmt(reading.user_index)
    if reading.clock_skew_s is not None:
        meta["clock_skew_s"] = _fmt(reading.clock_skew_s)
    for key, name in _optional_fields(reading):
        value = getattr(reading, name)
        if value is not None:
            meta[key] = _fmt(value)
    if reading.flags:
        flags = reading.flags
        meta["flags"] = _flags_text(flags if type(flags) is frozenset else frozenset(flags))
    return meta


def part_metadata(shared: dict[str, str], raw_value: float, raw_unit: str) -> dict[str, str]:
    """`shared` plus one part's value and unit as the device reported them."""
    meta = shared.copy()
    meta["raw_value"] = _fmt(raw_value)
    meta["raw_unit"] = raw_unit
    return meta


class UnmappableReadingError(ValueError):
    """One reading cannot be expressed in Junction's format (e.g. a NaN value).

    Attributes:
        reading_id: The reading concerned.
    """

    def __init__(self, reading_id: str, reason: str) -> None:
        super().__init__(f"reading {reading_id}: {reason}; it is kept as a dead letter")
        self.reading_id = reading_id


def _sample(
    reading: Reading,
    part: str | None,
    value: float,
    unit: str,
    at: str,
    source_type: str,
    meta: dict[str, str],
) -> Json:
    if not math.isfinite(value):
        raise UnmappableReadingError(reading.id, f"{part or unit} value is not a finite number")
    return {
        "id": reading.id if part is None else f"{reading.id}-{part}",
        "value": value,
        "unit": unit,
        "start_date": at,
        "end_date": at,
        "type": source_type,
        "metadata": meta,
    }


def glucose_sample(reading: GlucoseReading, zone: tzinfo) -> Json:
    """One glucose sample, in mmol/L, type ``fingerprick``."""
    at = instant_text(reading.instant(zone))
    value = glucose_mmol_per_l(reading.concentration, reading.unit)
    meta = part_metadata(shared_metadata(reading), reading.concentration, reading.unit.value)
    return _sample(reading, None, value, "mmol/L", at, "fingerprick", meta)


def blood_pressure_sample(reading: BloodPressureReading, zone: tzinfo) -> Json:
    """One ``{systolic, diastolic, pulse?}`` sample, mmHg and bpm, type ``cuff``."""
    at = instant_text(reading.instant(zone))
    meta = shared_metadata(reading)
    sample: Json = {
        part: _sample(
            reading,
            part,
            pressure_mmhg(value, reading.unit),
            "mmHg",
            at,
            "cuff",
            part_metadata(meta, value, reading.unit.value),
        )
        for part, value in (("systolic", reading.systolic), ("diastolic", reading.diastolic))
    }
    if reading.pulse_bpm is not None and math.isfinite(reading.pulse_bpm):  # NaN: not known
        pulse_meta = part_metadata(meta, reading.pulse_bpm, "bpm")
        sample["pulse"] = _sample(
            reading, "pulse", round(reading.pulse_bpm, 1), "bpm", at, "cuff", pulse_meta
        )
    return sample


def body_data(readings: Iterable[BodyReading], zone: tzinfo) -> Json:
    """The body summary's ``{body_mass: [kg], body_fat_percentage: [%]}`` lists."""
    masses: list[Json] = []
    fats: list[Json] = []
    for reading in readings:
        at = instant_text(reading.instant(zone))
        meta = shared_metadata(reading)
        if reading.weight is not None:
            kg = mass_kg(reading.weight, reading.unit)
            mass_meta = part_metadata(meta, reading.weight, reading.unit.value)
            masses.append(_sample(reading, "body_mass", kg, "kg", at, "scale", mass_meta))
        if reading.fat_percent is not None:
            fat = round(reading.fat_percent, PERCENT_DECIMALS)
            fat_meta = part_metadata(meta, reading.fat_percent, "%")
            fats.append(_sample(reading, "body_fat", fat, "%", at, "scale", fat_meta))
    return {"body_mass": masses, "body_fat_percentage": fats}


@dataclass(frozen=True, slots=True)
class Upload:
    """One POST: where to, and the JSON body.

    Attributes:
        path: Path under the API base, e.g. ``/v2/timeseries/u1/glucose``.
        body: The JSON-ready envelope.
        samples: How many readings it carries.
    """

    path: str
    body: Json
    samples: int


def upload_path(user_id: str, resource: ReadingKind) -> str:
    """The ingestion path of a resource (timeseries, or the body summary)."""
    if resource is ReadingKind.BODY:
        return f"/v2/summary/body/{user_id}"
    return f"/v2/timeseries/{user_id}/{resource.value}"


def build_upload(
    readings: Sequence[Reading],
    *,
    user_id: str,
    resource: ReadingKind,
    provider: str,
    stage: Stage,
    zone: tzinfo,
    time_zone: str,
    window: tuple[datetime, datetime] | None = None,
    is_final_chunk: bool = True,
) -> Upload:
    """The POST for a batch of readings of one resource.

    Args:
        readings: The batch; all of kind `resource`.
        user_id: Junction user id.
        resource: The batch's resource.
        provider: Provider slug for the envelope.
        stage: Daily or historical.
        zone: The zone device clocks show.
        time_zone: Its IANA name, sent as the envelope's ``time_zone``.
        window: The historical window (required for the historical stage).
        is_final_chunk: For the historical stage, whether this is the backfill's last chunk.

    Returns:
        The path and body.

    Raises:
        UnmappableReadingError: One reading cannot be mapped (its id is on the error).
        ValueError: A reading is not of kind `resource`, or a historical batch has no window.
    """
    body: Json = {"stage": stage.value, "provider": provider, "time_zone": time_zone}
    if stage is Stage.HISTORICAL:
        if window is None:
            msg = f"historical upload for {user_id}/{resource}: no window; enqueue with one"
            raise ValueError(msg)
        body |= {
            "start_date": instant_text(window[0]),
            "end_date": instant_text(window[1]),
            "is_final_chunk": is_final_chunk,
        }
    if any(r.kind is not resource for r in readings):
        msg = f"batch for {user_id}/{resource} holds another kind; claim one stream per batch"
        raise ValueError(msg)
    if resource is ReadingKind.GLUCOSE:
        body["data"] = [glucose_sample(r, zone) for r in readings if isinstance(r, GlucoseReading)]
    elif resource is ReadingKind.BLOOD_PRESSURE:
        body["data"] = [
            blood_pressure_sample(r, zone) for r in readings if isinstance(r, BloodPressureReading)
        ]
    else:
        body["data"] = body_data((r for r in readings if isinstance(r, BodyReading)), zone)
    return Upload(upload_path(user_id, resource), body, len(readings))
