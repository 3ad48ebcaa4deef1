"""The shared vocabulary every driver emits and every consumer (store, sync, API) reads.

A `Reading` is what a device handed over, kept as the device said it:

- values in the unit the device used (kg/L or mol/L, mmHg or kPa, kg or lb); units are
  converted exactly once, in `sync.junction.mapping`;
- the device's own wall-clock fields (`DeviceTime`), the gateway's receive time (UTC) and the
  measured clock skew; `instant()` is the one place device wall time becomes a UTC instant;
- a stable `id` from `stable_reading_id()`, the same for every re-read of the same record, so
  the store and Junction upsert instead of duplicating.
"""

import dataclasses
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any, Self


class ReadingKind(StrEnum):
    """What was measured; also the Junction resource family."""

    GLUCOSE = "glucose"
    BLOOD_PRESSURE = "blood_pressure"
    BODY = "body"
    KETONE = "ketone"  # blood beta-ketone; Junction has no such resource: kept locally only


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
    # The device clock was measurably wrong (more than an hour off): the instant is the device
    # time minus the measured skew; the raw fields are kept as sent.
    CLOCK_CORRECTED = "clock_corrected"
    # A value that is not a finite, physically possible number (NaN, +-INF, negative, absurd):
    # the record is kept and shown, never sent upstream as a sample.
    VALUE_UNUSABLE = "value_unusable"


# No Bluetooth LE health device can hold a record from before Bluetooth 4.0 (2010): earlier
# years are clocks reset to a factory default (Mi scales 1970, meters 2000).
EARLIEST_DEVICE_YEAR = 2010
# A record stamped more than a year after it was received is a clock error (Fora's bogus 2037
# record when its memory is full), not a measurement. A clock a little ahead is left alone:
# with its skew measured it is corrected, without it the device time is still the best guess.
_FUTURE_SLACK = timedelta(days=366)
# A corrected time must not land after the receive time, give or take any zone offset (UTC+14
# is the largest in use): otherwise the record predates the clock going wrong.
_ZONE_SLACK = timedelta(hours=14, minutes=5)
# Device clocks further off than this are corrected with the measured skew (a clock that
# drifted a few minutes is left alone: its raw time is closer than a skew read seconds apart).
CLOCK_CORRECTION_THRESHOLD_S = 3600.0


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
        """The naive wall-clock time this record stands for, or None if it is unusable.

        Unusable: year 0 ("unknown", Date Time 0x2A08), impossible fields (month 0 or 13 from
        i-SENS meters, glucometerutils #58), a year before `EARLIEST_DEVICE_YEAR` (a clock
        reset to its factory year), or a time that leaves the calendar once its offset and
        any zone are applied (9999-12-31 23:59 +60 min). Never raises.
        """
        raw = self.raw_wall_clock()
        if raw is None or raw.year < EARLIEST_DEVICE_YEAR:
            return None
        return raw

    def raw_wall_clock(self) -> datetime | None:
        """The fields as a naive datetime whatever the year; None if they are no date at all."""
        if self.year == 0:
            return None
        try:
            base = datetime(  # noqa: DTZ001 - device wall time has no zone by definition
                self.year, self.month, self.day, self.hour, self.minute, self.second
            )
            if self.offset_minutes == 0 and 1 < base.year < 9999:
                return base  # the common case: no offset, a day from either end of the calendar
            wall = base + timedelta(minutes=self.offset_minutes)
            # Room for any zone offset, so converting it to UTC later cannot overflow.
            wall - timedelta(days=1), wall + timedelta(days=1)
        except (ValueError, OverflowError, TypeError):
            return None
        return wall

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

    def __post_init__(self) -> None:
        """Add the time and value flags every kind earns the same way (see `time_flags`)."""
        derived = time_flags(self.device_time, self.received_at, self.clock_skew_s)
        if not self.value_usable():
            derived.add(ReadingFlag.VALUE_UNUSABLE)
        if not derived <= self.flags:
            object.__setattr__(self, "flags", self.flags | derived)

    @classmethod
    def trusted(cls, values: Sequence[object]) -> Self:
        """Rebuild a reading from the fields of one that was valid, without re-deriving flags.

        For stores that saved a `Reading` (issue 18: the upload claim rebuilds every queued
        reading). `values` are in `dataclasses.fields(cls)` order and are not checked: given
        the fields of a reading this version built, the result equals ``cls(**fields)``
        (its flags already hold what `__post_init__` derives) at a fifth of the cost.

        Raises:
            ValueError: `values` is not one value per field.
        """
        reading = object.__new__(cls)
        for setter, value in zip(_SETTERS.get(cls) or _setters(cls), values, strict=True):
            setter(reading, value)
        return reading

    @property
    def kind(self) -> ReadingKind:
        """The measurement family; each subclass fixes it."""
        raise NotImplementedError

    def value_usable(self) -> bool:
        """Whether the measured values are finite and physically possible (per kind)."""
        return True

    def instant(self, zone: tzinfo) -> datetime:
        """The UTC instant of the measurement; never raises.

        Device wall time is read in `zone` (the zone the device clocks show, from config).
        With `ReadingFlag.CLOCK_CORRECTED` the measured skew is taken off it. Without a usable
        device time the gateway's receive time stands in, and the reading carries
        `ReadingFlag.NO_DEVICE_TIME`.
        """
        # The receive time only when it stands in, flags looked into only when there are
        # some (a flag's hash is Python code). Issue 18: this runs per reading uploaded.
        flags = self.flags
        if self.device_time is None or (flags and ReadingFlag.NO_DEVICE_TIME in flags):
            return self.received_at.astimezone(UTC)
        wall = self.device_time.raw_wall_clock()
        if wall is None:
            return self.received_at.astimezone(UTC)
        if flags and ReadingFlag.CLOCK_CORRECTED in flags and self.clock_skew_s is not None:
            wall = _corrected(wall, self.clock_skew_s)
            if wall is None:
                return self.received_at.astimezone(UTC)
        try:
            return wall.replace(tzinfo=zone).astimezone(UTC)
        except (OverflowError, ValueError):
            return self.received_at.astimezone(UTC)


