"""Measures in Home Assistant's units, converted from every device unit; specials left out."""

import math

import pytest

from drivers.readings import GlucoseUnit, MassUnit, PressureUnit
from gateway.mqtt.measures import glucose_mg_per_dl, measures, values_of
from tests.sync.factories import blood_pressure, body, glucose


@pytest.mark.parametrize(
    ("concentration", "unit", "mg_dl", "mmol_l"),
    [
        (0.00104, GlucoseUnit.KG_PER_L, 104.0, 5.773),  # 104 mg/dL as the meter said it
        (0.0064, GlucoseUnit.MOL_PER_L, 115.3, 6.4),  # 6.4 mmol/L
    ],
)
def test_glucose_in_either_unit(concentration, unit, mg_dl, mmol_l):
    reading = glucose(1, concentration=concentration, unit=unit)
    assert values_of(reading, measures("mg/dL")) == {"glucose": mg_dl}
    assert values_of(reading, measures("mmol/L")) == {"glucose": mmol_l}
    assert glucose_mg_per_dl(concentration, unit) == mg_dl


def test_blood_pressure_in_mmhg_and_pulse_in_bpm():
    kpa = blood_pressure(1, systolic=16.0, diastolic=10.0, unit=PressureUnit.KPA, pulse=None)
    assert values_of(kpa, measures("mmol/L")) == {"systolic": 120.01, "diastolic": 75.01}
    mmhg = blood_pressure(2, systolic=121.0, diastolic=79.0, pulse=66.0)
    assert values_of(mmhg, measures("mmol/L")) == {
        "systolic": 121.0,
        "diastolic": 79.0,
        "pulse": 66.0,
    }


def test_weight_in_kg_and_body_fat_in_percent():
    assert values_of(
        body(1, weight=180.0, unit=MassUnit.LB, fat_percent=None), measures("mg/dL")
    ) == {"weight": 81.647}
    assert values_of(body(2, weight=None, fat_percent=20.5), measures("mg/dL")) == {
        "body_fat": 20.5
    }


def test_nan_and_infinity_specials_are_left_out():
    reading = glucose(1, concentration=math.inf)
    assert values_of(reading, measures("mg/dL")) == {}


def test_every_measure_declares_a_unit_and_home_assistant_metadata():
    for unit in ("mg/dL", "mmol/L"):
        table = measures(unit)
        assert [m.key for m in table] == [
            "glucose",
            "systolic",
            "diastolic",
            "pulse",
            "weight",
            "body_fat",
            "ketone",
        ]
        assert all(m.unit and (m.device_class or m.icon) for m in table)
