"""A blood-pressure cuff: Blood Pressure Service 0x1810.

Like Omron and A&D cuffs, it pushes its stored readings as indications as soon as the client
enables them on Blood Pressure Measurement (each time the first notify session starts), may
erase what it sent, then hangs up. Which records a new subscription gets follows the
scenario's `resend` (see `PushedRecords`).
"""

from typing import TYPE_CHECKING

from drivers.gatt import uuids
from drivers.gatt.blood_pressure import (
    BloodPressureMeasurement,
    BloodPressureStatus,
    IntermediateCuffPressure,
)
from drivers.readings import PressureUnit
from drivers.simulator.encoding import (
    encode_blood_pressure_measurement,
    encode_intermediate_cuff_pressure,
)
from drivers.simulator.gatt import Characteristic, Service
from drivers.simulator.profiles.base import Profile, PushedRecords, cccd
from drivers.simulator.scenario import BloodPressureDevice, BloodPressureRecord

if TYPE_CHECKING:
    from drivers.simulator.device import SimDevice

# Blood Pressure Feature: body movement, cuff fit, irregular pulse, pulse range, position.
_BP_FEATURES = 0x001F


def measurement_for(record: BloodPressureRecord) -> BloodPressureMeasurement:
    """The Blood Pressure Measurement a cuff sends for a stored record."""
    mean = record.mean
    if mean is None:
        mean = round(record.diastolic + (record.systolic - record.diastolic) / 3, 1)
    return BloodPressureMeasurement(
        systolic=record.systolic,
        diastolic=record.diastolic,
        mean_arterial_pressure=mean,
        unit=PressureUnit(record.unit),
        timestamp=Profile.device_time(record.time),
        pulse_rate=record.pulse,
        user_id=record.user,
        status=None if record.status is None else BloodPressureStatus(record.status),
    )


class BloodPressureProfile(Profile):
    """A SIG blood-pressure cuff holding the scenario's records."""

    spec: BloodPressureDevice

    def __init__(self, spec: BloodPressureDevice, zone: str) -> None:
        super().__init__(spec, zone)
        self.memory = PushedRecords(
            list(spec.records), resend=spec.resend_mode, erase=spec.erase_after_send
        )
        self._device: SimDevice | None = None
        self._measurement = Characteristic(
            uuids.BLOOD_PRESSURE_MEASUREMENT,
            ["indicate"],
            on_subscribe=self._on_subscribe,
            descriptors=[cccd()],
        )
        self._cuff = Characteristic(
            uuids.INTERMEDIATE_CUFF_PRESSURE, ["notify"], descriptors=[cccd()]
        )

    def health_services(self, device: "SimDevice") -> list[Service]:
        """Blood Pressure Service."""
        self._device = device
        feature = Characteristic(
            uuids.BLOOD_PRESSURE_FEATURE, ["read"], _BP_FEATURES.to_bytes(2, "little")
        )
        return [Service(uuids.BLOOD_PRESSURE_SERVICE, [self._measurement, self._cuff, feature])]

    @property
    def records(self) -> list[BloodPressureRecord]:
        """Every record the cuff still stores."""
        return self.memory.records

    def advertising(self) -> bool:
        """Only while they have readings to send, as real ones; `advertise_when_empty` opts out."""
        return self.spec.advertise_when_empty or bool(self.memory)

    def advertised_uuids(self) -> list[str]:
        """Cuffs advertise the Blood Pressure Service."""
        return [uuids.BLOOD_PRESSURE_SERVICE]

    def _on_subscribe(self) -> None:
        self.memory.new_session()
        self.start_stream(self._stream())

    async def _send(self, record: BloodPressureRecord) -> bool:
        if self._cuff.subscribed:
            # A live cuff reports inflation as it happens; stored readings skip it.
            inflating = IntermediateCuffPressure(
                cuff_pressure=record.systolic + 20, unit=PressureUnit(record.unit)
            )
            await self._cuff.notify(encode_intermediate_cuff_pressure(inflating))
        return await self._measurement.notify(
            encode_blood_pressure_measurement(measurement_for(record))
        )

    async def _stream(self) -> None:
        device = self._device
        assert device is not None  # noqa: S101 - set when the GATT database was built
        if await self.push_records(device, self.memory, self._send) and (
            self.spec.disconnect_after_send
        ):
            self.hang_up_later(device)
