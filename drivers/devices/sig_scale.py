"""SIG scales: Weight Scale (0x181D), Body Composition (0x181B), User Data (0x181C).

One transfer:

1. Device Information and the clock, then indications on the User Control Point and Body
   Composition Measurement (neither starts anything).
2. UDS scales keep each user's readings until the client gives that slot's consent code, so
   the first stored code is given before, and each further one after, Weight Measurement
   indications are turned on (which starts the stream).
3. The stream ends like a cuff's: 2 s idle, 30 s in all, or the scale hangs up.

A weight and its body composition become one `BodyReading` whatever their order and whichever
packet carries the user and the time (`drivers.devices.scale_assembly`; a BF720 sends the body
composition bare right after the weight); a multi-packet body composition is merged first and
placeholder zeros are absent values. Scales send only final values on these
characteristics. "Measurement unsuccessful" (0xFFFF) is reported as a notice, never stored
as a weight. A slot without a stored code, or whose code the scale refuses, is reported too.
"""

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import ClassVar

from drivers.clock import check_clock
from drivers.devices.adverts import is_xiaomi_scale
from drivers.devices.base import (
    Advertisement,
    CollectContext,
    Cursor,
    DeviceInfo,
    DeviceMatch,
    Notice,
    NoticeCode,
    Transfer,
)
from drivers.devices.scale_assembly import AssembledMeasurement, ScaleAssembler
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
from drivers.errors import DisconnectedError, LinkTimeoutError, ParseError
from drivers.gatt import uuids
from drivers.gatt.body_composition import (
    BodyCompositionMeasurement,
    parse_body_composition_measurement,
)
from drivers.gatt.user_data import (
    UserControlResponse,
    UserControlResult,
    consent,
    parse_user_control_response,
)
from drivers.gatt.weight_scale import WeightMeasurement, parse_weight_measurement
from drivers.link import GattLink, wait_for
from drivers.readings import BodyReading, ReadingFlag, ReadingKind

_LOGGER = logging.getLogger(__name__)

# A scale answers a consent write within a connection interval or two.
CONSENT_TIMEOUT_S = 5.0
# A measurement's packets come one connection interval (7.5-50 ms) apart: one that has waited
# this long for its body composition is taken as whole, and saved. Short, because a scale that
# erases on send has forgotten a weight the gateway still holds here: a kill inside the hold
# loses it (0.3 s lost ~0.3 weight-only readings per kill at 1 s pacing).
HOLD_S = 0.1


class _Assembler:
    """Measurements from their packets in any order (`drivers.devices.scale_assembly`).

    A measurement is handed to `on_done` as soon as it is known to be whole: its weight and
    complete body composition came (a scale without Body Composition: its weight), the scale
    moved on to the next one, or `flush` is called (the driver calls it `HOLD_S` after the
    last packet, and at the end of the stream).
    """

    def __init__(
        self, on_done: Callable[[AssembledMeasurement], None], *, expects_body: bool = True
    ) -> None:
        self._on_done = on_done
        self._packets = ScaleAssembler(expects_body=expects_body)

    def weight(self, value: WeightMeasurement, at: datetime) -> None:
        self._hand_over(self._packets.add_weight(value, at))

    def body(self, value: BodyCompositionMeasurement, at: datetime) -> None:
        self._hand_over(self._packets.add_body(value, at))

    def flush(self) -> None:
        self._hand_over(self._packets.flush())

    def _hand_over(self, done: list[AssembledMeasurement]) -> None:
        for measurement in done:
            self._on_done(measurement)


class SigScaleDriver(SigDriver):
    """Any scale with the SIG Weight Scale Service (Beurer, Omron, A&D, generic)."""

    name: ClassVar[str] = "sig_scale"
    kind: ClassVar[ReadingKind] = ReadingKind.BODY
    service_uuid: ClassVar[str] = uuids.WEIGHT_SCALE_SERVICE

    def __init__(self, *, idle_s: float = IDLE_S, total_s: float = TOTAL_S) -> None:
        """Set the end-of-stream timers (tests shorten them)."""
        self.idle_s = idle_s
        self.total_s = total_s

    def _rejects(self, advertisement: Advertisement) -> bool:
        """Xiaomi scales put proprietary payloads under the SIG UUIDs: not ours."""
        return is_xiaomi_scale(advertisement)

    async def collect(self, link: GattLink, cursor: Cursor, context: CollectContext) -> Transfer:
        """Give consent per stored user slot and take every measurement the scale sends."""
        run = _ScaleRun(self, link, context)
        end = await run.run()
        return run.transfer(cursor, end)


