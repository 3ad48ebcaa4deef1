"""The glucose driver against scripted meters (FakeLink): the edge cases, fast."""

import math
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.devices.base import Advertisement, Cursor, NoticeCode
from drivers.devices.sig_glucose import SigGlucoseDriver
from drivers.errors import LinkTimeoutError, ProtocolError
from drivers.gatt import uuids
from drivers.gatt.glucose import (
    GlucoseContext,
    GlucoseMeasurement,
    GlucoseSampleType,
    Meal,
    SampleLocation,
    SensorStatus,
)
from drivers.gatt.racp import (
    RacpOpCode,
    RacpResponse,
    RacpResponseCode,
    parse_racp_request,
)
from drivers.readings import DeviceTime, GlucoseUnit, ReadingFlag
from drivers.simulator.encoding import (
    encode_glucose_context,
    encode_glucose_measurement,
    encode_racp_response,
)
from drivers.testing import FakeLink
from tests.drivers.devices.helpers import context_for, fixed_clock

ADDRESS = "C0:FF:EE:00:00:09"
ADVERT = Advertisement(address=ADDRESS, name="meter+1", service_uuids=(uuids.GLUCOSE_SERVICE,))
DRIVER = SigGlucoseDriver()


def record(seq: int, day: int = 20, **overrides) -> GlucoseMeasurement:
    values = {
        "sequence": seq,
        "base_time": DeviceTime(2026, 11, day, 7, seq % 60, 0),
        "concentration": (90 + seq) / 100_000,
        "unit": GlucoseUnit.KG_PER_L,
        "sample_type": GlucoseSampleType.CAPILLARY_WHOLE_BLOOD,
        "sample_location": SampleLocation.FINGER,
    }
    values.update(overrides)
    return GlucoseMeasurement(**values)


@dataclass
class FakeMeter:
    """A RACP meter script: records by sequence, optional quirks."""

    records: dict[int, GlucoseMeasurement] = field(default_factory=dict)
    contexts: dict[int, GlucoseContext] = field(default_factory=dict)
    count_supported: bool = True
    filter_supported: bool = True  # "report records ≥ n"
    filter_ignored: bool = False  # answers "≥ n" with every record (Fora)
    drop_after: int | None = None  # link loss after this many records (once)
    silent: bool = False  # never answers RACP
    stall_after: int | None = None  # stops sending (link up, no RACP answer) after this many
    raw: list[bytes] = field(default_factory=list)  # extra raw measurement packets sent first
    answer: RacpResponseCode | None = None  # force a general response code

    def link(self, **kwargs) -> FakeLink:
        return FakeLink(
            ADDRESS,
            "meter+1",
            values={uuids.MANUFACTURER_NAME: b"Roche", uuids.GLUCOSE_FEATURE: b"\xff\x03"},
            notifiable=(
                uuids.GLUCOSE_MEASUREMENT,
                uuids.GLUCOSE_MEASUREMENT_CONTEXT,
                uuids.RECORD_ACCESS_CONTROL_POINT,
            ),
            on_write={uuids.RECORD_ACCESS_CONTROL_POINT: self._on_racp},
            **kwargs,
        )

    def _respond(self, link: FakeLink, op: RacpOpCode, code: RacpResponseCode) -> None:
        response = RacpResponse.general(op, code)
        link.notify(uuids.RECORD_ACCESS_CONTROL_POINT, encode_racp_response(response))

    def _on_racp(self, link: FakeLink, value: bytes) -> None:
        if self.silent:
            return
        request = parse_racp_request(value)
        selected = request.select(self.records)
        if self.filter_ignored and request.op_code is RacpOpCode.REPORT_STORED_RECORDS:
            selected = sorted(self.records)
        if self.answer is not None:
            self._respond(link, request.op_code, self.answer)
            return
        if request.op_code is RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS:
            if not self.count_supported:
                self._respond(link, request.op_code, RacpResponseCode.OPERATOR_NOT_SUPPORTED)
                return
            link.notify(
                uuids.RECORD_ACCESS_CONTROL_POINT,
                encode_racp_response(RacpResponse.records(len(selected))),
            )
            return
        if request.operand and not self.filter_supported:  # reports only; it counts fine
            self._respond(link, request.op_code, RacpResponseCode.OPERATOR_NOT_SUPPORTED)
            return
        if not selected:
            self._respond(link, request.op_code, RacpResponseCode.NO_RECORDS_FOUND)
            return
        for packet in self.raw:
            link.notify(uuids.GLUCOSE_MEASUREMENT, packet)
        for sent, seq in enumerate(selected, start=1):
            link.notify(uuids.GLUCOSE_MEASUREMENT, encode_glucose_measurement(self.records[seq]))
            if self.drop_after is not None and sent == self.drop_after:
                self.drop_after = None
                link.drop_later()
                return
            if self.stall_after is not None and sent == self.stall_after:
                return
            if seq in self.contexts:
                context = self.contexts[seq]
                link.notify(uuids.GLUCOSE_MEASUREMENT_CONTEXT, encode_glucose_context(context))
        self._respond(link, request.op_code, RacpResponseCode.SUCCESS)


