"""A glucose meter: Glucose Service 0x1808 with a Record Access Control Point.

Records go out as Glucose Measurement notifications (each followed by its Context when it has
one), then the RACP indication that ends the procedure, as Glucose Profile 1.0 prescribes.
"""

from typing import TYPE_CHECKING

from drivers.errors import ParseError
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
    RacpRequest,
    RacpResponse,
    RacpResponseCode,
    parse_racp_request,
    response_code_for,
)
from drivers.readings import GlucoseUnit
from drivers.simulator import bluez_errors
from drivers.simulator.encoding import (
    encode_glucose_context,
    encode_glucose_measurement,
    encode_racp_response,
)
from drivers.simulator.gatt import Characteristic, Service
from drivers.simulator.profiles.base import Profile, cccd
from drivers.simulator.scenario import GlucoseDevice, GlucoseRecord

if TYPE_CHECKING:
    from drivers.simulator.device import SimDevice

# Glucose Feature: low battery, malfunction, sample size, strip insertion, strip type, result
# high/low, temperature high/low, read interrupt, general fault, time fault (bits 0-9).
_GLUCOSE_FEATURES = 0x03FF
CONTROL_SOLUTION_TYPE = 0x0A


# i-SENS CareSens: context meal code 6 marks a ketone result, sent as ketone x 10 in mg/dL.
KETONE_MEAL = 6
KETONE_MG_DL_PER_MMOL_L = 10


def context_meal(record: GlucoseRecord) -> int | None:
    """The meal code of the record's Context, or None when it has no Context."""
    return KETONE_MEAL if record.ketone_mmol_l is not None else record.meal


def measurement_for(record: GlucoseRecord) -> GlucoseMeasurement:
    """The Glucose Measurement a meter sends for a stored record."""
    if record.ketone_mmol_l is not None:
        mg_dl = round(record.ketone_mmol_l * KETONE_MG_DL_PER_MMOL_L)
        concentration, unit = mg_dl / 100_000, GlucoseUnit.KG_PER_L
    elif record.mg_dl is not None:
        # kg/L with SFLOAT exponent -5: the mantissa is the mg/dL figure, as meters encode it.
        concentration, unit = record.mg_dl / 100_000, GlucoseUnit.KG_PER_L
    else:
        assert record.mmol_l is not None  # noqa: S101 - the scenario validator guarantees it
        concentration, unit = record.mmol_l / 1000, GlucoseUnit.MOL_PER_L
    sample_type = CONTROL_SOLUTION_TYPE if record.control else record.type
    return GlucoseMeasurement(
        sequence=record.seq,
        base_time=Profile.device_time(record.time),  # type: ignore[arg-type]
        time_offset=record.offset_min,
        concentration=concentration,
        unit=unit,
        sample_type=GlucoseSampleType(sample_type),
        sample_location=SampleLocation(record.location),
        sensor_status=SensorStatus(record.status),
        context_follows=context_meal(record) is not None,
    )


