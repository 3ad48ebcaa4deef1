"""SIG Glucose Service (0x1808) meters: incremental RACP reads with reset detection.

One transfer:

1. Device Information (brand refinement) and the clock (skew; CTS write if allowed).
2. Subscribe to Glucose Measurement, Context and RACP (StartNotify keeps them in order).
3. With a cursor at sequence S: count records ≥ S. Zero means the meter's highest record is
   below S: it was reset (or replaced), so read everything. Otherwise report records ≥ S; the
   record S itself comes back first and its stable id must equal the cursor's, else the meter
   was reset and refilled past S, and everything is read. Records after S are the new ones.
   Without a cursor, or if the meter cannot filter, read everything; stable ids deduplicate.
4. Measurements that announce a Context are held until it arrives (or the next record).

Field quirks (README "Device quirks"):

- A record is not always glucose: a Context with meal code 6 marks a blood beta-ketone result
  (i-SENS CareSens, tidepool-org/uploader PR #1040), which becomes a `KetoneReading`. Code 6
  is reserved in the Glucose Profile, so every meter's meal 6 is taken as ketone: the safe
  mistake (a glucose kept locally) rather than the dangerous one (a false hypoglycaemia).
  The other Context fields (carbohydrate, tester/health, exercise, medication, HbA1c) annotate
  a glucose result without changing what it is; control solution (type 10 or location 4) is
  flagged.
- Sequence numbers are not always identities: TaiDoc meters (and OEM rebrands) number records
  newest-first, so every number shifts after a new test (xDrip). Such a meter is recognised by
  its brand, or by a report whose times fall as sequence numbers rise (also when the cursor's
  record comes back with another time, which would otherwise look like a reset). It is then
  always read in full, its records identified by device time + value, and no reset is
  reported; the cursor remembers the numbering.

Control-solution and HI/LO results are kept and flagged, not dropped; a record whose value is
not a usable number is kept flagged (`ReadingFlag.VALUE_UNUSABLE`). Nothing is deleted on
the meter; the caller disconnects, which some meters take as "transfer complete".
"""

import itertools
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from drivers.clock import check_clock
from drivers.devices.base import (
    CollectContext,
    Cursor,
    DeviceInfo,
    DeviceMatch,
    Notice,
    NoticeCode,
    Transfer,
)
from drivers.devices.brands import brand_named
from drivers.devices.racp_client import RACP_IDLE_TIMEOUT_S, RacpClient
from drivers.devices.sig import MalformedPackets, SigDriver, read_device_info, with_flags
from drivers.errors import DisconnectedError, LinkTimeoutError, ParseError, ProtocolError
from drivers.gatt import uuids
from drivers.gatt.glucose import (
    GlucoseContext,
    GlucoseMeasurement,
    GlucoseSampleType,
    SampleLocation,
    SensorStatus,
    parse_glucose_context,
    parse_glucose_measurement,
)
from drivers.gatt.racp import count_greater_or_equal, report_all, report_greater_or_equal
from drivers.link import GattLink
from drivers.readings import (
    GlucoseReading,
    GlucoseUnit,
    KetoneReading,
    ReadingFlag,
    ReadingKind,
    stable_reading_id,
)

_LOGGER = logging.getLogger(__name__)

# Glucose Measurement Context meal code i-SENS CareSens meters use for a blood ketone result.
KETONE_MEAL_CODE = 6
# CareSens puts ketone x 10 in the concentration field as mg/dL (uploader PR #1040).
KETONE_MG_DL_PER_MMOL_L = 10.0


@dataclass
class _Received:
    """A measurement as it arrived, waiting for its context."""

    measurement: GlucoseMeasurement
    received_at: datetime
    context: GlucoseContext | None = None

    @property
    def complete(self) -> bool:
        return self.context is not None or not self.measurement.context_follows

    @property
    def is_ketone(self) -> bool:
        """The context marks a blood ketone result, not a glucose one."""
        meal = None if self.context is None else self.context.meal
        return meal is not None and int(meal) == KETONE_MEAL_CODE


@dataclass
class _Stream:
    """What the notification callbacks collect during one report."""

    records: list[_Received] = field(default_factory=list)


