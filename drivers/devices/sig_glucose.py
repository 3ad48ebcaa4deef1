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

Control-solution and HI/LO results are kept and flagged, not dropped. Nothing is deleted on
the meter; the caller disconnects, which some meters take as "transfer complete".
"""

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
from drivers.devices.racp_client import RACP_IDLE_TIMEOUT_S, RacpClient
from drivers.devices.sig import MalformedPackets, SigDriver, read_device_info, with_flags
from drivers.errors import DisconnectedError, ParseError, ProtocolError
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
from drivers.readings import GlucoseReading, ReadingFlag, ReadingKind, stable_reading_id

_LOGGER = logging.getLogger(__name__)


@dataclass
class _Received:
    """A measurement as it arrived, waiting for its context."""

    measurement: GlucoseMeasurement
    received_at: datetime
    context: GlucoseContext | None = None

    @property
    def complete(self) -> bool:
        return self.context is not None or not self.measurement.context_follows


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

    async def collect(self) -> Transfer:
        try:
            await self._prepare()
            records = await self._read_new()
        except DisconnectedError:
            return self._partial()
        return self._transfer(records, complete=True)

    # ------------------------------------------------------------------ phases
    async def _prepare(self) -> None:
        link = self.link
        self.info = await read_device_info(link)
        self.match = self.driver.refine(self.match, self.info, link.name)
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
        if last is None:
            _LOGGER.info("%s: first read, all records", address)
            return await self._report_all()
        count = await self.racp.count(count_greater_or_equal(last), "count of records ≥ cursor")
        if count is None:
            return await self._report_all()
        if count == 0:
            return await self._reset(f"no record at or after sequence {last}")
        _LOGGER.info("%s: %d record(s) at or after sequence %d", address, count, last)
        found = await self.racp.report(report_greater_or_equal(last), "records ≥ cursor")
        records = self._take_stream()
        if found is None:
            return await self._report_all()
        if not found or not records:
            return await self._reset(f"record {last} reported but not sent")
        newer = self._after_anchor(records)
        if newer is None:
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
    def _partial(self) -> Transfer:
        """The link dropped: keep what arrived whole; the cursor stops at its end."""
        records = self._take_stream()
        if records and not records[-1].complete:
            records = records[:-1]  # its context was lost with the link: read it again
        self.notices.append(
            Notice(
                NoticeCode.INCOMPLETE,
                f"{self.link.address}: link dropped after {len(records)} record(s); "
                "the next read resumes from there",
            )
        )
        _LOGGER.warning(
            "%s: link dropped mid-transfer after %d record(s)", self.link.address, len(records)
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
        readings = []
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
        if records and advance:
            last = records[-1]
            cursor = Cursor(last.measurement.sequence, self._id(last))
        elif complete and self.full_read:
            cursor = Cursor()  # the meter is empty: start afresh, no reset next time
        _LOGGER.info(
            "%s: %d glucose record(s), cursor at %s%s",
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
        return stable_reading_id(
            self.link.address, ReadingKind.GLUCOSE, sequence=m.sequence, device_time=m.device_time
        )

    def _reading(self, received: _Received) -> GlucoseReading | None:
        m = received.measurement
        if m.concentration is None or m.unit is None or math.isnan(m.concentration):
            return None
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
