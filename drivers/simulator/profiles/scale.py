"""A scale: Weight Scale 0x181D, Body Composition 0x181B and User Data 0x181C services.

Stored readings go out as indications once the client enables them on Weight Measurement
(each weight followed by its body composition). Readings that belong to a user slot with a
consent code wait until the client gives that code through the User Control Point.
"""

from typing import TYPE_CHECKING

from drivers.errors import ParseError
from drivers.gatt import uuids
from drivers.gatt.body_composition import BodyCompositionMeasurement
from drivers.gatt.user_data import (
    UserControlOpCode,
    UserControlResponse,
    UserControlResult,
    parse_user_control_request,
)
from drivers.gatt.weight_scale import WeightMeasurement
from drivers.readings import MassUnit
from drivers.simulator import bluez_errors
from drivers.simulator.encoding import (
    encode_body_composition_measurement,
    encode_user_data_response,
    encode_weight_measurement,
)
from drivers.simulator.gatt import Characteristic, Service
from drivers.simulator.profiles.base import Profile, PushedRecords, cccd
from drivers.simulator.scenario import ScaleDevice, ScaleRecord

if TYPE_CHECKING:
    from drivers.simulator.device import SimDevice

# Weight Scale Feature: time stamp, multiple users, BMI; 0.005 kg / 0.01 lb resolution.
_WEIGHT_FEATURES = 0x00000007 | (1 << 3)
# Body Composition Feature: time stamp, multiple users, weight.
_BODY_FEATURES = 0x00000003 | (1 << 9)


def weight_for(record: ScaleRecord) -> WeightMeasurement:
    """The Weight Measurement a scale sends for a stored record."""
    unit = MassUnit.LB if record.weight_lb is not None else MassUnit.KG
    weight = None if record.unsuccessful else (record.weight_lb or record.weight_kg)
    return WeightMeasurement(
        weight=weight,
        unit=unit,
        timestamp=Profile.device_time(record.time),
        user_id=record.user,
    )


def body_composition_for(record: ScaleRecord) -> BodyCompositionMeasurement:
    """The Body Composition Measurement a scale sends for a stored record."""
    unit = MassUnit.LB if record.weight_lb is not None else MassUnit.KG
    bare = record.body_bare  # a BF720 leaves user and time to the weight packet before it
    return BodyCompositionMeasurement(
        body_fat_percent=None if record.unsuccessful else record.fat_percent,
        unit=unit,
        timestamp=None if bare else Profile.device_time(record.time),
        user_id=None if bare else record.user,
    )


