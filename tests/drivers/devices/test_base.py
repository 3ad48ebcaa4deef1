"""The driver contract's value types: the cursor the store keeps opaque, transfers."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.devices.base import Cursor, Transfer


def test_cursor_round_trips_through_json_text():
    cursor = Cursor(last_sequence=65535, last_id="ab" * 16)
    assert Cursor.from_json(json.loads(json.dumps(cursor.to_json()))) == cursor


@pytest.mark.parametrize(
    "stored",
    [None, 7, "x", [], {}, {"last_sequence": True}, {"last_sequence": "3"}, {"last_id": 5}],
)
def test_an_unreadable_cursor_means_start_over(stored):
    assert (
        Cursor.from_json(stored) == Cursor(None, None) or Cursor.from_json(stored).last_id is None
    )


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), st.lists, max_leaves=5))
def test_from_json_never_raises(value):
    Cursor.from_json(value)
    Cursor.from_json({"last_sequence": value, "last_id": value})


def test_transfer_exposes_the_cursor_sequence():
    assert Transfer(readings=(), cursor=Cursor(12, None)).last_sequence == 12
    assert Transfer(readings=(), cursor=Cursor()).complete


def test_a_newest_first_cursor_round_trips_and_old_cursors_stay_as_they_were():
    assert Cursor.from_json(Cursor(newest_first=True).to_json()) == Cursor(newest_first=True)
    assert Cursor(3, "abc").to_json() == {"last_sequence": 3, "last_id": "abc"}
    assert Cursor.from_json({"last_sequence": 3, "newest_first": "yes"}).newest_first is False
