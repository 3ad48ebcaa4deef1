from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.readings import (
    DeviceTime,
    GlucoseUnit,
    MassUnit,
    PressureUnit,
    ReadingFlag,
    ReadingKind,
)
from sync.junction import mapping
from sync.junction.payloads import BloodPressurePayload, BodyPayload, GlucosePayload
from sync.outbox import Stage
from tests.sync.factories import T0, blood_pressure, body, glucose

NEW_YORK = ZoneInfo("America/New_York")


def _upload(readings, resource, stage=Stage.DAILY, **kw):
    return mapping.build_upload(
        readings,
        user_id="u1",
        resource=resource,
        provider="accuchek_ble",
        stage=stage,
        zone=NEW_YORK,
        time_zone="America/New_York",
        **kw,
    )


@pytest.mark.parametrize(
    ("concentration", "unit", "mmol"),
    [
        (0.00104, GlucoseUnit.KG_PER_L, 5.773),  # 104 mg/dL / 18.016
        (0.0061, GlucoseUnit.MOL_PER_L, 6.1),
        (0.00018016, GlucoseUnit.KG_PER_L, 1.0),
    ],
)
def test_glucose_units(concentration, unit, mmol):
    assert mapping.glucose_mmol_per_l(concentration, unit) == pytest.approx(mmol, abs=1e-9)


def test_pressure_and_mass_units():
    assert mapping.pressure_mmhg(16.0, PressureUnit.KPA) == 120.01
    assert mapping.pressure_mmhg(120.0, PressureUnit.MMHG) == 120.0
    assert mapping.mass_kg(154.32, MassUnit.LB) == 69.998
    assert mapping.mass_kg(70.5, MassUnit.KG) == 70.5


def test_glucose_sample_wire_shape_and_instant():
    reading = glucose(
        7,
        device_time=DeviceTime(2026, 11, 20, 7, 30, 0, offset_minutes=-5),
        sample_type=1,
        meal=2,
        flags=frozenset({ReadingFlag.HIGH}),
    )
    upload = _upload([reading], ReadingKind.GLUCOSE)
    assert upload.path == "/v2/timeseries/u1/glucose"
    [sample] = upload.body["data"]
    assert sample["id"] == reading.id
    assert sample["value"] == 5.773
    assert (sample["unit"], sample["type"]) == ("mmol/L", "fingerprick")
    assert sample["start_date"] == sample["end_date"] == "2026-11-20T12:25:00Z"
    assert sample["metadata"] == {
        "device": "C0:FF:EE:00:00:01",
        "received_at": "2026-11-20T12:00:00Z",
        "device_time": "2026-11-20T07:30:00",
        "device_time_offset_minutes": "-5",
        "sequence": "7",
        "raw_value": "0.00104",
        "raw_unit": "kg/L",
        "sample_type": "1",
        "meal": "2",
        "flags": "high",
    }
    assert upload.body["stage"] == "daily"
    assert "start_date" not in upload.body
    GlucosePayload.model_validate(upload.body)


def test_blood_pressure_in_kpa_nests_pulse():
    reading = blood_pressure(systolic=16.0, diastolic=10.7, unit=PressureUnit.KPA, pulse=61.0)
    upload = _upload([reading], ReadingKind.BLOOD_PRESSURE)
    assert upload.path == "/v2/timeseries/u1/blood_pressure"
    [sample] = upload.body["data"]
    assert sample["systolic"]["value"] == 120.01
    assert sample["diastolic"]["value"] == 80.26
    assert (sample["pulse"]["value"], sample["pulse"]["unit"]) == (61.0, "bpm")
    assert {s["type"] for s in sample.values()} == {"cuff"}
    assert sample["systolic"]["id"] == f"{reading.id}-systolic"
    BloodPressurePayload.model_validate(upload.body)


def test_blood_pressure_without_pulse_omits_it():
    upload = _upload([blood_pressure(pulse=None)], ReadingKind.BLOOD_PRESSURE)
    assert "pulse" not in upload.body["data"][0]