class ScaleProfile(Profile):
    """A SIG weight / body-composition scale holding the scenario's records."""

    spec: ScaleDevice

    def __init__(self, spec: ScaleDevice, zone: str) -> None:
        super().__init__(spec, zone)
        self.memory = PushedRecords(
            list(spec.records), resend=spec.resend_mode, erase=spec.erase_after_send
        )
        self.consent_codes = {slot.index: slot.consent for slot in spec.users}
        self._consented: set[int] = set()
        self._device: SimDevice | None = None
        self._weight = Characteristic(
            uuids.WEIGHT_MEASUREMENT,
            ["indicate"],
            on_subscribe=self._on_subscribe,
            descriptors=[cccd()],
        )
        self._body = Characteristic(
            uuids.BODY_COMPOSITION_MEASUREMENT, ["indicate"], descriptors=[cccd()]
        )
        self._control = Characteristic(
            uuids.USER_CONTROL_POINT,
            ["write", "indicate"],
            on_write=self._on_control_write,
            descriptors=[cccd()],
        )
        self._user_index = Characteristic(uuids.USER_INDEX, ["read"], b"\xff")

    def health_services(self, device: "SimDevice") -> list[Service]:
        """Weight Scale, Body Composition and (with user slots) User Data services."""
        self._device = device
        services = [
            Service(
                uuids.WEIGHT_SCALE_SERVICE,
                [
                    self._weight,
                    Characteristic(
                        uuids.WEIGHT_SCALE_FEATURE, ["read"], _WEIGHT_FEATURES.to_bytes(4, "little")
                    ),
                ],
            ),
            Service(
                uuids.BODY_COMPOSITION_SERVICE,
                [
                    self._body,
                    Characteristic(
                        uuids.BODY_COMPOSITION_FEATURE,
                        ["read"],
                        _BODY_FEATURES.to_bytes(4, "little"),
                    ),
                ],
            ),
        ]
        if self.consent_codes:
            increment = Characteristic(
                uuids.DATABASE_CHANGE_INCREMENT, ["read", "write", "notify"], b"\x00\x00\x00\x00"
            )
            services.append(
                Service(uuids.USER_DATA_SERVICE, [self._control, self._user_index, increment])
            )
        return services

    @property
    def records(self) -> list[ScaleRecord]:
        """Every record the scale still stores."""
        return self.memory.records

    def advertising(self) -> bool:
        """Only while they have readings to send, as real ones; `advertise_when_empty` opts out."""
        return self.spec.advertise_when_empty or bool(self.memory)

    def advertised_uuids(self) -> list[str]:
        """Scales advertise the Weight Scale and Body Composition services."""
        return [uuids.WEIGHT_SCALE_SERVICE, uuids.BODY_COMPOSITION_SERVICE]

    def on_connect(self, device: "SimDevice") -> None:
        """Consent lasts for one connection."""
        super().on_connect(device)
        self._consented.clear()

    # ------------------------------------------------------------------ User Control Point
    def _on_control_write(self, value: bytes) -> None:
        if not self._control.subscribed:
            raise bluez_errors.att_error(bluez_errors.ATT_CCCD_IMPROPERLY_CONFIGURED)
        try:
            request = parse_user_control_request(value)
        except ParseError:
            op = UserControlOpCode(value[0]) if value else UserControlOpCode.CONSENT
            self.spawn(self._respond(op, UserControlResult.INVALID_PARAMETER))
            return
        if request.op_code is UserControlOpCode.CONSENT:
            index = request.user_index
            if index in self.consent_codes and self.consent_codes[index] == request.consent_code:
                self._consented.add(index)
                self._user_index.value = bytes([index])
                self.spawn(self._consent_given())
            else:
                self.spawn(self._respond(request.op_code, UserControlResult.USER_NOT_AUTHORIZED))
            return
        if request.op_code is UserControlOpCode.REGISTER_NEW_USER:
            index = max(self.consent_codes, default=0) + 1
            self.consent_codes[index] = request.consent_code or 0
            self.spawn(self._respond(request.op_code, UserControlResult.SUCCESS, index))
            return
        self.spawn(self._respond(request.op_code, UserControlResult.OP_CODE_NOT_SUPPORTED))

    async def _consent_given(self) -> None:
        await self._respond(UserControlOpCode.CONSENT, UserControlResult.SUCCESS)
        if self._weight.subscribed and not self.streaming:
            self.start_stream(self._stream())

    async def _respond(
        self, op: UserControlOpCode, result: UserControlResult, index: int | None = None
    ) -> None:
        response = UserControlResponse(request_op_code=op, result=result, user_index=index)
        await self._control.notify(encode_user_data_response(response))

    # ------------------------------------------------------------------ measurements
    def _sendable(self, record: ScaleRecord) -> bool:
        return record.user not in self.consent_codes or record.user in self._consented

    def _on_subscribe(self) -> None:
        self.memory.new_session()
        self.start_stream(self._stream())

    async def _send(self, record: ScaleRecord) -> bool:
        if not await self._weight.notify(encode_weight_measurement(weight_for(record))):
            return False
        if record.fat_percent is not None or record.unsuccessful:
            await self._body.notify(
                encode_body_composition_measurement(body_composition_for(record))
            )
        return True

    async def _stream(self) -> None:
        device = self._device
        assert device is not None  # noqa: S101 - set when the GATT database was built
        done = await self.push_records(device, self.memory, self._send, self._sendable)
        waiting = any(not self._sendable(r) for r in self.memory.records)
        if done and self.spec.disconnect_after_send and not waiting:
            self.hang_up_later(device)