def meter_with(n: int, **kwargs) -> FakeMeter:
    return FakeMeter(records={s: record(s) for s in range(1, n + 1)}, **kwargs)


async def collect(meter: FakeMeter, cursor: Cursor | None = None, **context):
    link = meter.link()
    transfer = await DRIVER.collect(
        link, cursor or Cursor(), context_for(DRIVER, ADVERT, clock=fixed_clock, **context)
    )
    return transfer, link


def seqs(transfer) -> list[int]:
    return [r.sequence for r in transfer.readings]


def racp_ops(link: FakeLink) -> list[bytes]:
    return [v for u, v in link.writes if u == uuids.RECORD_ACCESS_CONTROL_POINT]


async def test_first_read_reports_all_and_sets_the_cursor():
    transfer, link = await collect(meter_with(3))
    assert seqs(transfer) == [1, 2, 3]
    assert racp_ops(link) == [b"\x01\x01"]
    assert transfer.cursor.last_sequence == 3
    assert transfer.cursor.last_id == transfer.readings[-1].id
    assert transfer.readings[0].provider == "accuchek_ble"
    assert link.disconnect_calls == 0  # the caller hangs up, after saving


async def test_incremental_read_counts_then_reports_from_the_cursor():
    meter = meter_with(5)
    first, _ = await collect(FakeMeter(records={s: meter.records[s] for s in (1, 2, 3)}))
    transfer, link = await collect(meter, first.cursor)
    assert seqs(transfer) == [4, 5]
    assert racp_ops(link) == [b"\x04\x03\x01\x03\x00", b"\x01\x03\x01\x03\x00"]


async def test_no_new_records_reads_only_the_anchor():
    meter = meter_with(3)
    first, _ = await collect(meter)
    transfer, _ = await collect(meter, first.cursor)
    assert transfer.readings == ()
    assert transfer.cursor == first.cursor
    assert transfer.complete


async def test_meter_that_cannot_count_is_read_whole():
    meter = meter_with(4, count_supported=False)
    transfer, link = await collect(meter, Cursor(2, None))
    assert seqs(transfer) == [1, 2, 3, 4]
    assert racp_ops(link)[-1] == b"\x01\x01"
    assert transfer.notices == ()


async def test_meter_that_counts_but_cannot_filter_reports_is_read_whole():
    transfer, link = await collect(meter_with(4, filter_supported=False), Cursor(2, None))
    assert seqs(transfer) == [1, 2, 3, 4]
    assert racp_ops(link) == [b"\x04\x03\x01\x02\x00", b"\x01\x03\x01\x02\x00", b"\x01\x01"]
    assert transfer.notices == ()