# Per reading class, the slot setters of its fields in `dataclasses.fields` order: they write
# a frozen instance's slots as the generated ``__init__`` does (`Reading.trusted`).
_SETTERS: dict[type[Reading], tuple[Callable[[Any, object], None], ...]] = {}


def _setters(cls: type[Reading]) -> tuple[Callable[[Any, object], None], ...]:
    setters = _SETTERS.get(cls)
    if setters is None:
        setters = _SETTERS[cls] = tuple(
            getattr(cls, f.name).__set__ for f in dataclasses.fields(cls)
        )
    return setters


def _corrected(wall: datetime, skew_s: float) -> datetime | None:
    try:
        return wall - timedelta(seconds=skew_s)
    except (OverflowError, ValueError):
        return None


def time_flags(
    device_time: DeviceTime | None, received_at: datetime, skew_s: float | None
) -> set[ReadingFlag]:
    """How a record's device time can be used, as flags (the same rule for every kind).

    - A usable time whose clock was measured within `CLOCK_CORRECTION_THRESHOLD_S`: no flag.
    - A clock measured further off (xDrip corrects meter skew too; a BP cuff's clock reset to
      its factory year, derdilla/blood-pressure-monitor-fl #410): `CLOCK_CORRECTED` when the
      corrected time is plausible (from `EARLIEST_DEVICE_YEAR` on, not after the receive time).
    - Otherwise an unusable or implausible time (none, unknown, impossible fields, factory
      year, far in the future): `NO_DEVICE_TIME`; the raw fields stay on the reading.

    Args:
        device_time: The record's raw clock fields, if any.
        received_at: When the gateway received it (aware).
        skew_s: Device clock minus gateway clock measured during the transfer, if any.
    """
    raw = device_time.raw_wall_clock() if device_time is not None else None
    if raw is None:
        return {ReadingFlag.NO_DEVICE_TIME}
    received = received_at.astimezone(UTC).replace(tzinfo=None)
    if skew_s is not None and math.isfinite(skew_s) and abs(skew_s) > CLOCK_CORRECTION_THRESHOLD_S:
        fixed = _corrected(raw, skew_s)
        if (
            fixed is not None
            and fixed.year >= EARLIEST_DEVICE_YEAR
            and fixed <= received + _ZONE_SLACK
        ):
            return {ReadingFlag.CLOCK_CORRECTED}
    if raw.year < EARLIEST_DEVICE_YEAR or raw > received + _FUTURE_SLACK:
        return {ReadingFlag.NO_DEVICE_TIME}
    return set()


