"""What the sink publishes of a reading: one value per measure, in Home Assistant's units.

Units come from `sync.junction.mapping` (DESIGN.md §4 "Units": converted in one place); only
glucose in mg/dL is derived here, from the same constants, because Home Assistant owners in
mg/dL countries expect it. Each measure carries the Home Assistant sensor metadata that the
discovery config declares: `device_class` and `unit_of_measurement` from Home Assistant's
sensor device classes ("Sensor" integration, "Device class"), `state_class: measurement`.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

from drivers.readings import (
    BloodPressureReading,
    BodyReading,
    GlucoseReading,
    GlucoseUnit,
    KetoneReading,
    Reading,
    ReadingKind,
)
from sync.junction.mapping import (
    MG_DL_PER_KG_L,
    MG_DL_PER_MMOL_L,
    MMOL_L_PER_MOL_L,
    glucose_mmol_per_l,
    mass_kg,
    pressure_mmhg,
)

MG_DL = "mg/dL"
MMOL_L = "mmol/L"


@dataclass(frozen=True, slots=True)
class Measure:
    """One Home Assistant sensor of a reading kind.

    Attributes:
        key: Topic level and object id (``systolic``).
        name: Entity name shown in Home Assistant.
        kind: The reading kind it comes from.
        unit: `unit_of_measurement`.
        device_class: Home Assistant sensor device class, or None where none fits
            (blood pressure is not the `pressure` class: that one converts to hPa).
        precision: `suggested_display_precision` (decimals shown).
        icon: An mdi icon for measures without a device class.
        value: Reading → value in `unit`, or None when the reading lacks it.
    """

    key: str
    name: str
    kind: ReadingKind
    unit: str
    device_class: str | None
    precision: int
    icon: str | None
    value: Callable[[Reading], float | None]


def _bp(field: str) -> Callable[[Reading], float | None]:
    def get(reading: Reading) -> float | None:
        if not isinstance(reading, BloodPressureReading):
            return None
        return pressure_mmhg(getattr(reading, field), reading.unit)

    return get


def _pulse(reading: Reading) -> float | None:
    return reading.pulse_bpm if isinstance(reading, BloodPressureReading) else None


def _weight(reading: Reading) -> float | None:
    if not isinstance(reading, BodyReading) or reading.weight is None:
        return None
    return mass_kg(reading.weight, reading.unit)


def _fat(reading: Reading) -> float | None:
    return reading.fat_percent if isinstance(reading, BodyReading) else None


def _ketone(reading: Reading) -> float | None:
    return reading.concentration_mmol_l if isinstance(reading, KetoneReading) else None


def glucose_mg_per_dl(concentration: float, unit: GlucoseUnit) -> float:
    """A Glucose Measurement concentration in mg/dL (1 decimal: meters resolve 1 mg/dL)."""
    if unit is GlucoseUnit.KG_PER_L:
        return round(concentration * MG_DL_PER_KG_L, 1)
    return round(concentration * MMOL_L_PER_MOL_L * MG_DL_PER_MMOL_L, 1)


def _glucose(unit: str) -> Callable[[Reading], float | None]:
    def get(reading: Reading) -> float | None:
        if not isinstance(reading, GlucoseReading):
            return None
        if unit == MG_DL:
            return glucose_mg_per_dl(reading.concentration, reading.unit)
        return glucose_mmol_per_l(reading.concentration, reading.unit)

    return get


def measures(glucose_unit: str) -> tuple[Measure, ...]:
    """Every measure, with glucose in `glucose_unit` (``"mg/dL"`` or ``"mmol/L"``)."""
    glucose_precision = 0 if glucose_unit == MG_DL else 1
    return (
        Measure(
            "glucose",
            "Glucose",
            ReadingKind.GLUCOSE,
            glucose_unit,
            "blood_glucose_concentration",
            glucose_precision,
            None,
            _glucose(glucose_unit),
        ),
        Measure(
            "systolic",
            "Systolic",
            ReadingKind.BLOOD_PRESSURE,
            "mmHg",
            None,
            0,
            "mdi:heart-pulse",
            _bp("systolic"),
        ),
        Measure(
            "diastolic",
            "Diastolic",
            ReadingKind.BLOOD_PRESSURE,
            "mmHg",
            None,
            0,
            "mdi:heart-pulse",
            _bp("diastolic"),
        ),
        Measure("pulse", "Pulse", ReadingKind.BLOOD_PRESSURE, "bpm", None, 0, "mdi:heart", _pulse),
        Measure("weight", "Weight", ReadingKind.BODY, "kg", "weight", 2, None, _weight),
        Measure("body_fat", "Body fat", ReadingKind.BODY, "%", None, 1, "mdi:scale-bathroom", _fat),
        # Home Assistant has no ketone device class; mmol/L is what meters and people use.
        Measure("ketone", "Ketone", ReadingKind.KETONE, "mmol/L", None, 1, "mdi:water", _ketone),
    )


def values_of(reading: Reading, table: tuple[Measure, ...]) -> dict[str, float]:
    """The reading's finite values by measure key (a NaN or ±INF special is left out)."""
    values: dict[str, float] = {}
    for measure in table:
        if measure.kind is not reading.kind:
            continue
        value = measure.value(reading)
        if value is not None and math.isfinite(value):
            values[measure.key] = value
    return values