def test_body_in_pounds_goes_to_the_body_summary():
    upload = _upload(
        [body(weight=154.32, unit=MassUnit.LB, fat_percent=22.25), body(fat_percent=None)],
        ReadingKind.BODY,
    )
    assert upload.path == "/v2/summary/body/u1"
    data = upload.body["data"]
    assert [s["value"] for s in data["body_mass"]] == [69.998, 70.5]
    assert [(s["value"], s["unit"]) for s in data["body_fat_percentage"]] == [(22.25, "%")]
    BodyPayload.model_validate(upload.body)


def test_historical_envelope_carries_the_window():
    window = (datetime(2026, 10, 1, tzinfo=UTC), T0)
    upload = _upload(
        [glucose()], ReadingKind.GLUCOSE, Stage.HISTORICAL, window=window, is_final_chunk=False
    )
    body = upload.body
    assert (body["stage"], body["start_date"], body["end_date"], body["is_final_chunk"]) == (
        "historical",
        "2026-10-01T00:00:00Z",
        "2026-11-20T12:00:00Z",
        False,
    )
    GlucosePayload.model_validate(body)


def test_mixed_kinds_and_missing_window_are_refused():
    with pytest.raises(ValueError, match="another kind"):
        _upload([glucose(), body()], ReadingKind.GLUCOSE)
    with pytest.raises(ValueError, match="no window"):
        _upload([glucose()], ReadingKind.GLUCOSE, Stage.HISTORICAL)


def test_no_device_time_uses_receive_time():
    reading = glucose(device_time=DeviceTime(0, 1, 1, 0, 0, 0))
    [sample] = _upload([reading], ReadingKind.GLUCOSE).body["data"]
    assert sample["start_date"] == "2026-11-20T12:00:00Z"


@given(
    st.floats(min_value=0, max_value=0.01, allow_nan=False),
    st.sampled_from(list(GlucoseUnit)),
)
def test_any_glucose_value_maps_to_a_valid_payload(concentration, unit):
    upload = _upload([glucose(1, concentration=concentration, unit=unit)], ReadingKind.GLUCOSE)
    GlucosePayload.model_validate(upload.body)


@given(
    st.floats(min_value=0, max_value=40, allow_nan=False),
    st.floats(min_value=0, max_value=300, allow_nan=False),
    st.sampled_from(list(PressureUnit)),
    st.one_of(st.none(), st.floats(min_value=0, max_value=250)),
)
def test_any_blood_pressure_maps_to_a_valid_payload(diastolic, systolic, unit, pulse):
    reading = blood_pressure(1, systolic=systolic, diastolic=diastolic, unit=unit, pulse=pulse)
    BloodPressurePayload.model_validate(_upload([reading], ReadingKind.BLOOD_PRESSURE).body)


@given(
    st.one_of(st.none(), st.floats(min_value=0, max_value=700)),
    st.sampled_from(list(MassUnit)),
    st.one_of(st.none(), st.floats(min_value=0, max_value=100)),
)
def test_any_body_reading_maps_to_a_valid_payload(weight, unit, fat):
    reading = body(1, weight=weight, unit=unit, fat_percent=fat)
    BodyPayload.model_validate(_upload([reading], ReadingKind.BODY).body)


@pytest.mark.parametrize(
    "reading",
    [
        glucose(concentration=float("nan")),
        blood_pressure(systolic=float("inf")),
        body(weight=float("nan")),
    ],
)
def test_non_finite_values_name_the_reading(reading):
    with pytest.raises(mapping.UnmappableReadingError) as caught:
        _upload([glucose(), reading][1:], reading.kind)
    assert caught.value.reading_id == reading.id


def test_a_pulse_that_is_not_known_is_left_out_not_sent():
    reading = blood_pressure(pulse=float("nan"))  # NRes: the cuff could not measure it
    [sample] = _upload([reading], ReadingKind.BLOOD_PRESSURE).body["data"]
    assert set(sample) == {"systolic", "diastolic"}