class SigGlucoseDriver(SigDriver):
    """Any meter with the SIG Glucose Service and RACP (Accu-Chek, Contour, generic)."""

    name: ClassVar[str] = "sig_glucose"
    kind: ClassVar[ReadingKind] = ReadingKind.GLUCOSE
    service_uuid: ClassVar[str] = uuids.GLUCOSE_SERVICE

    def __init__(self, *, racp_timeout_s: float = RACP_IDLE_TIMEOUT_S) -> None:
        """Set how long the meter may stay silent during a RACP procedure."""
        self.racp_timeout_s = racp_timeout_s

    async def collect(self, link: GattLink, cursor: Cursor, context: CollectContext) -> Transfer:
        """Read the records newer than `cursor` (see the module docstring)."""
        run = _GlucoseRun(self, link, cursor, context)
        return await run.collect()


class _GlucoseRun:
    """The state of one glucose transfer."""

    def __init__(
        self, driver: SigGlucoseDriver, link: GattLink, cursor: Cursor, context: CollectContext
    ) -> None:
        self.driver = driver
        self.link = link
        self.cursor = cursor
        self.context = context
        self.match: DeviceMatch = context.match
        self.info: DeviceInfo | None = None
        self.skew: float | None = None
        self.notices: list[Notice] = []
        self.stream = _Stream()
        self.racp = RacpClient(link, idle_timeout_s=driver.racp_timeout_s)
        self.malformed = MalformedPackets(link.address)
        self.full_read = False  # reading everything (first read, reset, or no filtering)
        self.newest_first = cursor.newest_first  # sequence numbers shift: no identities

    async def collect(self) -> Transfer:
        try:
            await self._prepare()
            records = await self._read_new()
        except DisconnectedError:
            return self._partial("link dropped")
        except LinkTimeoutError:
            # A meter that goes silent mid-report (or a BlueZ that went away under a link it
            # still shows as up): what arrived whole is kept, as after a drop. The meter keeps
            # its records, but one that only sends when its button is pressed would not send
            # them again by itself.
            if not self.stream.records:
                raise
            return self._partial("meter stopped answering")
        return self._transfer(records, complete=True)

    # ------------------------------------------------------------------ phases
    async def _prepare(self) -> None:
        link = self.link
        self.info = await read_device_info(link)
        self.match = self.driver.refine(self.match, self.info, link.name)
        brand = brand_named(self.match.brand)
        if brand is not None and brand.newest_first:
            self.newest_first = True
        check = await check_clock(
            link, self.context.clock_policy, clock=self.context.clock, zone=self.context.zone
        )
        self.skew = check.skew_s
        if check.written:
            self.notices.append(Notice(NoticeCode.CLOCK_SET, f"{link.address}: meter clock set"))
        await link.subscribe(uuids.GLUCOSE_MEASUREMENT, self._on_measurement)
        if link.has_characteristic(uuids.GLUCOSE_MEASUREMENT_CONTEXT):
            await link.subscribe(uuids.GLUCOSE_MEASUREMENT_CONTEXT, self._on_context)
        await link.subscribe(uuids.RECORD_ACCESS_CONTROL_POINT, self.racp.on_indication)

    async def _read_new(self) -> list[_Received]:
        """The records to store, per the incremental strategy."""
        address = self.link.address
        last = self.cursor.last_sequence
        if self.newest_first:
            _LOGGER.info("%s: meter numbers newest-first: all records", address)
            return await self._report_all()
        if last is None:
            _LOGGER.info("%s: first read, all records", address)
            return await self._report_all()
        count = await self.racp.count(count_greater_or_equal(last), "count of records ≥ cursor")
        if count is None:
            return await self._report_all()
        if count == 0:
            return await self._reset(f"no record at or after sequence {last}")
        # The count includes the record at the cursor itself (re-read to check it is still
        # the same meter), so "1" means nothing new: say so, not "1 record" then "0 records".
        _LOGGER.info(
            "%s: %d new record(s) after sequence %d (the meter has %d from it on)",
            address,
            count - 1,
            last,
            count,
        )
        found = await self.racp.report(report_greater_or_equal(last), "records ≥ cursor")
        records = self._take_stream()
        if found is None:
            return await self._report_all()
        if not found or not records:
            return await self._reset(f"record {last} reported but not sent")
        newer = self._after_anchor(records)
        if newer is None:
            if numbered_newest_first(records):
                # Not a reset: the numbers shifted under a new test (TaiDoc).
                _LOGGER.info("%s: meter numbers newest-first; reading all records", address)
                self.newest_first = True
                return await self._report_all()
            return await self._reset(f"record {last} is not the one stored")
        return newer

    async def _reset(self, why: str) -> list[_Received]:
        address = self.link.address
        _LOGGER.warning("%s: meter memory was reset or replaced (%s); reading all", address, why)
        self.notices.append(
            Notice(
                NoticeCode.METER_RESET,
                f"{address}: the meter's records restarted ({why}); read them all again",
            )
        )
        return await self._report_all()

    async def _report_all(self) -> list[_Received]:
        self.full_read = True
        self._take_stream()
        if await self.racp.report(report_all(), "all records") is None:
            msg = (
                f"{self.link.address}: the meter refuses to report its records; it may not be "
                "a standard glucose meter, please report the model"
            )
            raise ProtocolError(msg)
        return self._take_stream()

    # ------------------------------------------------------------------ notifications
    def _on_measurement(self, value: bytes) -> None:
        self.racp.record_arrived()
        try:
            measurement = parse_glucose_measurement(value)
        except ParseError as exc:
            self.malformed.skip("glucose record", exc, value)
            return
        self.stream.records.append(_Received(measurement, self.context.clock()))

    def _on_context(self, value: bytes) -> None:
        self.racp.record_arrived()
        try:
            ctx = parse_glucose_context(value)
        except ParseError as exc:
            self.malformed.skip("glucose context", exc, value)
            return
        # A context belongs to the measurement just before it with the same sequence.
        for received in reversed(self.stream.records[-2:]):
            if received.measurement.sequence == ctx.sequence:
                received.context = ctx
                return
        _LOGGER.debug("%s: context %d without its measurement", self.link.address, ctx.sequence)

    def _take_stream(self) -> list[_Received]:
        records, self.stream = self.stream.records, _Stream()
        return records

    # ------------------------------------------------------------------ results
    def _partial(self, why: str) -> Transfer:
        """The link dropped or the meter went silent: keep what arrived whole, cursor at its end."""
        records = self._take_stream()
        if records and not records[-1].complete:
            records = records[:-1]  # its context was lost with the link: read it again
        self.notices.append(
            Notice(
                NoticeCode.INCOMPLETE,
                f"{self.link.address}: {why} after {len(records)} record(s); "
                "the next read resumes from there",
            )
        )
        _LOGGER.warning(
            "%s: %s mid-transfer after %d record(s)", self.link.address, why, len(records)
        )
        advance = True
        if records and not self.full_read:
            # An incremental report starts with the anchor record; check it before trusting
            # the cursor, and drop it (it is stored already).
            newer = self._after_anchor(records)
            if newer is not None:
                records = newer
            else:
                advance = False  # keep what came; the next read detects the reset again
        return self._transfer(records, complete=False, advance=advance)

    def _after_anchor(self, records: list[_Received]) -> list[_Received] | None:
        """The records after the cursor's own record, or None if it is not among them.

        It comes first from a meter that honours "≥ n"; one that ignores the filter (Fora's
        delta requests are broken) sends it somewhere in the middle.
        """
        for index, received in enumerate(records):
            if self._is_anchor(received):
                return records[index + 1 :]
        return None

    def _is_anchor(self, received: _Received) -> bool:
        """Whether `received` is the record the cursor points at (same sequence and id)."""
        if received.measurement.sequence != self.cursor.last_sequence:
            return False
        # A cursor from before ids were kept has no id: trust the sequence.
        return self.cursor.last_id is None or self._id(received) == self.cursor.last_id

    def _transfer(
        self, records: list[_Received], *, complete: bool, advance: bool = True
    ) -> Transfer:
        if not self.newest_first and self.full_read and numbered_newest_first(records):
            _LOGGER.info("%s: meter numbers its records newest-first", self.link.address)
            self.newest_first = True
        readings: list[GlucoseReading | KetoneReading] = []
        skipped = 0
        for received in records:
            reading = self._reading(received)
            if reading is None:
                skipped += 1
            else:
                readings.append(reading)
        if skipped:
            _LOGGER.info("%s: %d record(s) without a value skipped", self.link.address, skipped)
        unique = tuple({r.id: r for r in readings}.values())
        cursor = self.cursor
        if self.newest_first:
            cursor = Cursor(newest_first=True)  # every read is a full one; ids dedupe
        elif records and advance:
            last = records[-1]
            cursor = Cursor(last.measurement.sequence, self._id(last))
        elif complete and self.full_read:
            cursor = Cursor()  # the meter is empty: start afresh, no reset next time
        _LOGGER.info(
            "%s: %d glucose record(s) taken, cursor at %s%s",
            self.link.address,
            len(unique),
            cursor.last_sequence,
            "" if complete else " (incomplete)",
        )
        return Transfer(
            readings=unique,
            cursor=cursor,
            complete=complete,
            match=self.match,
            device_info=self.info,
            clock_skew_s=self.skew,
            notices=tuple(self.notices),
        )

    def _id(self, received: _Received) -> str:
        m = received.measurement
        kind = ReadingKind.KETONE if received.is_ketone else ReadingKind.GLUCOSE
        if self.newest_first:
            # The number is no identity: device time + value are (xDrip does the same).
            return stable_reading_id(
                self.link.address,
                kind,
                sequence=None,
                device_time=m.device_time,
                value=m.concentration,
            )
        return stable_reading_id(
            self.link.address, kind, sequence=m.sequence, device_time=m.device_time
        )

    def _reading(self, received: _Received) -> GlucoseReading | KetoneReading | None:
        m = received.measurement
        if m.concentration is None or m.unit is None:
            return None  # the record carries no result at all (e.g. a context-only entry)
        if received.is_ketone:
            return self._ketone(received, m.concentration, m.unit)
        return GlucoseReading(
            id=self._id(received),
            device=self.link.address,
            provider=self.match.provider,
            received_at=received.received_at,
            device_time=m.device_time,
            clock_skew_s=self.skew,
            sequence=m.sequence,
            flags=with_flags(glucose_flags(m), self.context),
            concentration=m.concentration,
            unit=m.unit,
            sample_type=None if m.sample_type is None else int(m.sample_type),
            sample_location=None if m.sample_location is None else int(m.sample_location),
            sensor_status=None if m.sensor_status is None else int(m.sensor_status),
            meal=None
            if received.context is None or received.context.meal is None
            else int(received.context.meal),
        )

    def _ketone(self, received: _Received, raw: float, unit: GlucoseUnit) -> KetoneReading:
        """A CareSens ketone result; the vendor encoding is known for mg/dL (kg/L) only."""
        m = received.measurement
        if unit is GlucoseUnit.KG_PER_L and math.isfinite(raw):
            # Rounded to the field's resolution first: 15e-5 kg/L * 1e5 is 15.000000000000002.
            mmol_l = round(raw * 100_000, 6) / KETONE_MG_DL_PER_MMOL_L
        else:
            mmol_l = math.nan  # kept and flagged unusable rather than guessed
        return KetoneReading(
            id=self._id(received),
            device=self.link.address,
            provider=self.match.provider,
            received_at=received.received_at,
            device_time=m.device_time,
            clock_skew_s=self.skew,
            sequence=m.sequence,
            flags=with_flags(glucose_flags(m), self.context),
            concentration_mmol_l=mmol_l,
            raw_concentration=raw,
            raw_unit=unit,
            meal=KETONE_MEAL_CODE,
        )