async def test_meter_that_ignores_the_filter_is_not_taken_for_a_reset():
    transfer, _ = await collect(meter_with(5, filter_ignored=True), Cursor(3, None))
    assert seqs(transfer) == [4, 5]
    assert transfer.notices == ()


async def test_reset_to_an_empty_meter_clears_the_cursor():
    transfer, _ = await collect(FakeMeter(), Cursor(7, "x" * 32))
    assert transfer.readings == ()
    assert transfer.cursor == Cursor()
    assert NoticeCode.METER_RESET in {n.code for n in transfer.notices}
    again, _ = await collect(FakeMeter(), transfer.cursor)
    assert again.notices == ()  # reported once, not on every read


async def test_cursor_without_an_id_trusts_the_sequence():
    transfer, _ = await collect(meter_with(4), Cursor(2, None))
    assert seqs(transfer) == [3, 4]


async def test_context_is_merged_and_a_record_awaiting_context_at_a_drop_is_read_again():
    meter = meter_with(3)
    meter.records[2] = record(2, context_follows=True)
    meter.records[3] = record(3, context_follows=True)
    meter.contexts = {2: GlucoseContext(sequence=2, meal=Meal.POSTPRANDIAL)}
    meter.drop_after = 3  # the link drops after record 3, before its context
    dropped, _ = await collect(meter)
    assert not dropped.complete
    assert seqs(dropped) == [1, 2]
    assert dropped.readings[1].meal == int(Meal.POSTPRANDIAL)  # type: ignore[attr-defined]
    assert dropped.cursor.last_sequence == 2
    meter.contexts[3] = GlucoseContext(sequence=3, meal=Meal.FASTING)
    rest, _ = await collect(meter, dropped.cursor)
    assert seqs(rest) == [3]
    assert rest.readings[0].meal == int(Meal.FASTING)  # type: ignore[attr-defined]


async def test_drop_during_setup_returns_an_empty_incomplete_transfer():
    meter = meter_with(2)
    link = meter.link()
    link.drop()
    transfer = await DRIVER.collect(link, Cursor(1, None), context_for(DRIVER, ADVERT))
    assert not transfer.complete
    assert transfer.readings == ()
    assert transfer.cursor == Cursor(1, None)


async def test_drop_mid_incremental_keeps_records_and_advances():
    meter = meter_with(10)
    first, _ = await collect(FakeMeter(records={s: meter.records[s] for s in range(1, 5)}))
    meter.drop_after = 3  # anchor 4, then 5 and 6
    dropped, _ = await collect(meter, first.cursor)
    assert seqs(dropped) == [5, 6]
    assert dropped.cursor.last_sequence == 6
    rest, _ = await collect(meter, dropped.cursor)
    assert seqs(rest) == [7, 8, 9, 10]


async def test_drop_mid_incremental_with_a_foreign_anchor_keeps_the_cursor():
    stored = await collect(meter_with(2))
    cursor = stored[0].cursor
    replaced = FakeMeter(records={s: record(s, day=22) for s in range(1, 6)}, drop_after=2)
    dropped, _ = await collect(replaced, cursor)
    assert seqs(dropped) == [2, 3]  # real records, kept (ids differ from the old meter's)
    assert dropped.cursor == cursor  # so the next read detects the reset again
    after, _ = await collect(replaced, dropped.cursor)
    assert seqs(after) == [1, 2, 3, 4, 5]
    assert NoticeCode.METER_RESET in {n.code for n in after.notices}


