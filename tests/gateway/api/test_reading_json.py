"""Stored rows → the API's Reading dicts: the pieces the byte-for-byte comparison relies on.

The whole rendering is compared with the ORM + pydantic path in test_reading_rows.py.
"""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import TypeAdapter

from gateway.api.reading_json import ROW_COLUMNS, instant, reading_dict
from gateway.store.types import from_utc_text, utc_text

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        utc_text(T0),
        utc_text(T0 + timedelta(microseconds=1)),
        utc_text(T0 + timedelta(microseconds=500_000)),
        "2026-11-20T13:00:00+01:00",  # not utc_text's form: parsed
        "2026-11-20T12:00:00.250+00:00",
    ],
)
def test_instants_are_written_as_pydantic_writes_them(text) -> None:
    """As the ORM path shows a stored time: `from_utc_text`, then pydantic."""
    expected = TypeAdapter(datetime).dump_json(from_utc_text(text)).decode()
    assert f'"{instant(text)}"' == expected


def _row(**changes: object) -> tuple[object, ...]:
    row = dict.fromkeys(ROW_COLUMNS)
    row.update(
        id="r1",
        kind="blood_pressure",
        device="C0:FF:EE:00:00:02",
        upload_provider="omron_ble",
        start_date=utc_text(T0),
        time_zone="Europe/Berlin",
        received_at=utc_text(T0),
        updated_at=utc_text(T0),
        state="queued",
        flags_json="[]",
        values_json='{"diastolic": 80, "mean_arterial": null, "measurement_status": null, '
        '"pulse_bpm": null, "systolic": 120, "unit": "mmHg"}',
        change_seq=1,
    )
    row.update(changes)
    return tuple(row.values())


def test_whole_numbers_a_driver_stored_are_shown_as_floats() -> None:
    """`Quantity.value` is a float: pydantic shows 120 as 120.0, and so must the lean path."""
    shown = reading_dict(_row())
    assert shown["values"]["systolic"] == {"value": 120.0, "unit": "mmHg"}
    assert isinstance(shown["values"]["systolic"]["value"], float)
    assert shown["raw"]["raw_systolic"] == "120"  # the device's own value, as it came


def test_an_unknown_kind_or_unit_is_an_error_not_a_guess() -> None:
    with pytest.raises(KeyError):
        reading_dict(_row(kind="spirometry"))
    with pytest.raises(KeyError):
        reading_dict(_row(values_json='{"systolic": 1, "diastolic": 1, "unit": "psi"}'))


def test_the_offset_follows_daylight_saving_time() -> None:
    summer = reading_dict(_row(start_date=utc_text(T0 - timedelta(days=150))))
    winter = reading_dict(_row())
    assert (summer["timezone_offset"], winter["timezone_offset"]) == (7200, 3600)
