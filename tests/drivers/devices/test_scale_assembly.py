"""The scale packet assembler: any packet order, whichever packet carries user and time."""

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from drivers.devices.scale_assembly import (
    AssembledMeasurement,
    ScaleAssembler,
    assemble,
    without_placeholders,
)
from drivers.gatt.body_composition import (
    BodyCompositionMeasurement,
    parse_body_composition_measurement,
)
from drivers.gatt.weight_scale import WeightMeasurement, parse_weight_measurement
from drivers.readings import DeviceTime

T = datetime(2026, 5, 12, 19, 0, tzinfo=UTC)
# KristianP26/ble-scale-sync #168: a BF720 measurement, weight then body composition.
BF720_WEIGHT = parse_weight_measurement(bytes.fromhex("0e783eea07050c12353601ee002607"))
BF720_BODY = parse_body_composition_measurement(bytes.fromhex("9803c200df1a9701cc2fca21a811"))
Packet = WeightMeasurement | BodyCompositionMeasurement


def _summary(m: AssembledMeasurement) -> tuple[object, ...]:
    body = m.body
    return (
        None if m.weight is None else m.weight.weight,
        None if body is None else body.body_fat_percent,
        None if body is None else body.impedance_ohm,
        m.user_id,
        m.timestamp,
    )


def test_bf720_body_without_user_or_time_joins_its_weight():
    [m] = assemble([(BF720_WEIGHT, T), (BF720_BODY, T + timedelta(seconds=1))])
    assert _summary(m) == (79.96, 19.4, 452.0, 1, DeviceTime(2026, 5, 12, 18, 53, 54))
    assert m.received_at == T


def test_a_complete_measurement_is_handed_back_at_once():
    assembler = ScaleAssembler()
    assert assembler.add_weight(BF720_WEIGHT, T) == []
    [m] = assembler.add_body(BF720_BODY, T)
    assert m.weight is BF720_WEIGHT
    assert assembler.pending == 0
    assert assembler.flush() == []


def test_user_and_time_come_from_the_body_when_the_weight_has_none():
    weight = WeightMeasurement(weight=70.0)
    body = replace(BF720_BODY, user_id=3, timestamp=DeviceTime(2026, 5, 1, 7, 0, 0))
    [m] = assemble([(weight, T), (body, T)])
    assert (m.user_id, m.timestamp) == (3, DeviceTime(2026, 5, 1, 7, 0, 0))


def test_packets_of_different_users_are_never_merged():
    other = replace(BF720_BODY, user_id=2)
    done = assemble([(BF720_WEIGHT, T), (other, T)])
    assert [m.user_id for m in done] == [1, 2]
    assert done[0].body is None
    assert done[1].weight is None


def test_a_weight_only_scale_hands_back_each_weight_alone():
    assembler = ScaleAssembler(expects_body=False)
    [m] = assembler.add_weight(BF720_WEIGHT, T)
    assert m.body is None


def test_untimed_history_pairs_each_weight_with_the_body_after_it():
    weights = [WeightMeasurement(weight=70.0 + i, user_id=1) for i in range(3)]
    bodies = [replace(BF720_BODY, body_fat_percent=20.0 + i) for i in range(3)]
    packets: list[tuple[Packet, datetime]] = []
    for w, b in zip(weights, bodies, strict=True):
        packets += [(w, T), (b, T)]
    done = assemble(packets)
    assert [(m.weight.weight, m.body.body_fat_percent) for m in done] == [  # type: ignore[union-attr]
        (70.0, 20.0),
        (71.0, 21.0),
        (72.0, 22.0),
    ]


def test_timed_parts_find_their_measurement_even_when_interleaved():
    stamps = [DeviceTime(2026, 5, d, 7, 0, 0) for d in (1, 2)]
    w1, w2 = (WeightMeasurement(weight=70.0 + i, timestamp=s) for i, s in enumerate(stamps))
    b1, b2 = (
        replace(BF720_BODY, body_fat_percent=20.0 + i, timestamp=s) for i, s in enumerate(stamps)
    )
    done = assemble([(w1, T), (w2, T), (b2, T), (b1, T)])
    assert sorted((m.weight.weight, m.body.body_fat_percent) for m in done) == [  # type: ignore[union-attr]
        (70.0, 20.0),
        (71.0, 21.0),
    ]


def test_zeroed_composition_fields_are_absent_not_zero():
    # ble-scale-sync #229: BF788 stubs `9803 0000 <bmr> 0000 0000 0000 0000`.
    stub = parse_body_composition_measurement(bytes.fromhex("98030000df1a0000000000000000"))
    cleaned = without_placeholders(stub)
    assert cleaned.body_fat_percent is None
    assert cleaned.impedance_ohm is None
    assert cleaned.muscle_percent is None
    assert cleaned.basal_metabolism_kj == 6879
    [m] = assemble([(BF720_WEIGHT, T), (stub, T)])
    assert m.body is not None
    assert m.body.body_fat_percent is None
    assert m.weight is not None
    assert m.weight.weight == 79.96


def _split(body: BodyCompositionMeasurement) -> list[BodyCompositionMeasurement]:
    """The body composition as two packets, the first flagged "multiple packet"."""
    first = replace(body, impedance_ohm=None, multiple_packet=True)
    second = replace(body, muscle_percent=None, soft_lean_mass=None, multiple_packet=False)
    return [first, second]


@given(
    weight_at=st.integers(0, 2),
    user_on=st.sampled_from(["weight", "body", "both"]),
    time_on=st.sampled_from(["weight", "body", "both", "none"]),
)
def test_any_packet_order_gives_the_same_measurement(weight_at, user_on, time_on):
    stamp = DeviceTime(2026, 5, 12, 18, 53, 54)
    weight = replace(
        BF720_WEIGHT,
        user_id=1 if user_on in ("weight", "both") else None,
        timestamp=stamp if time_on in ("weight", "both") else None,
    )
    body = replace(
        BF720_BODY,
        user_id=1 if user_on in ("body", "both") else None,
        timestamp=stamp if time_on in ("body", "both") else None,
    )
    parts: list[Packet] = list(_split(body))
    parts.insert(weight_at, weight)
    [m] = assemble([(p, T) for p in parts])
    expected_time = None if time_on == "none" else stamp
    assert _summary(m) == (79.96, 19.4, 452.0, 1, expected_time)
    assert m.body is not None
    assert m.body.muscle_percent == 40.7


def test_every_order_of_one_single_packet_measurement_agrees():
    results = {
        _summary(assemble([(p, T) for p in order])[0])
        for order in itertools.permutations([BF720_WEIGHT, BF720_BODY])
    }
    assert len(results) == 1