async def test_flags_control_solution_hi_lo_and_faults_instead_of_dropping():
    meter = FakeMeter(
        records={
            1: record(1, sample_type=GlucoseSampleType.CONTROL_SOLUTION),
            2: record(2, sample_location=SampleLocation.CONTROL_SOLUTION),
            3: record(3, sensor_status=SensorStatus.RESULT_TOO_HIGH),
            4: record(4, sensor_status=SensorStatus.RESULT_TOO_LOW),
            5: record(5, sensor_status=SensorStatus.GENERAL_DEVICE_FAULT),
            6: record(6, concentration=math.inf),
            7: record(7),
        }
    )
    transfer, _ = await collect(meter)
    flags = {r.sequence: r.flags for r in transfer.readings}
    assert ReadingFlag.CONTROL_SOLUTION in flags[1]
    assert ReadingFlag.CONTROL_SOLUTION in flags[2]
    assert ReadingFlag.HIGH in flags[3]
    assert ReadingFlag.LOW in flags[4]
    assert ReadingFlag.DEVICE_FAULT in flags[5]
    assert ReadingFlag.HIGH in flags[6]
    assert flags[7] == frozenset()


async def test_records_without_a_value_and_malformed_packets_are_skipped():
    meter = meter_with(2, raw=[b"\x00\x01"])  # truncated packet first
    meter.records[3] = GlucoseMeasurement(sequence=3, base_time=DeviceTime(2026, 11, 20, 8, 0, 0))
    transfer, _ = await collect(meter)
    assert seqs(transfer) == [1, 2]
    assert transfer.cursor.last_sequence == 3  # seen, so not asked for again


async def test_silent_meter_times_out():
    driver = SigGlucoseDriver(racp_timeout_s=0.05)
    link = meter_with(2, silent=True).link()
    with pytest.raises(LinkTimeoutError, match=f"^{ADDRESS}: no RACP response"):
        await driver.collect(link, Cursor(), context_for(driver, ADVERT))


async def test_a_meter_silent_mid_report_keeps_what_arrived():
    """No RACP answer after 3 of 5 records (BlueZ gone under a link it shows as up does the
    same): the 3 are kept and the cursor stops at them, as after a dropped link."""
    driver = SigGlucoseDriver(racp_timeout_s=0.05)
    meter = meter_with(5, stall_after=3)
    transfer = await driver.collect(meter.link(), Cursor(), context_for(driver, ADVERT))
    assert not transfer.complete
    assert [r.sequence for r in transfer.readings] == [1, 2, 3]
    assert transfer.cursor.last_sequence == 3
    assert any("meter stopped answering after 3 record(s)" in n.message for n in transfer.notices)


async def test_unexpected_racp_answer_is_a_protocol_error():
    meter = meter_with(2, answer=RacpResponseCode.PROCEDURE_NOT_COMPLETED)
    with pytest.raises(ProtocolError, match=f"^{ADDRESS}: .*PROCEDURE_NOT_COMPLETED"):
        await collect(meter)


async def test_reads_are_idempotent_by_id():
    meter = meter_with(3)
    first, _ = await collect(meter)
    again, _ = await collect(meter)
    assert [r.id for r in first.readings] == [r.id for r in again.readings]
    assert first.readings[0].received_at == again.readings[0].received_at  # fixed clock


async def test_no_measured_values_in_logs_above_debug(caplog):
    caplog.set_level("DEBUG")
    meter = meter_with(3, raw=[b"\x00\x01"])
    meter.records[2] = record(2, concentration=0.00123)  # 123 mg/dL
    meter.drop_after = 2
    await collect(meter)
    loud = [r.getMessage() for r in caplog.records if r.levelno > 10]
    assert loud  # there is something to check
    for message in loud:
        assert "123" not in message
        assert "0.00123" not in message


@settings(max_examples=60, deadline=None)
@given(packets=st.lists(st.binary(max_size=24), max_size=6))
async def test_any_bytes_from_the_meter_give_a_transfer_not_a_crash(packets):
    meter = meter_with(2, raw=packets)
    transfer, _ = await collect(meter)
    assert {1, 2} <= {r.sequence for r in transfer.readings}


async def test_malformed_packets_warn_once_per_transfer(caplog):
    caplog.set_level("DEBUG", logger="drivers")
    await collect(meter_with(2, raw=[b"\x00", b"\x01", b"\x02"]))
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "malformed" in r.message]
    assert len(warnings) == 1
    assert ADDRESS in warnings[0].getMessage()
