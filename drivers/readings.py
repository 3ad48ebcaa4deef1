"""The shared vocabulary every driver emits and every consumer (store, sync, API) reads.

A `Reading` is what a device handed over, kept as the device said it:

- values in the unit the device used (kg/L or mol/L, mmHg or kPa, kg or lb); units are
  converted exactly once, in `sync.junction.mapping`;
- the device's own wall-clock fields (`DeviceTime`), the gateway's receive time (UTC) and the
  measured clock skew; `instant()` is the one place device wall time becomes a UTC instant;
- a stable `id` from `stable_reading_id()`, the same for every re-read of the same record, so
  the store and Junction upsert instead of duplicating.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum


class ReadingKind(StrEnum):
    """What was measured; also the Junction resource family."""

    GLUCOSE = "glucose"
    BLOOD_PRESSURE = "blood_pressure"
    BODY = "body"


class GlucoseUnit(StrEnum):
    """Glucose Measurement concentration units (flag bit 2 of 0x2A18)."""

    KG_PER_L = "kg/L"
    MOL_PER_L = "mol/L"


class PressureUnit(StrEnum):
    """Blood pressure units (flag bit 0 of 0x2A35)."""

    MMHG = "mmHg"
    KPA = "kPa"


class MassUnit(StrEnum):
    """Weight units (flag bit 0 of 0x2A9D / 0x2A9C)."""

    KG = "kg"
    LB = "lb"


class ReadingFlag(StrEnum):
    """Facts about a reading that consumers must not silently drop."""

    NO_DEVICE_TIME = "no_device_time"  # timestamped with the gateway's receive time
    CONTROL_SOLUTION = "control_solution"
    HIGH = "high"  # above the meter's range ("HI")
    LOW = "low"  # below the meter's range ("LO")
    BODY_MOVEMENT = "body_movement"
    CUFF_TOO_LOOSE = "cuff_too_loose"
    IRREGULAR_PULSE = "irregular_pulse"
    PULSE_ABOVE_RANGE = "pulse_above_range"
    PULSE_BELOW_RANGE = "pulse_below_range"
    IMPROPER_POSITION = "improper_position"
    DEVICE_FAULT = "device_fault"
    HISTORICAL = "historical"  # came from the first full read of a device's memory


@dataclass(frozen=True, slots=True)
class DeviceTime:
    """A timestamp exactly as the device's clock showed it (no zone, maybe wrong).

    `offset_minutes` is the Glucose Measurement time offset, already part of the record's
    meaning: `wall_clock()` applies it. A year of 0 means the device did not know the date.
    """

    year: int
    month: int
    day: int
    hour: int
    minute: int
    second: int
    offset_minutes: int = 0

    def wall_clock(self) -> datetime | None:
        """The naive wall-clock time this record stands for, or None if it is unknown."""
        if self.year == 0:
            return None
        try:
            base = datetime(  # noqa: DTZ001 - device wall time has no zone by definition
                self.year, self.month, self.day, self.hour, self.minute, self.second
            )
        except ValueError:
            return None
        return base + timedelta(minutes=self.offset_minutes)

    @classmethod
    def from_datetime(cls, value: datetime, offset_minutes: int = 0) -> "DeviceTime":
        """Build from a naive datetime (the simulator and tests)."""
        return cls(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            offset_minutes,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """Fields every reading carries, whatever was measured.

    Attributes:
        id: Stable id from `stable_reading_id`; identical for every re-read of the record.
        device: The device identity (Bluetooth address, upper case).
        provider: Junction provider slug the driver chose (e.g. ``accuchek_ble``).
        received_at: When the gateway received the record (aware, UTC).
        device_time: The device's raw clock fields, or None if the record had none.
        clock_skew_s: Device clock minus gateway clock at read time, if measured.
        sequence: The device's own record number, if it has one.
        user_index: The device's own user slot (BP and scales), if given.
        flags: Facts consumers must keep (see `ReadingFlag`).
    """

    id: str
    device: str
    provider: str
    received_at: datetime
    device_time: DeviceTime | None = None
    clock_skew_s: float | None = None
    sequence: int | None = None
    user_index: int | None = None
    flags: frozenset[ReadingFlag] = field(default_factory=frozenset)

    @property
    def kind(self) -> ReadingKind:
        """The measurement family; each subclass fixes it."""
        raise NotImplementedError

    def instant(self, zone: tzinfo) -> datetime:
        """The UTC instant of the measurement.

        Device wall time is read in `zone` (the zone the device clocks show, from config).
        Without a usable device time the gateway's receive time stands in, and the reading
        carries `ReadingFlag.NO_DEVICE_TIME`.
        """
        wall = self.device_time.wall_clock() if self.device_time else None
        if wall is None:
            return self.received_at.astimezone(UTC)
        return wall.replace(tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class GlucoseReading(Reading):
    """One Glucose Measurement (0x2A18), merged with its Context (0x2A34) if one came."""

    concentration: float
    unit: GlucoseUnit
    sample_type: int | None = None  # SIG Type code (low nibble), e.g. 1 capillary blood
    sample_location: int | None = None  # SIG Sample Location code (high nibble)
    sensor_status: int | None = None  # Sensor Status Annunciation bits, raw
    meal: int | None = None  # Context meal code: 1 before, 2 after, 3 fasting, …

    @property
    def kind(self) -> ReadingKind:
        """Always glucose."""
        return ReadingKind.GLUCOSE


@dataclass(frozen=True, slots=True, kw_only=True)
class BloodPressureReading(Reading):
    """One Blood Pressure Measurement (0x2A35)."""

    systolic: float
    diastolic: float
    mean_arterial: float | None
    unit: PressureUnit
    pulse_bpm: float | None = None
    measurement_status: int | None = None  # raw status bits, decoded into `flags` too

    @property
    def kind(self) -> ReadingKind:
        """Always blood pressure."""
        return ReadingKind.BLOOD_PRESSURE


@dataclass(frozen=True, slots=True, kw_only=True)
class BodyReading(Reading):
    """A scale reading: Weight Measurement (0x2A9D) merged with Body Composition (0x2A9C)."""

    weight: float | None
    unit: MassUnit
    fat_percent: float | None = None
    bmi: float | None = None
    height: float | None = None  # metres when unit is kg, inches when lb

    @property
    def kind(self) -> ReadingKind:
        """Always body."""
        return ReadingKind.BODY


def stable_reading_id(
    device: str,
    kind: ReadingKind,
    *,
    sequence: int | None,
    device_time: DeviceTime | None,
    user_index: int | None = None,
) -> str:
    """The stable id of a device record (DESIGN.md §4 "Nothing doubled").

    Built from the device identity, the kind, the device's sequence number and its raw clock
    fields, so a re-read of the same record gives the same id while a meter whose sequence
    numbers restarted after a reset gives new ids (its records carry other times).

    Returns:
        32 hex characters.
    """
    parts = [device.upper(), kind.value, "" if sequence is None else str(sequence)]
    if device_time is not None:
        t = device_time
        parts.append(
            f"{t.year:04d}{t.month:02d}{t.day:02d}T{t.hour:02d}{t.minute:02d}{t.second:02d}"
            f"{t.offset_minutes:+d}"
        )
    parts.append("" if user_index is None else str(user_index))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]
