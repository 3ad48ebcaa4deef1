"""The last read failure of each device, for `edge-gateway status`.

A device seen but not read shows there with its error (the collector logs a failure once;
this keeps it).

One row per device (table `device_failure`, schema v7), replaced on each failure and deleted
by the next good read. No measured values: the error texts name the device, the step and
the remedy only.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from gateway.store.db import Database


@dataclass(frozen=True, slots=True)
class DeviceFailure:
    """A device's last failed read.

    Attributes:
        address: Bluetooth address (upper case).
        name: Advertised name, if any.
        kind: Reading kind its driver produces.
        brand: Brand the driver gave it.
        error: The one-line error (subject and remedy).
        failures: Failed reads in a row.
        failed_at: When the last one failed (UTC).
    """

    address: str
    name: str | None
    kind: str | None
    brand: str | None
    error: str
    failures: int
    failed_at: datetime


def record_failure(
    db: Database,
    address: str,
    error: str,
    *,
    name: str | None = None,
    kind: str | None = None,
    brand: str | None = None,
    now: datetime | None = None,
) -> None:
    """Note a failed read of `address` (counting failures in a row)."""
    at = (now or datetime.now(UTC)).isoformat()
    with db.write() as session:
        session.execute(
            sa.text(
                "INSERT INTO device_failure "
                "(address, name, kind, brand, error, failures, failed_at) "
                "VALUES (:address, :name, :kind, :brand, :error, 1, :at) "
                "ON CONFLICT (address) DO UPDATE SET error = excluded.error, "
                "failures = failures + 1, failed_at = excluded.failed_at, "
                "name = coalesce(excluded.name, name), kind = coalesce(excluded.kind, kind), "
                "brand = coalesce(excluded.brand, brand)"
            ),
            {
                "address": address.upper(),
                "name": name,
                "kind": kind,
                "brand": brand,
                "error": error,
                "at": at,
            },
        )


def clear_failure(db: Database, address: str) -> None:
    """A good read: forget the device's failures."""
    with db.write() as session:
        session.execute(
            sa.text("DELETE FROM device_failure WHERE address = :address"),
            {"address": address.upper()},
        )


def failing_addresses(db: Database) -> list[str]:
    """Addresses with a failure on record (so a good read knows to clear it)."""
    with db.read() as session:
        return [str(r[0]) for r in session.execute(sa.text("SELECT address FROM device_failure"))]


def list_failures(db: Database) -> list[DeviceFailure]:
    """Every device whose last read failed, by address."""
    with db.read() as session:
        rows = session.execute(
            sa.text(
                "SELECT address, name, kind, brand, error, failures, failed_at "
                "FROM device_failure ORDER BY address"
            )
        ).all()
    return [
        DeviceFailure(
            address=str(r[0]),
            name=r[1],
            kind=r[2],
            brand=r[3],
            error=str(r[4]),
            failures=int(r[5]),
            failed_at=datetime.fromisoformat(str(r[6])),
        )
        for r in rows
    ]