def _finite_in(value: float | None, low: float, high: float, *, optional: bool = True) -> bool:
    """Whether `value` is a finite number in [low, high]; None passes when `optional`.

    `low` is the smallest value a device can resolve, so a sample never rounds to 0.
    """
    if value is None:
        return optional
    return math.isfinite(value) and low <= value <= high


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

    def value_usable(self) -> bool:
        """A finite concentration from 1 mg/dL (0.055 mmol/L) to 10,000 mg/dL (555 mmol/L)."""
        if self.unit is GlucoseUnit.KG_PER_L:
            return _finite_in(self.concentration, 1e-5, 0.1, optional=False)
        return _finite_in(self.concentration, 5.5e-5, 0.555, optional=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class KetoneReading(Reading):
    """A blood beta-ketone result a meter sent through the Glucose Service.

    i-SENS CareSens meters mark one with Glucose Measurement Context meal code 6 and put
    ketone x 10 in the concentration field as mg/dL (tidepool-org/uploader PR #1040), so
    `concentration_mmol_l` is that field in mg/dL divided by 10. The raw glucose-field value
    and unit are kept. Junction has no ketone resource: the gateway stores and shows these
    readings and never uploads them.

    Attributes:
        concentration_mmol_l: Beta-ketone, mmol/L.
        raw_concentration: The Glucose Measurement concentration as sent.
        raw_unit: Its unit flag.
        meal: The context meal code that marked the record (6).
    """

    concentration_mmol_l: float
    raw_concentration: float
    raw_unit: GlucoseUnit
    meal: int | None = None

    @property
    def kind(self) -> ReadingKind:
        """Always ketone."""
        return ReadingKind.KETONE

    def value_usable(self) -> bool:
        """A finite result from 0.1 to 10 mmol/L (Tidepool's bloodKetone range)."""
        return _finite_in(self.concentration_mmol_l, 0.1, 10.0, optional=False)


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

    def value_usable(self) -> bool:
        """Finite pressures from 1 to 400 mmHg (0.1 to 53.3 kPa).

        A pulse that is NaN/NRes/INF means "not known" and counts as absent (never a
        sample); a finite pulse must be from 1 to 400 bpm.
        """
        low, high = (1.0, 400.0) if self.unit is PressureUnit.MMHG else (0.1, 53.3)
        pulse = (
            self.pulse_bpm if self.pulse_bpm is not None and math.isfinite(self.pulse_bpm) else None
        )
        return (
            _finite_in(self.systolic, low, high, optional=False)
            and _finite_in(self.diastolic, low, high, optional=False)
            and _finite_in(pulse, 1.0, 400.0)
        )


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

    def value_usable(self) -> bool:
        """A weight from 0.1 to 1000 kg (0.2 to 2205 lb), a body fat from 0.1 to 100 %.

        Absent values are fine; at least one of the two must be present.
        """
        if self.weight is None and self.fat_percent is None:
            return False
        low, high = (0.1, 1000.0) if self.unit is MassUnit.KG else (0.2, 2205.0)
        return _finite_in(self.weight, low, high) and _finite_in(self.fat_percent, 0.1, 100.0)


def stable_reading_id(
    device: str,
    kind: ReadingKind,
    *,
    sequence: int | None,
    device_time: DeviceTime | None,
    user_index: int | None = None,
    value: float | None = None,
) -> str:
    """The stable id of a device record (DESIGN.md §4 "Nothing doubled").

    Built from the device identity, the kind, the device's sequence number and its raw clock
    fields, so a re-read of the same record gives the same id while a meter whose sequence
    numbers restarted after a reset gives new ids (its records carry other times). Meters whose
    sequence numbers are no identity (TaiDoc numbers newest-first) pass ``sequence=None`` and
    the record's raw `value` instead: device time + value identify the record.

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
    if value is not None:
        parts.append(repr(value))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]
