"""SIG Blood Pressure Service (0x1810) cuffs: records pushed once indications are on.

Enabling indications on Blood Pressure Measurement is the trigger (and, on Omron, what starts
bonding), so it is the last thing done. The stream ends after 2 s without a record, 30 s in
all, or when the cuff hangs up, which most do after their last record. Cuffs may erase what
they sent: every record is kept, including those without a timestamp (stamped with the receive
time and flagged ``NO_DEVICE_TIME``; Junction's SDK drops them), with the unit (mmHg or kPa),
the user id and every status bit as sent.

A cuff has no record numbers to resume from: the cursor passes through unchanged.
"""

import logging
import math
from datetime import datetime
from typing import ClassVar

from drivers.clock import check_clock
from drivers.devices.base import CollectContext, Cursor, Notice, NoticeCode, Transfer
from drivers.devices.sig import (
    MalformedPackets,
    SigDriver,
    read_device_info,
    unprompted_reading_id,
    user_slot,
    with_flags,
)
from drivers.devices.stream import (
    IDLE_S,
    TOTAL_S,
    Activity,
    StreamEnd,
    stop_taking,
    wait_stream_end,
)
from drivers.errors import DisconnectedError, ParseError
from drivers.gatt import uuids
from drivers.gatt.blood_pressure import (
    BloodPressureMeasurement,
    BloodPressureStatus,
    PulseRateRange,
    parse_blood_pressure_measurement,
)
from drivers.link import GattLink
from drivers.readings import BloodPressureReading, ReadingFlag, ReadingKind

_LOGGER = logging.getLogger(__name__)

_STATUS_FLAGS = (
    (BloodPressureStatus.BODY_MOVEMENT, ReadingFlag.BODY_MOVEMENT),
    (BloodPressureStatus.CUFF_TOO_LOOSE, ReadingFlag.CUFF_TOO_LOOSE),
    (BloodPressureStatus.IRREGULAR_PULSE, ReadingFlag.IRREGULAR_PULSE),
    (BloodPressureStatus.IMPROPER_POSITION, ReadingFlag.IMPROPER_POSITION),
)


class SigBloodPressureDriver(SigDriver):
    """Any cuff with the SIG Blood Pressure Service (Omron, Beurer, A&D, generic)."""

    name: ClassVar[str] = "sig_blood_pressure"
    kind: ClassVar[ReadingKind] = ReadingKind.BLOOD_PRESSURE
    service_uuid: ClassVar[str] = uuids.BLOOD_PRESSURE_SERVICE

    def __init__(self, *, idle_s: float = IDLE_S, total_s: float = TOTAL_S) -> None:
        """Set the end-of-stream timers (tests shorten them)."""
        self.idle_s = idle_s
        self.total_s = total_s

    async def collect(self, link: GattLink, cursor: Cursor, context: CollectContext) -> Transfer:
        """Take every record the cuff pushes until it is idle, hangs up, or the cap.

        Each record goes to `context.sink` the moment its indication is parsed: BlueZ has
        already confirmed it, and the cuff may have erased it.
        """
        address = link.address
        match, info, skew, notices = context.match, None, None, []
        readings: dict[str, BloodPressureReading] = {}
        started = context.clock()
        end = StreamEnd.HUNG_UP
        position = 0
        try:
            info = await read_device_info(link)
            match = self.refine(match, info, link.name)
            check = await check_clock(
                link, context.clock_policy, clock=context.clock, zone=context.zone
            )
            skew = check.skew_s
            if check.written:
                notices.append(Notice(NoticeCode.CLOCK_SET, f"{address}: cuff clock set"))
            activity = Activity()
            malformed = MalformedPackets(address)
            provider = match.provider

            def on_measurement(value: bytes) -> None:
                nonlocal position
                activity.touch()
                try:
                    measurement = parse_blood_pressure_measurement(value)
                except ParseError as exc:
                    malformed.skip("BP record", exc, value)
                    return
                at = context.clock()
                reading = self._reading(
                    measurement, at, position, link, provider, skew, started, context
                )
                position += 1
                if reading is not None:
                    readings[reading.id] = reading
                    context.sink((reading,))

            await link.subscribe(uuids.BLOOD_PRESSURE_MEASUREMENT, on_measurement)
            end = await wait_stream_end(link, activity, idle_s=self.idle_s, total_s=self.total_s)
            if end is StreamEnd.CAPPED:
                # Take no more: a record confirmed after this point would be erased by the
                # cuff while nobody keeps it. What came so far is in `readings` already.
                await stop_taking(link, uuids.BLOOD_PRESSURE_MEASUREMENT)
        except DisconnectedError:
            _LOGGER.info("%s: cuff hung up before streaming", address)
        complete = end is not StreamEnd.CAPPED
        if not complete:
            notices.append(
                Notice(
                    NoticeCode.CAPPED,
                    f"{address}: cuff still sending after the {self.total_s:g} s cap; "
                    "stopped taking records; read it again for the rest",
                )
            )
        _LOGGER.info("%s: %d BP record(s), stream ended: %s", address, len(readings), end)
        return Transfer(
            readings=tuple(readings.values()),
            cursor=cursor,
            complete=complete,
            match=match,
            device_info=info,
            clock_skew_s=skew,
            notices=tuple(notices),
        )

    def _reading(
        self,
        m: BloodPressureMeasurement,
        received_at: datetime,
        position: int,
        link: GattLink,
        provider: str,
        skew: float | None,
        started: datetime,
        context: CollectContext,
    ) -> BloodPressureReading | None:
        if math.isnan(m.systolic) or math.isnan(m.diastolic):
            _LOGGER.info("%s: BP record %d has no pressure value; skipped", link.address, position)
            return None
        user = user_slot(m.user_id)
        device_time = m.timestamp if m.timestamp and m.timestamp.wall_clock() else None
        flags = blood_pressure_flags(m.status)
        if device_time is None:
            flags.add(ReadingFlag.NO_DEVICE_TIME)
        mean = m.mean_arterial_pressure
        return BloodPressureReading(
            id=unprompted_reading_id(
                link.address,
                ReadingKind.BLOOD_PRESSURE,
                device_time=device_time,
                user_index=user,
                transfer_started=started,
                position=position,
            ),
            device=link.address,
            provider=provider,
            received_at=received_at,
            device_time=m.timestamp,
            clock_skew_s=skew,
            user_index=user,
            flags=with_flags(flags, context),
            systolic=m.systolic,
            diastolic=m.diastolic,
            mean_arterial=None if math.isnan(mean) else mean,
            unit=m.unit,
            pulse_bpm=None if m.pulse_rate is None or math.isnan(m.pulse_rate) else m.pulse_rate,
            measurement_status=None if m.status is None else int(m.status),
        )


def blood_pressure_flags(status: BloodPressureStatus | None) -> set[ReadingFlag]:
    """Every Measurement Status bit as a flag (the raw bits are kept too)."""
    if status is None:
        return set()
    flags = {flag for bit, flag in _STATUS_FLAGS if bit in status}
    pulse_range = status.pulse_rate_range  # a 2-bit field, not two flags (3 is reserved)
    if pulse_range is PulseRateRange.ABOVE_UPPER_LIMIT:
        flags.add(ReadingFlag.PULSE_ABOVE_RANGE)
    elif pulse_range is PulseRateRange.BELOW_LOWER_LIMIT:
        flags.add(ReadingFlag.PULSE_BELOW_RANGE)
    return flags
