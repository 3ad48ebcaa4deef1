"""Scenario builders shared by the simulator-tier tests."""

from drivers.simulator.scenario import Scenario, parse_scenario

METER = "C0:FF:EE:00:00:01"
CUFF = "C0:FF:EE:00:00:02"
SCALE = "C0:FF:EE:00:00:03"


def meter(records: int, extra: str = "") -> Scenario:
    """A glucose meter holding `records` records with sequence numbers 1..records."""
    rows = ",\n".join(
        f'{{ seq = {i}, time = "2026-11-20T{(i // 60) % 24:02d}:{i % 60:02d}:00", '
        f"mg_dl = {80 + i % 200} }}"
        for i in range(1, records + 1)
    )
    return parse_scenario(
        f"""
[[devices]]
kind = "glucose"
address = "{METER}"
name = "meter+00012345"
manufacturer = "Roche"
{extra}
records = [
{rows}
]
"""
    )


_CUFF_RECORDS = """
records = [
  { time = "2026-11-20T07:40:00", systolic = 128, diastolic = 82, pulse = 68, user = 1 },
  { time = "2026-11-20T20:15:00", systolic = 16.1, diastolic = 10.5, unit = "kPa", user = 2, \
status = 4 },
  { systolic = 121, diastolic = 79 },
]
"""  # the backslash joins the long record onto one TOML line


def cuff(extra: str = "") -> Scenario:
    """A BP cuff with three readings: mmHg, kPa, and one without a timestamp."""
    return parse_scenario(
        f"""
[[devices]]
kind = "blood_pressure"
address = "{CUFF}"
name = "BLEsmart_00000116"
manufacturer = "OMRON HEALTHCARE"
{extra}
"""
        + _CUFF_RECORDS
    )


def scale(extra: str = "", users: str = "") -> Scenario:
    """A scale with two users' readings and one unsuccessful measurement."""
    return parse_scenario(
        f"""
[[devices]]
kind = "scale"
address = "{SCALE}"
name = "BF720"
manufacturer = "Beurer"
{extra}
{users}
records = [
  {{ time = "2026-11-20T07:05:00", weight_kg = 82.4, fat_percent = 24.1, user = 1 }},
  {{ time = "2026-11-20T07:09:00", weight_lb = 150.2, user = 2 }},
  {{ time = "2026-11-20T07:10:00", unsuccessful = true, user = 2 }},
]
"""
    )
