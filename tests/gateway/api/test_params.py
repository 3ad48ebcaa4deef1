"""Query date forms (`When`, `resolve`) and the paging vocabularies (`Paging`), unit level."""

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi import HTTPException
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from gateway.api.paging import Paging
from gateway.api.params import WHEN_PATTERN, When, resolve

WHEN = TypeAdapter(When)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20T07:30:00Z", datetime(2026, 11, 20, 7, 30, tzinfo=UTC)),
        ("2026-11-20T08:30:00+01:00", datetime(2026, 11, 20, 7, 30, tzinfo=UTC)),
        ("2026-11-20T08:30:00 01:00", datetime(2026, 11, 20, 7, 30, tzinfo=UTC)),  # "+" decoded
        ("20261120T073000Z", datetime(2026, 11, 20, 7, 30, tzinfo=UTC)),
        ("20261120T083000+0100", datetime(2026, 11, 20, 7, 30, tzinfo=UTC)),
        ("20261120T073000.5Z", datetime(2026, 11, 20, 7, 30, 0, 500000, tzinfo=UTC)),
        ("2026-11-20", date(2026, 11, 20)),
    ],
)
def test_accepted_forms(text: str, expected: object) -> None:
    assert re.fullmatch(WHEN_PATTERN, text)
    assert WHEN.validate_python(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-20T07:30:00",  # no zone: ambiguous
        "20261120T0730Z",
        "2026-02-30",
        "0001-01-01",
        "20261120T073000",
        "1732089000",
        "",
    ],
)
def test_refused_forms_name_the_accepted_ones(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        WHEN.validate_python(text)
    assert re.search(r"date|out of range", str(caught.value))


def test_a_date_is_its_whole_day_in_the_zone() -> None:
    day = date(2026, 11, 20)
    assert resolve(day, BERLIN, end_of_day=False) == datetime(2026, 11, 19, 23, tzinfo=UTC)
    assert resolve(day, BERLIN, end_of_day=True) == datetime(2026, 11, 20, 23, tzinfo=UTC)
    # A DST day is 23 hours long in Berlin.
    spring = date(2026, 3, 29)
    start = resolve(spring, BERLIN, end_of_day=False)
    end = resolve(spring, BERLIN, end_of_day=True)
    assert start is not None
    assert end is not None
    assert (end - start).total_seconds() == 23 * 3600


def test_the_last_and_first_days_stay_in_range() -> None:
    assert resolve(date(9999, 12, 31), BERLIN, end_of_day=True) == datetime.max.replace(tzinfo=UTC)
    assert resolve(date(9999, 12, 31), ZoneInfo("Etc/GMT+12"), end_of_day=False) is not None
    assert resolve(date(1970, 1, 1), ZoneInfo("Pacific/Kiritimati"), end_of_day=False) is not None


@given(st.from_regex(WHEN_PATTERN, fullmatch=True))
def test_anything_the_schema_allows_parses_or_is_refused_cleanly(text: str) -> None:
    try:
        value = WHEN.validate_python(text)
    except ValidationError:
        return
    for zone in (BERLIN, ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Etc/GMT+12")):
        for end in (False, True):
            assert resolve(value, zone, end_of_day=end) is not None


@pytest.mark.parametrize(
    ("paging", "expected"),
    [
        (Paging(), (100, None, "cursor")),
        (Paging(limit=5, cursor="c", offset=0), (5, "c", "cursor")),
        (Paging(page_limit=5, page_after="c"), (5, "c", "page[after]")),
        (Paging(page_limit=0), (0, None, "page[after]")),
        (Paging(page_size=0), (0, None, "cursor")),
    ],
)
def test_paging_vocabularies(paging: Paging, expected: tuple) -> None:
    assert paging.resolve(100) == expected


@pytest.mark.parametrize(
    ("paging", "needle"),
    [
        (Paging(offset=10), "cursor"),
        (Paging(page_size=10), "page[after]"),
        (Paging(page_size=0, page_number=1), "page[after]"),
        (Paging(page_size=1, page_limit=1), "mixed"),
        (Paging(limit=1, page_limit=1), "give one"),
        (Paging(cursor="a", page_after="b"), "give one"),
    ],
)
def test_paging_refusals_say_what_to_send(paging: Paging, needle: str) -> None:
    with pytest.raises(HTTPException) as caught:
        paging.resolve(100)
    assert caught.value.status_code == 400
    assert needle in str(caught.value.detail)
