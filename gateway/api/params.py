"""Validated query and path parameter types shared by the routes (hostile input → 422)."""

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Path, Query
from pydantic import PlainValidator, WithJsonSchema

from gateway.api.schemas import MAX_USER_ID

MIN_YEAR = 1970  # before any device clock; also keeps zone conversion clear of datetime.min
MAX_YEAR = 9999


_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


def _utc(value: datetime) -> datetime:
    """The instant in UTC, within years MIN_YEAR to MAX_YEAR."""
    try:
        instant = value.astimezone(UTC)
    except OverflowError as exc:
        msg = f"{value.isoformat()} is out of range; use a year from {MIN_YEAR} to {MAX_YEAR}"
        raise ValueError(msg) from exc
    if not MIN_YEAR <= instant.year <= MAX_YEAR:
        msg = f"{value.isoformat()} is out of range; use a year from {MIN_YEAR} to {MAX_YEAR}"
        raise ValueError(msg)
    return instant


UserQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_USER_ID,
        description="Only this Junction user's readings.",
    ),
]
DeviceQuery = Annotated[
    str | None,
    Query(min_length=1, max_length=64, description="Only this device's readings (address)."),
]
AddressPath = Annotated[
    str,
    Path(
        pattern=r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$",
        description="Bluetooth address, e.g. C0:FF:EE:00:00:01.",
    ),
]
UserPath = Annotated[
    str, Path(min_length=1, max_length=MAX_USER_ID, pattern=r"^[A-Za-z0-9._:@-]+$")
]


# ---------------------------------------------------------------- client date forms

# The three forms nearby apps send (README "API conventions"):
# - RFC 3339 date-time with an offset (Junction, Validic: "2013-03-28T14:32:00+00:00"); a
#   space where the "+" was is read as "+", because Validic's documented URLs put a bare "+"
#   in the query string, which form-decoding turns into a space;
# - Human API's basic format "YYYYMMDDTHHmmssZ" (Human API "Patterns and Conventions": "All
#   dates are in UTC date format: YYYYMMDDTHHmmssZ"), also with a ±HHMM offset;
# - a calendar date "YYYY-MM-DD" (Human API "Date Ranges"): the whole day in the gateway's
#   configured `timezone`, resolved by `resolve` once the zone is known.
_BASIC = re.compile(
    r"^(\d{4})(\d{2})(\d{2})[Tt](\d{2})(\d{2})(\d{2})(\.\d{1,6})?([Zz]|[+-]\d{2}:?\d{2})$"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_RFC3339_LOOSE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+ -]\d{2}:\d{2})$"
)
WHEN_PATTERN = (
    r"^(\d{4}-\d{2}-\d{2}"
    r"|\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+ -]\d{2}:\d{2})"
    r"|\d{8}[Tt]\d{6}(\.\d{1,6})?([Zz]|[+-]\d{2}:?\d{2}))$"
)
WHEN_FORMS = (
    "RFC 3339 (`2026-11-20T07:30:00Z`, `2026-11-20T08:30:00+01:00`), "
    "Human API's basic UTC form (`20261120T073000Z`), "
    "or a date (`2026-11-20`: the whole day in the gateway's `timezone`)"
)


def _when(value: object) -> datetime | date:
    """An aware UTC instant, or a calendar date to place in the gateway's zone later."""
    text = value if isinstance(value, str) else ""
    if _DATE.fullmatch(text):
        try:
            day = date.fromisoformat(text)
        except ValueError as exc:
            msg = f"{text!r} is not a calendar date; use YYYY-MM-DD"
            raise ValueError(msg) from exc
        if not MIN_YEAR <= day.year <= MAX_YEAR:
            msg = f"{text} is out of range; use a year from {MIN_YEAR} to {MAX_YEAR}"
            raise ValueError(msg)
        return day
    basic = _BASIC.fullmatch(text)
    if basic:
        y, mo, d, h, mi, s, frac, zone = basic.groups()
        offset = "+00:00" if zone in "Zz" else f"{zone[:3]}:{zone[-2:]}"
        text = f"{y}-{mo}-{d}T{h}:{mi}:{s}{frac or ''}{offset}"
    elif _RFC3339_LOOSE.fullmatch(text) and text[-6] == " ":
        text = f"{text[:-6]}+{text[-5:]}"  # a form-decoded "+" (see above)
    if not _RFC3339.fullmatch(text):
        msg = f"{str(value)[:40]!r} is not a date or date-time; use {WHEN_FORMS}"
        raise ValueError(msg)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        msg = f"{str(value)[:40]!r} is not a valid date-time: {exc}"
        raise ValueError(msg) from exc
    return _utc(parsed)


When = Annotated[
    datetime | date,
    PlainValidator(_when),
    WithJsonSchema({"type": "string", "pattern": WHEN_PATTERN}),
]
"""A query bound in any of the client forms above (422 naming the forms otherwise)."""


def resolve(value: datetime | date | None, zone: ZoneInfo, *, end_of_day: bool) -> datetime | None:
    """A `When` as a UTC instant: a date is its local midnight in `zone`.

    Args:
        value: What the client sent (None: no bound).
        zone: The gateway's configured zone (config `timezone`).
        end_of_day: For an inclusive end bound (`end_date`): a date means the midnight that
            ends it, so the whole day is inside an exclusive `< bound` comparison.

    Returns:
        The bound in UTC, or None.
    """
    if value is None or isinstance(value, datetime):
        return value
    last = datetime.max.replace(tzinfo=UTC)
    if end_of_day:
        if value >= date.max:
            return last
        value += timedelta(days=1)
    try:
        return datetime.combine(value, time(0), tzinfo=zone).astimezone(UTC)
    except OverflowError:  # the first or last representable day: stay within datetime
        return last if end_of_day else datetime.min.replace(tzinfo=UTC)