def numbered_newest_first(records: list[_Received]) -> bool:
    """Whether a report's sequence numbers run against its times (TaiDoc: 0 is the latest).

    Needs two records with usable device times; every step up in sequence must go back in
    time, at least one strictly.
    """
    timed = sorted(
        (r.measurement.sequence, wall)
        for r in records
        if (wall := r.measurement.device_time.wall_clock()) is not None
    )
    if len(timed) < 2:
        return False
    steps = [later[1] - earlier[1] for earlier, later in itertools.pairwise(timed)]
    return all(step.total_seconds() <= 0 for step in steps) and any(
        step.total_seconds() < 0 for step in steps
    )


def glucose_flags(m: GlucoseMeasurement) -> set[ReadingFlag]:
    """Flags a glucose record earns: control solution, out of range, device fault."""
    flags: set[ReadingFlag] = set()
    if (
        m.sample_type is GlucoseSampleType.CONTROL_SOLUTION
        or m.sample_location is SampleLocation.CONTROL_SOLUTION
    ):
        flags.add(ReadingFlag.CONTROL_SOLUTION)
    status = m.sensor_status or SensorStatus(0)
    concentration = m.concentration or 0.0
    if SensorStatus.RESULT_TOO_HIGH in status or concentration == math.inf:
        flags.add(ReadingFlag.HIGH)
    if SensorStatus.RESULT_TOO_LOW in status or concentration == -math.inf:
        flags.add(ReadingFlag.LOW)
    if status & (SensorStatus.GENERAL_DEVICE_FAULT | SensorStatus.SENSOR_MALFUNCTION):
        flags.add(ReadingFlag.DEVICE_FAULT)
    return flags
