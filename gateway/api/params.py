"""Validated query and path parameter types shared by the routes (hostile input → 422)."""

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, BeforeValidator

from gateway.api.schemas import MAX_USER_ID

MIN_YEAR = 1970  # before any device clock; also keeps zone conversion clear of datetime.min
MAX_YEAR = 9999


_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


def _rfc3339(value: object) -> object:
    """Only RFC 3339 date-times with an offset (no bare dates, no epoch numbers)."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        msg = f"{str(value)[:40]!r} is not an RFC 3339 date-time; use e.g. 2026-11-20T07:30:00Z"
        raise ValueError(msg)
    return value


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


Instant = Annotated[datetime, BeforeValidator(_rfc3339), AfterValidator(_utc)]

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
