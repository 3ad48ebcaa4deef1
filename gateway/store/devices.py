"""Devices: identity, bond state, read cursors, consent codes, last seen, battery, clock skew."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.dialects.sqlite import insert
from sqlmodel import Session, col, select

from drivers.readings import Reading
from gateway.store.db import Database, dbapi_cursor
from gateway.store.models import DeviceRow
from gateway.store.types import utc_text


class BondState(StrEnum):
    """Pairing state of a device with this gateway's adapter."""

    NONE = "none"
    BONDED = "bonded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Device:
    """A device as the store knows it.

    Attributes:
        address: Bluetooth address (upper case); the identity.
        name: Advertised name.
        brand: Manufacturer (Device Information 0x2A29).
        model: Model number (0x2A24).
        kind: Reading kind it produces (`ReadingKind` value), if known.
        provider: Junction provider slug the driver picks.
        bond_state: Pairing state.
        last_sequence: Last record sequence stored (RACP cursor).
        cursor: Opaque driver cursor (JSON value), or None.
        consent_codes: UDS consent code per device user slot.
        battery_percent: Last battery level.
        clock_skew_s: Device clock minus gateway clock, last measured.
        last_seen_at: When a transfer or advertisement last came (UTC).
    """

    address: str
    name: str | None = None
    brand: str | None = None
    model: str | None = None
    kind: str | None = None
    provider: str | None = None
    bond_state: BondState = BondState.NONE
    last_sequence: int | None = None
    cursor: Any = None
    consent_codes: Mapping[int, int] = field(default_factory=dict)
    battery_percent: int | None = None
    clock_skew_s: float | None = None
    last_seen_at: datetime | None = None


def _from_row(row: DeviceRow) -> Device:
    return Device(
        address=row.address,
        name=row.name,
        brand=row.brand,
        model=row.model,
        kind=row.kind,
        provider=row.provider,
        bond_state=BondState(row.bond_state),
        last_sequence=row.last_sequence,
        cursor=None if row.cursor_json is None else json.loads(row.cursor_json),
        consent_codes={int(k): int(v) for k, v in json.loads(row.consent_json).items()},
        battery_percent=row.battery_percent,
        clock_skew_s=row.clock_skew_s,
        last_seen_at=row.last_seen_at,
    )


def _ensure(session: Session, address: str, now: datetime) -> None:
    session.exec(
        insert(DeviceRow)
        .values(address=address.upper(), created_at=now, updated_at=now)
        .on_conflict_do_nothing()
    )


def _update(session: Session, address: str, now: datetime, **values: Any) -> None:
    _ensure(session, address, now)
    row = session.get_one(DeviceRow, address.upper())
    for name, value in values.items():
        setattr(row, name, value)
    row.updated_at = now
    session.add(row)
    session.flush()


def _upsert(session: Session, address: str, now: datetime, values: Mapping[str, Any]) -> None:
    """`_update` as one INSERT … ON CONFLICT DO UPDATE on the DB-API cursor, no row loaded.

    The save path's form (issue 18: two ORM round trips per transfer were 4 % of a save).
    Only for sessions holding no `DeviceRow` object of `address` (it would not see this).
    `values` are `DeviceRow` column names (code, never input); datetimes become `utc_text`.
    """
    stamp = utc_text(now)
    names = ["address", "created_at", "updated_at", *values]
    params = [address.upper(), stamp, stamp]
    params += [utc_text(v) if isinstance(v, datetime) else v for v in values.values()]
    updates = ", ".join(f"{name} = excluded.{name}" for name in ["updated_at", *values])
    sql = (
        f"INSERT INTO device ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"  # noqa: S608
        f" ON CONFLICT (address) DO UPDATE SET {updates}"
    )
    dbapi_cursor(session).execute(sql, params)


def touch_from_readings(session: Session, readings: Sequence[Reading], *, now: datetime) -> None:
    """Record last seen and clock skew of every device in a transfer (inside its transaction)."""
    latest: dict[str, Reading] = {}
    for reading in readings:
        key = reading.device.upper()
        if key not in latest or reading.received_at >= latest[key].received_at:
            latest[key] = reading
    for address, reading in latest.items():
        values: dict[str, Any] = {"last_seen_at": max(reading.received_at, now)}
        if reading.clock_skew_s is not None:
            values["clock_skew_s"] = reading.clock_skew_s
        _upsert(session, address, now, values)


def advance_cursor(
    session: Session, address: str, last_sequence: int | None, cursor: Any, now: datetime
) -> None:
    """Move a device's cursors (inside the transfer's transaction)."""
    values: dict[str, Any] = {}
    if last_sequence is not None:
        values["last_sequence"] = last_sequence
    if cursor is not None:
        values["cursor_json"] = json.dumps(cursor, sort_keys=True)
    _upsert(session, address, now, values)


def upsert_device(
    db: Database,
    address: str,
    *,
    now: datetime | None = None,
    **values: Any,
) -> Device:
    """Create or update a device's descriptive fields.

    Fields: name, brand, model, kind, provider, battery_percent, clock_skew_s, last_seen_at.

    Returns:
        The device as stored.
    """
    allowed = {
        "name",
        "brand",
        "model",
        "kind",
        "provider",
        "battery_percent",
        "clock_skew_s",
        "last_seen_at",
    }
    unknown = set(values) - allowed
    if unknown:
        msg = f"device {address}: unknown fields {sorted(unknown)}"
        raise ValueError(msg)
    now = now or datetime.now(UTC)
    with db.write() as session:
        _update(session, address, now, **values)
        return _from_row(session.get_one(DeviceRow, address.upper()))


def set_bond_state(db: Database, address: str, state: BondState) -> None:
    """Record the pairing state of a device."""
    with db.write() as session:
        _update(session, address, datetime.now(UTC), bond_state=state.value)


def set_consent_code(db: Database, address: str, user_slot: int, code: int | None) -> None:
    """Record (or with None, forget) the UDS consent code of one user slot of a device."""
    with db.write() as session:
        _ensure(session, address, datetime.now(UTC))
        row = session.get_one(DeviceRow, address.upper())
        codes = json.loads(row.consent_json)
        if code is None:
            codes.pop(str(user_slot), None)
        else:
            codes[str(user_slot)] = code
        _update(session, address, datetime.now(UTC), consent_json=json.dumps(codes, sort_keys=True))


def set_cursor(
    db: Database, address: str, *, last_sequence: int | None = None, cursor: Any = None
) -> None:
    """Move a device's cursors outside a transfer (e.g. after a device memory reset)."""
    with db.write() as session:
        advance_cursor(session, address, last_sequence, cursor, datetime.now(UTC))


def get_device(db: Database, address: str) -> Device | None:
    """One device by address, or None."""
    with db.read() as session:
        row = session.get(DeviceRow, address.upper())
        return None if row is None else _from_row(row)


def list_devices(db: Database) -> list[Device]:
    """Every known device, by address."""
    with db.read() as session:
        return [
            _from_row(row)
            for row in session.exec(select(DeviceRow).order_by(col(DeviceRow.address)))
        ]


def forget_device(db: Database, address: str) -> bool:
    """Forget a device's identity, bond and cursors; its readings and bindings stay.

    Returns:
        Whether the device was known.
    """
    with db.write() as session:
        row = session.get(DeviceRow, address.upper())
        if row is None:
            return False
        session.delete(row)
        return True