class _ScaleRun:
    """The state of one scale transfer."""

    def __init__(self, driver: SigScaleDriver, link: GattLink, context: CollectContext) -> None:
        self.driver = driver
        self.link = link
        self.context = context
        self.match: DeviceMatch = context.match
        self.info: DeviceInfo | None = None
        self.skew: float | None = None
        self.notices: list[Notice] = []
        self.started = context.clock()
        self.assembler = _Assembler(
            self._measured,
            expects_body=link.has_characteristic(uuids.BODY_COMPOSITION_MEASUREMENT),
        )
        self.readings: dict[str, BodyReading] = {}
        self.position = 0
        self._hold: asyncio.TimerHandle | None = None
        self.activity: Activity | None = None
        self.control: asyncio.Future[UserControlResponse] | None = None
        self.malformed = MalformedPackets(link.address)

    async def run(self) -> StreamEnd:
        link, context = self.link, self.context
        try:
            self.info = await read_device_info(link)
            self.match = self.driver.refine(self.match, self.info, link.name)
            check = await check_clock(
                link, context.clock_policy, clock=context.clock, zone=context.zone
            )
            self.skew = check.skew_s
            if check.written:
                self.notices.append(Notice(NoticeCode.CLOCK_SET, f"{link.address}: clock set"))
            self.activity = Activity()
            has_uds = link.has_characteristic(uuids.USER_CONTROL_POINT)
            if has_uds:
                await link.subscribe(uuids.USER_CONTROL_POINT, self._on_control)
            if link.has_characteristic(uuids.BODY_COMPOSITION_MEASUREMENT):
                await link.subscribe(uuids.BODY_COMPOSITION_MEASUREMENT, self._on_body)
            slots = sorted(context.consent_codes) if has_uds else []
            if has_uds and not slots:
                self.notices.append(
                    Notice(
                        NoticeCode.CONSENT_MISSING,
                        f"{link.address}: the scale keeps readings per user slot until given the "
                        "slot's consent code; bind the slot with the code the scale shows (POST "
                        '/v1/devices/{address}/bindings {"device_user": N, "consent_code": C})',
                    )
                )
            if slots:
                await self._consent(slots[0])
            await link.subscribe(uuids.WEIGHT_MEASUREMENT, self._on_weight)
            end = await self._stream_end()
            for slot in slots[1:]:
                if end is not StreamEnd.IDLE:
                    break
                await self._consent(slot)
                end = await self._stream_end()
            if end is StreamEnd.CAPPED:
                # Take no more: see `stop_taking`. What came so far was handed over already.
                await stop_taking(link, uuids.WEIGHT_MEASUREMENT)
                await stop_taking(link, uuids.BODY_COMPOSITION_MEASUREMENT)
            return end
        except DisconnectedError:
            _LOGGER.info("%s: scale hung up", link.address)
            return StreamEnd.HUNG_UP
        finally:
            self._settle()

    async def _stream_end(self) -> StreamEnd:
        assert self.activity is not None  # noqa: S101 - set before any stream starts
        self.activity.touch()
        return await wait_stream_end(
            self.link, self.activity, idle_s=self.driver.idle_s, total_s=self.driver.total_s
        )

    async def _consent(self, slot: int) -> None:
        address = self.link.address
        self.control = asyncio.get_running_loop().create_future()
        code = self.context.consent_codes[slot]
        try:
            await self.link.write(uuids.USER_CONTROL_POINT, consent(slot, code), response=True)
            response = await wait_for(
                self.link, self.control, timeout_s=CONSENT_TIMEOUT_S, what="consent answer"
            )
        except (ValueError, LinkTimeoutError) as exc:
            self._refused(slot, str(exc))
            return
        if response.result is not UserControlResult.SUCCESS:
            self._refused(slot, f"the scale answered {response.result.name}")
            return
        _LOGGER.info("%s: consent given for user slot %d", address, slot)

    def _refused(self, slot: int, why: str) -> None:
        _LOGGER.warning("%s: no consent for user slot %d: %s", self.link.address, slot, why)
        self.notices.append(
            Notice(
                NoticeCode.CONSENT_REFUSED,
                f"{self.link.address}: user slot {slot} refused the stored consent code ({why});"
                " enter the code the scale shows for that user again",
                user_index=slot,
            )
        )

    # ------------------------------------------------------------------ notifications
    def _on_control(self, value: bytes) -> None:
        try:
            response = parse_user_control_response(value)
        except ParseError as exc:
            _LOGGER.warning("%s: malformed User Control Point answer: %s", self.link.address, exc)
            return
        if self.control is not None and not self.control.done():
            self.control.set_result(response)

    def _on_weight(self, value: bytes) -> None:
        if self.activity is not None:
            self.activity.touch()
        try:
            self.assembler.weight(parse_weight_measurement(value), self.context.clock())
        except ParseError as exc:
            self.malformed.skip("weight", exc, value)
        self._arm_hold()

    def _on_body(self, value: bytes) -> None:
        if self.activity is not None:
            self.activity.touch()
        try:
            packet = parse_body_composition_measurement(value)
        except ParseError as exc:
            self.malformed.skip("body composition", exc, value)
            return
        self.assembler.body(packet, self.context.clock())
        self._arm_hold()

    def _arm_hold(self) -> None:
        if self._hold is not None:
            self._hold.cancel()
        self._hold = asyncio.get_running_loop().call_later(HOLD_S, self.assembler.flush)

    def _settle(self) -> None:
        """The stream is over: whatever is being assembled is whole now."""
        if self._hold is not None:
            self._hold.cancel()
            self._hold = None
        self.assembler.flush()

    def _measured(self, pending: AssembledMeasurement) -> None:
        """A whole measurement: build its reading and hand it to the sink at once."""
        reading = self._reading(self.position, pending)
        self.position += 1
        if reading is not None:
            self.readings[reading.id] = reading
            self.context.sink((reading,))

    # ------------------------------------------------------------------ result
    def transfer(self, cursor: Cursor, end: StreamEnd) -> Transfer:
        self._settle()
        readings = self.readings
        complete = end is not StreamEnd.CAPPED
        if not complete:
            self.notices.append(
                Notice(
                    NoticeCode.CAPPED,
                    f"{self.link.address}: scale still sending after the "
                    f"{self.driver.total_s:g} s cap; stopped taking records; read it again "
                    "for the rest",
                )
            )
        _LOGGER.info("%s: %d scale reading(s), ended: %s", self.link.address, len(readings), end)
        return Transfer(
            readings=tuple(readings.values()),
            cursor=cursor,
            complete=complete,
            match=self.match,
            device_info=self.info,
            clock_skew_s=self.skew,
            notices=tuple(self.notices),
        )

    def _reading(self, position: int, pending: AssembledMeasurement) -> BodyReading | None:
        weight, body = pending.weight, pending.body  # placeholders already dropped
        user = user_slot(pending.user_id)
        if (weight is not None and weight.measurement_unsuccessful) or (
            weight is None and body is not None and body.body_fat_percent is None
        ):
            self.notices.append(
                Notice(
                    NoticeCode.MEASUREMENT_UNSUCCESSFUL,
                    f"{self.link.address}: the scale reported an unsuccessful measurement; "
                    "step on it again, barefoot and still",
                    user_index=user,
                )
            )
            return None
        stamp = pending.timestamp  # from whichever packet carried it
        device_time = stamp if stamp is not None and stamp.wall_clock() else None
        flags: set[ReadingFlag] = set() if device_time else {ReadingFlag.NO_DEVICE_TIME}
        if weight is not None:
            unit, mass, bmi, height = weight.unit, weight.weight, weight.bmi, weight.height
        elif body is not None:
            unit, mass, bmi, height = body.unit, body.weight, None, body.height
        else:
            return None
        return BodyReading(
            id=unprompted_reading_id(
                self.link.address,
                ReadingKind.BODY,
                device_time=device_time,
                user_index=user,
                transfer_started=self.started,
                position=position,
            ),
            device=self.link.address,
            provider=self.match.provider,
            received_at=pending.received_at,
            device_time=stamp,
            clock_skew_s=self.skew,
            user_index=user,
            flags=with_flags(flags, self.context),
            weight=mass,
            unit=unit,
            fat_percent=None if body is None else body.body_fat_percent,
            bmi=bmi,
            height=height if height is not None else (None if body is None else body.height),
        )
