"""Scenario files: the contract in DESIGN.md §3, and clear errors for bad ones."""

import re
from pathlib import Path

import pytest

from drivers.simulator.scenario import (
    BloodPressureDevice,
    GlucoseDevice,
    ScaleDevice,
    ScenarioError,
    builtin_scenario,
    load_scenario,
    parse_scenario,
)

DESIGN_EXAMPLE = """
[[devices]]
kind = "glucose"
address = "C0:FF:EE:00:00:01"
name = "meter+00012345"
manufacturer = "Roche"
passkey = 123456
records = [
  { seq = 1, time = "2026-11-20T07:30:00", mg_dl = 104 },
  { seq = 2, time = "2026-11-20T12:05:00", mmol_l = 6.1 },
]
faults = { drop_link_after = 1 }
"""


def test_design_example_loads():
    scenario = parse_scenario(DESIGN_EXAMPLE)
    (meter,) = scenario.devices
    assert isinstance(meter, GlucoseDevice)
    assert meter.passkey == 123456
    assert [r.seq for r in meter.records] == [1, 2]
    assert meter.records[1].mmol_l == 6.1
    assert meter.faults.drop_link_after == 1


def test_builtin_scenario_has_one_of_each_family():
    kinds = [type(d) for d in builtin_scenario().devices]
    assert kinds == [GlucoseDevice, BloodPressureDevice, ScaleDevice]
    assert all(d.records for d in builtin_scenario().devices)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("[[devices]]\nkind = 'thermometer'\naddress = 'C0:FF:EE:00:00:01'", "kind"),
        ("[[devices]]\nkind = 'glucose'\naddress = 'nope'", "address"),
        (
            "[[devices]]\nkind = 'glucose'\naddress = 'C0:FF:EE:00:00:01'\n"
            "records = [{ seq = 1, time = '2026-11-20T07:30:00' }]",
            "exactly one of mg_dl, mmol_l or ketone_mmol_l",
        ),
        (
            "[[devices]]\nkind = 'glucose'\naddress = 'C0:FF:EE:00:00:01'\n"
            "faults = { drop_link_afterr = 1 }",
            "drop_link_afterr",
        ),
        ("devices = [", "not valid TOML"),
        (
            "[[devices]]\nkind = 'glucose'\naddress = 'C0:FF:EE:00:00:01'\n"
            "[[devices]]\nkind = 'scale'\naddress = 'c0:ff:ee:00:00:01'",
            "used by two devices",
        ),
    ],
)
def test_bad_scenarios_say_what_is_wrong(text: str, complaint: str):
    with pytest.raises(ScenarioError, match=re.escape(complaint)):
        parse_scenario(text, "bad.toml")


def test_missing_file_names_the_path(tmp_path: Path):
    with pytest.raises(ScenarioError, match=r"nowhere\.toml"):
        load_scenario(tmp_path / "nowhere.toml")
