"""Scale measurements assembled from their packets, in whatever order the packets come.

A SIG scale sends one measurement as a Weight Measurement (0x2A9D) and zero or more Body
Composition Measurement (0x2A9C) packets (several when flag bit 12, "multiple packet", is
set). Which packet carries the user id and the time stamp is up to the scale: a Beurer BF720
sends its body composition without either, right after the weight that has both
(KristianP26/ble-scale-sync #168), others send the body composition first. `ScaleAssembler`
is fed packets one by one and hands back each measurement once it is whole:

- a packet joins the open measurement it fits: one that lacks that part (or whose body
  composition said more packets follow) and whose user id and time stamp do not contradict
  the packet's; a time-stamped packet first looks for the measurement with the same stamp,
  any other packet joins the latest measurement it fits;
- a measurement with its weight and its last body-composition packet is complete at once (a
  scale without the Body Composition service: its weight alone);
- an untimed measurement still waiting for a part is closed when the scale moves on (a new
  weight after its weight, a new body composition after its complete one); time-stamped ones
  wait for a part with their stamp until `flush` (the end of the stream);
- the user id and time stamp of the result come from whichever packet had them.

Placeholder fields are dropped before merging (see `without_placeholders`). Pure: no I/O,
no clock; the receive time of the first packet is the measurement's.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from drivers.errors import ParseError
from drivers.gatt.body_composition import BodyCompositionMeasurement, merge_body_composition
from drivers.gatt.weight_scale import WeightMeasurement
from drivers.readings import DeviceTime

# Body Composition fields a scale zeroes when it measured nothing (a BF788 sends 35 such
# stubs per session: `9803 0000 <bmr> 0000 …`, ble-scale-sync #229). A zero body fat,
# impedance, mass or height is physically impossible, so zero means "absent".
_ZERO_MEANS_ABSENT = (
    "basal_metabolism_kj",
    "muscle_percent",
    "muscle_mass",
    "fat_free_mass",
    "soft_lean_mass",
    "body_water_mass",
    "impedance_ohm",
    "weight",
    "height",
)


def without_placeholders(packet: BodyCompositionMeasurement) -> BodyCompositionMeasurement:
    """The packet with zero-valued placeholder fields set to None (absent).

    A zero body fat becomes None, like the spec's 0xFFFF "measurement unsuccessful": either
    way there is no body fat to report.
    """
    changes: dict[str, object] = {
        name: None for name in _ZERO_MEANS_ABSENT if getattr(packet, name) == 0
    }
    if packet.body_fat_percent == 0:
        changes["body_fat_percent"] = None
    return replace(packet, **changes) if changes else packet  # type: ignore[arg-type]


def weight_without_placeholders(packet: WeightMeasurement) -> WeightMeasurement:
    """The packet with a zero BMI or height (no user profile on the scale) set to None."""
    if packet.bmi == 0 or packet.height == 0:
        return replace(packet, bmi=None, height=None)
    return packet


@dataclass(frozen=True, slots=True)
class AssembledMeasurement:
    """One scale measurement, merged from its packets.

    Attributes:
        weight: The Weight Measurement packet, or None if none came.
        body: The Body Composition packets merged (placeholders dropped), or None.
        body_packets: The Body Composition packets as they came, in arrival order.
        user_id: The scale's user slot, from whichever packet carried it (255 kept as sent).
        timestamp: The device time, from whichever packet carried it (raw).
        received_at: When its first packet arrived.
    """

    weight: WeightMeasurement | None
    body: BodyCompositionMeasurement | None
    body_packets: tuple[BodyCompositionMeasurement, ...]
    user_id: int | None
    timestamp: DeviceTime | None
    received_at: datetime


@dataclass
class _Building:
    received_at: datetime
    weight: WeightMeasurement | None = None
    body: list[BodyCompositionMeasurement] = field(default_factory=list)

    @property
    def user_id(self) -> int | None:
        users = [p.user_id for p in self._packets() if p.user_id is not None]
        return users[0] if users else None

    @property
    def timestamp(self) -> DeviceTime | None:
        stamps = [p.timestamp for p in self._packets() if p.timestamp is not None]
        return stamps[0] if stamps else None

    @property
    def body_open(self) -> bool:
        """A body composition came and said more packets follow."""
        return bool(self.body) and self.body[-1].multiple_packet

    @property
    def body_done(self) -> bool:
        return bool(self.body) and not self.body[-1].multiple_packet

    @property
    def complete(self) -> bool:
        return self.weight is not None and self.body_done

    def _packets(self) -> list[WeightMeasurement | BodyCompositionMeasurement]:
        return [*([self.weight] if self.weight is not None else []), *self.body]

    def fits(self, packet: WeightMeasurement | BodyCompositionMeasurement) -> bool:
        if isinstance(packet, WeightMeasurement):
            if self.weight is not None:
                return False
        elif self.body_done:
            return False
        user, stamp = self.user_id, self.timestamp
        if packet.user_id is not None and user is not None and packet.user_id != user:
            return False
        return packet.timestamp is None or stamp is None or packet.timestamp == stamp

    def add(self, packet: WeightMeasurement | BodyCompositionMeasurement) -> None:
        if isinstance(packet, WeightMeasurement):
            self.weight = packet
        else:
            self.body.append(packet)

    def result(self) -> AssembledMeasurement:
        cleaned = [without_placeholders(p) for p in self.body]
        try:
            body = merge_body_composition(cleaned) if cleaned else None
        except ParseError:
            body = cleaned[0]  # packets in two unit systems: keep the first whole one
        weight = None if self.weight is None else weight_without_placeholders(self.weight)
        return AssembledMeasurement(
            weight=weight,
            body=body,
            body_packets=tuple(self.body),
            user_id=self.user_id,
            timestamp=self.timestamp,
            received_at=self.received_at,
        )


class ScaleAssembler:
    """Incremental assembly of one transfer's scale packets (see the module docstring)."""

    def __init__(self, *, expects_body: bool = True) -> None:
        """Start with nothing pending.

        Args:
            expects_body: The scale has the Body Composition service; False makes every
                weight a whole measurement on its own.
        """
        self._pending: list[_Building] = []
        self._expects_body = expects_body

    def add_weight(
        self, packet: WeightMeasurement, received_at: datetime
    ) -> list[AssembledMeasurement]:
        """Feed a Weight Measurement; returns the measurements this completed or closed."""
        return self._add(packet, received_at)

    def add_body(
        self, packet: BodyCompositionMeasurement, received_at: datetime
    ) -> list[AssembledMeasurement]:
        """Feed a Body Composition packet; returns the measurements this completed or closed."""
        return self._add(packet, received_at)

    def flush(self) -> list[AssembledMeasurement]:
        """The stream ended: every measurement still pending, in the order it began."""
        done, self._pending = self._pending, []
        return [b.result() for b in done]

    @property
    def pending(self) -> int:
        """How many measurements are waiting for more packets."""
        return len(self._pending)

    def _add(
        self, packet: WeightMeasurement | BodyCompositionMeasurement, received_at: datetime
    ) -> list[AssembledMeasurement]:
        target = self._target(packet)
        closed: list[_Building] = []
        if target is None:
            # The scale moved on: untimed measurements waiting for this kind of part are over.
            closed = [b for b in self._pending if b.timestamp is None and not b.fits(packet)]
            self._pending = [b for b in self._pending if b not in closed]
            target = _Building(received_at)
            self._pending.append(target)
        target.add(packet)
        if target.complete or (not self._expects_body and target.weight is not None):
            self._pending.remove(target)
            closed.append(target)
        return [b.result() for b in closed]

    def _target(self, packet: WeightMeasurement | BodyCompositionMeasurement) -> _Building | None:
        fitting = [b for b in self._pending if b.fits(packet)]
        if packet.timestamp is not None:
            same = [b for b in fitting if b.timestamp == packet.timestamp]
            if same:
                return same[0]
        # An open multi-packet body composition takes its next packet first.
        if isinstance(packet, BodyCompositionMeasurement):
            continuing = [b for b in fitting if b.body_open]
            if continuing:
                return continuing[-1]
        return fitting[-1] if fitting else None


def assemble(
    packets: Sequence[tuple[WeightMeasurement | BodyCompositionMeasurement, datetime]],
) -> list[AssembledMeasurement]:
    """Assemble a whole transfer at once (tests and replays).

    Args:
        packets: (packet, receive time) in arrival order.

    Returns:
        The measurements, in the order they were completed, then those flushed at the end.
    """
    assembler = ScaleAssembler()
    done: list[AssembledMeasurement] = []
    for packet, at in packets:
        if isinstance(packet, WeightMeasurement):
            done.extend(assembler.add_weight(packet, at))
        else:
            done.extend(assembler.add_body(packet, at))
    return done + assembler.flush()
