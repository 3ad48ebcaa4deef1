"""The glucose driver over real Bleak against the simulated meter (DESIGN.md §5 tier 2)."""

import pytest

from drivers.devices.base import Cursor, NoticeCode
from drivers.gatt import uuids
from drivers.readings import GlucoseReading, ReadingFlag
from drivers.simulator.profiles.glucose import GlucoseProfile
from drivers.simulator.scenario import GlucoseRecord, parse_scenario
from drivers.simulator.server import Simulator
from tests.drivers.devices.helpers import collect_over_bleak, fixed_clock
from tests.drivers.simulator.scenarios import METER, meter

GLS = (uuids.GLUCOSE_SERVICE,)


async def collect(cursor: Cursor, **context):
    return await collect_over_bleak(
        METER, "meter+00012345", GLS, cursor, clock=fixed_clock, **context
    )


def sequences(transfer) -> list[int]:
    return [r.sequence for r in transfer.readings]


def meter_profile(simulator: Simulator) -> GlucoseProfile:
    profile = simulator.device(METER).profile
    assert isinstance(profile, GlucoseProfile)
    return profile


@pytest.mark.parametrize("scenario", [meter(20)])
async def test_incremental_reads_fetch_only_new_records_across_connections(simulator):
    first = await collect(Cursor(), historical=True)
    assert first.complete
    assert sequences(first) == list(range(1, 21))
    assert all(ReadingFlag.HISTORICAL in r.flags for r in first.readings)
    assert first.match is not None
    assert first.match.provider == "accuchek_ble"
    assert first.device_info is not None
    assert first.device_info.manufacturer == "Roche"
    assert first.cursor.last_sequence == 20

    nothing_new = await collect(first.cursor)
    assert nothing_new.readings == ()
    assert nothing_new.cursor == first.cursor
    assert nothing_new.notices == ()

    profile = meter_profile(simulator)
    for seq in (21, 22, 23):
        profile.records[seq] = GlucoseRecord(
            seq=seq, time=f"2026-11-21T08:0{seq - 20}:00", mg_dl=99
        )
    later = await collect(nothing_new.cursor)
    assert sequences(later) == [21, 22, 23]
    assert later.cursor.last_sequence == 23
    assert not any(ReadingFlag.HISTORICAL in r.flags for r in later.readings)


@pytest.mark.parametrize("scenario", [meter(10)])
async def test_meter_reset_is_detected_and_everything_read_again(simulator):
    first = await collect(Cursor())
    profile = meter_profile(simulator)
    # Memory wiped, three new records numbered from 1 again, at other times.
    profile.records = {
        s: GlucoseRecord(seq=s, time=f"2026-11-22T09:0{s}:00", mg_dl=110) for s in (1, 2, 3)
    }
    after = await collect(first.cursor)
    assert sequences(after) == [1, 2, 3]
    assert {n.code for n in after.notices} == {NoticeCode.METER_RESET}
    assert not {r.id for r in after.readings} & {r.id for r in first.readings}
    assert after.cursor.last_sequence == 3


@pytest.mark.parametrize("scenario", [meter(5)])
async def test_meter_reset_and_refilled_past_the_cursor_is_detected(simulator):
    first = await collect(Cursor())
    profile = meter_profile(simulator)
    profile.records = {
        s: GlucoseRecord(seq=s, time=f"2026-11-22T10:0{s}:00", mg_dl=120) for s in range(1, 8)
    }
    after = await collect(first.cursor)
    assert sequences(after) == list(range(1, 8))
    assert NoticeCode.METER_RESET in {n.code for n in after.notices}


@pytest.mark.parametrize("scenario", [meter(300, extra="faults = { drop_link_after = 120 }")])
async def test_link_drop_at_record_n_resumes_without_loss_or_duplicates(simulator):
    dropped = await collect(Cursor())
    assert not dropped.complete
    assert NoticeCode.INCOMPLETE in {n.code for n in dropped.notices}
    assert sequences(dropped) == list(range(1, 121))
    assert dropped.cursor.last_sequence == 120

    rest = await collect(dropped.cursor)
    assert rest.complete
    assert sequences(rest) == list(range(121, 301))

    ids = [r.id for r in dropped.readings + rest.readings]
    assert len(ids) == len(set(ids)) == 300