class GlucoseProfile(Profile):
    """A SIG glucose meter holding the scenario's records."""

    spec: GlucoseDevice

    def __init__(self, spec: GlucoseDevice, zone: str) -> None:
        super().__init__(spec, zone)
        self.records: dict[int, GlucoseRecord] = {r.seq: r for r in spec.records}
        self.reads = 0  # connections that asked for records (`GlucoseRecord.after_reads`)
        self._asked = False
        self._running = False
        self._measurement = Characteristic(
            uuids.GLUCOSE_MEASUREMENT, ["notify"], descriptors=[cccd()]
        )
        self._context = Characteristic(
            uuids.GLUCOSE_MEASUREMENT_CONTEXT, ["notify"], descriptors=[cccd()]
        )
        self._racp = Characteristic(
            uuids.RECORD_ACCESS_CONTROL_POINT,
            ["write", "indicate"],
            on_write=self._on_racp_write,
            on_unsubscribe=self._on_racp_unsubscribe,
            descriptors=[cccd()],
        )
        self._device: SimDevice | None = None

    def health_services(self, device: "SimDevice") -> list[Service]:
        """Glucose Service."""
        self._device = device
        feature = Characteristic(
            uuids.GLUCOSE_FEATURE, ["read"], _GLUCOSE_FEATURES.to_bytes(2, "little")
        )
        chars = [self._measurement, self._context, feature, self._racp]
        return [Service(uuids.GLUCOSE_SERVICE, chars)]

    def advertised_uuids(self) -> list[str]:
        """Meters advertise the Glucose Service."""
        return [uuids.GLUCOSE_SERVICE]

    def on_disconnect(self, device: "SimDevice") -> None:
        """A transfer in progress dies with the link; a read that asked for records counts."""
        super().on_disconnect(device)
        self._running = False
        if self._asked:
            self.reads += 1
            self._asked = False

    def memory(self) -> dict[int, tuple[int, GlucoseRecord]]:
        """What the meter holds now: sequence number as sent → (record key, record).

        Records measured later (`after_reads`) appear once the meter was read that often; a
        newest-first meter numbers them from 0 = the latest.
        """
        held = [(key, r) for key, r in self.records.items() if r.after_reads <= self.reads]
        if self.spec.numbering == "newest_first":
            held.sort(key=lambda item: item[1].time, reverse=True)
            return {
                seq: (key, r.model_copy(update={"seq": seq})) for seq, (key, r) in enumerate(held)
            }
        return {key: (key, r) for key, r in held}

    # ------------------------------------------------------------------ RACP
    def _on_racp_unsubscribe(self) -> None:
        # The last notify session ended (its client left the bus, or stopped): BlueZ turns
        # the CCCD off, so the meter could not indicate the procedure's end; it abandons the
        # procedure instead of answering the next client "procedure already in progress".
        self._running = False

    def _on_racp_write(self, value: bytes) -> None:
        if not self._racp.subscribed:
            raise bluez_errors.att_error(bluez_errors.ATT_CCCD_IMPROPERLY_CONFIGURED)
        try:
            request = parse_racp_request(value)
        except ParseError as exc:
            op = RacpOpCode(value[0]) if value else RacpOpCode.REPORT_STORED_RECORDS
            self.spawn(self._respond(op, response_code_for(exc)))
            return
        if request.op_code is RacpOpCode.ABORT_OPERATION:
            self._running = False  # the running report stops before its next record
            self.spawn(self._respond(request.op_code, RacpResponseCode.SUCCESS))
            return
        if self._running:
            raise bluez_errors.att_error(bluez_errors.ATT_PROCEDURE_ALREADY_IN_PROGRESS)
        if request.filter_type is not None and not request.operand:
            self.spawn(self._respond(request.op_code, RacpResponseCode.OPERAND_NOT_SUPPORTED))
            return
        self._running = True
        self.spawn(self._run(request))

    async def _run(self, request: RacpRequest) -> None:
        try:
            memory = self.memory()
            selected = request.select(memory)
            if request.op_code is RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS:
                await self._racp.notify(
                    encode_racp_response(
                        RacpResponse(
                            op_code=RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE,
                            number_of_records=len(selected),
                        )
                    )
                )
                return
            if not selected:
                await self._respond(request.op_code, RacpResponseCode.NO_RECORDS_FOUND)
                return
            if request.op_code is RacpOpCode.DELETE_STORED_RECORDS:
                for seq in selected:
                    del self.records[memory[seq][0]]
                await self._respond(request.op_code, RacpResponseCode.SUCCESS)
                return
            self._asked = True
            await self._report([memory[seq][1] for seq in selected])
        finally:
            self._running = False

    async def _report(self, selected: list[GlucoseRecord]) -> None:
        device = self._device
        assert device is not None  # noqa: S101 - set when the GATT database was built
        for record in selected:
            if not self._running:
                return  # aborted; the abort's own response was already sent
            await self._measurement.notify(encode_glucose_measurement(measurement_for(record)))
            meal = context_meal(record)
            if meal is not None:
                context = GlucoseContext(sequence=record.seq, meal=Meal(meal))
                await self._context.notify(encode_glucose_context(context))
            if self.count_record(device):
                return
            await self.pace(device)
        await self._respond(RacpOpCode.REPORT_STORED_RECORDS, RacpResponseCode.SUCCESS)

    async def _respond(self, op: RacpOpCode, code: RacpResponseCode) -> None:
        response = RacpResponse(
            op_code=RacpOpCode.RESPONSE_CODE, request_op_code=op, response_code=code
        )
        await self._racp.notify(encode_racp_response(response))
