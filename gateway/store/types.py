"""Column types: SQLite has no time zones, so instants are stored as fixed-width UTC text."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Dialect, String, TypeDecorator


def utc_text(value: datetime) -> str:
    """Fixed-width ISO-8601 UTC text, so text order is time order (years 1000-9999)."""
    if value.tzinfo is UTC:  # the common case (the save path formats every reading's instant)
        return value.isoformat(timespec="microseconds")
    if value.tzinfo is None or value.utcoffset() is None:
        msg = f"naive datetime {value.isoformat()} given; the store only takes aware UTC times"
        raise ValueError(msg)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def from_utc_text(value: str) -> datetime:
    """Parse text written by `utc_text` back into an aware UTC datetime."""
    return datetime.fromisoformat(value).astimezone(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as `utc_text`; naive datetimes are refused."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> str | None:  # noqa: ARG002
        """Aware datetime → UTC text."""
        return None if value is None else utc_text(value)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        """UTC text → aware datetime."""
        return None if value is None else from_utc_text(str(value))