FLAGGED = parse_scenario(
    f"""
[[devices]]
kind = "glucose"
address = "{METER}"
name = "meter+00012345"
manufacturer = "Roche"
records = [
  {{ seq = 1, time = "2026-11-20T07:00:00", mg_dl = 104, meal = 1 }},
  {{ seq = 2, time = "2026-11-20T08:00:00", mg_dl = 90, control = true }},
  {{ seq = 3, time = "2026-11-20T09:00:00", mmol_l = 33.3, status = 32 }},
]
"""
)


@pytest.mark.parametrize("scenario", [FLAGGED])
async def test_context_merged_and_control_and_high_flagged(simulator):
    transfer = await collect(Cursor())
    by_seq: dict[int, GlucoseReading] = {r.sequence: r for r in transfer.readings}  # type: ignore[misc]
    assert by_seq[1].meal == 1
    assert ReadingFlag.CONTROL_SOLUTION in by_seq[2].flags
    assert ReadingFlag.HIGH in by_seq[3].flags
    assert by_seq[3].unit.value == "mol/L"


def _taidoc() -> str:
    return """
[[devices]]
kind = "glucose"
address = "C0:FF:EE:00:00:01"
name = "TAIDOC TD4277"
manufacturer = "TaiDoc"
numbering = "newest_first"
records = [
  { seq = 1, time = "2026-11-20T07:00:00", mg_dl = 120 },
  { seq = 2, time = "2026-11-20T08:00:00", mg_dl = 110 },
  { seq = 3, time = "2026-11-20T09:00:00", mg_dl = 100 },
  { seq = 4, time = "2026-11-20T10:00:00", mg_dl = 130, after_reads = 1 },
]
"""


@pytest.mark.parametrize("scenario", [parse_scenario(_taidoc())])
async def test_newest_first_meter_keeps_identities_across_a_new_test(simulator):
    advert = ("TAIDOC TD4277", GLS)
    first = await collect_over_bleak(METER, *advert, Cursor(), clock=fixed_clock)
    assert [r.sequence for r in first.readings] == [0, 1, 2]  # 0 is the latest
    assert first.cursor.newest_first
    second = await collect_over_bleak(METER, *advert, first.cursor, clock=fixed_clock)
    assert [r.sequence for r in second.readings] == [0, 1, 2, 3]  # every number shifted
    assert {r.id for r in first.readings} < {r.id for r in second.readings}
    assert len({r.id for r in (*first.readings, *second.readings)}) == 4
    assert not [n for n in (*first.notices, *second.notices) if n.code is NoticeCode.METER_RESET]


CARESENS = """
[[devices]]
kind = "glucose"
address = "C0:FF:EE:00:00:01"
name = "CareSens N Premier"
manufacturer = "i-SENS"
records = [
  { seq = 1, time = "2026-11-20T07:31:00", ketone_mmol_l = 1.5 },
  { seq = 2, time = "2026-11-20T07:35:00", mg_dl = 120, meal = 1 },
]
"""


@pytest.mark.parametrize("scenario", [parse_scenario(CARESENS)])
async def test_a_caresens_ketone_result_comes_over_bleak_as_a_ketone_reading(simulator):
    from drivers.readings import KetoneReading

    transfer = await collect_over_bleak(
        METER, "CareSens N Premier", GLS, Cursor(), clock=fixed_clock
    )
    ketone, glucose = transfer.readings
    assert isinstance(ketone, KetoneReading)
    assert ketone.concentration_mmol_l == 1.5
    assert isinstance(glucose, GlucoseReading)
    assert glucose.concentration == 0.0012
    assert transfer.match is not None
    assert (transfer.match.brand, transfer.match.provider) == ("CareSens", "manual")
