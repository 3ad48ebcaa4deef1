"""Users and bindings (device, optional device user slot → Junction user)."""

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func
from sqlalchemy.dialects.sqlite import insert
from sqlmodel import col, select

from gateway.store.attribution import (
    Attribution,
    Binding,
    binding_from_row,
    load_rules,
    resolve_attribution,
)
from gateway.store.db import Database
from gateway.store.models import BindingRow, UserRow


@dataclass(frozen=True, slots=True)
class User:
    """A Junction user known to the gateway.

    Attributes:
        user_id: Junction user id.
        name: Display name for the kiosk page, if any.
        created_at: When the gateway learned of the user (UTC).
    """

    user_id: str
    name: str | None
    created_at: datetime


def upsert_user(db: Database, user_id: str, name: str | None = None) -> User:
    """Create a user, or update its name if it exists (a None name leaves it unchanged)."""
    now = datetime.now(UTC)
    with db.write() as session:
        statement = insert(UserRow).values(user_id=user_id, name=name, created_at=now)
        if name is None:
            session.exec(statement.on_conflict_do_nothing())
        else:
            session.exec(
                statement.on_conflict_do_update(index_elements=["user_id"], set_={"name": name})
            )
        row = session.get_one(UserRow, user_id)
        return User(row.user_id, row.name, row.created_at)


def list_users(db: Database) -> list[User]:
    """Every user, by id."""
    with db.read() as session:
        rows = session.exec(select(UserRow).order_by(col(UserRow.user_id)))
        return [User(row.user_id, row.name, row.created_at) for row in rows]


def bind(
    db: Database,
    device: str,
    user_id: str,
    *,
    device_user: int | None = None,
    provider: str | None = None,
) -> Binding:
    """Bind a device (or one of its user slots) to a user, replacing that slot's binding.

    The user is created if unknown. Readings already stored stay as they are; use
    `readings.assign_readings` to give unassigned ones to the user.

    Returns:
        The binding as stored.
    """
    now = datetime.now(UTC)
    device = device.upper()
    with db.write() as session:
        session.exec(
            insert(UserRow).values(user_id=user_id, created_at=now).on_conflict_do_nothing()
        )
        existing = session.exec(
            select(BindingRow).where(
                col(BindingRow.device) == device,
                func.coalesce(col(BindingRow.device_user), -1)
                == (-1 if device_user is None else device_user),
            )
        ).first()
        row = existing or BindingRow(
            device=device, device_user=device_user, user_id=user_id, created_at=now
        )
        row.user_id = user_id
        row.provider = provider
        session.add(row)
        session.flush()
        return binding_from_row(row)


def unbind(db: Database, device: str, *, device_user: int | None = None) -> bool:
    """Remove the binding of a device slot (None: the every-slot binding).

    Returns:
        Whether a binding was removed.
    """
    with db.write() as session:
        row = session.exec(
            select(BindingRow).where(
                col(BindingRow.device) == device.upper(),
                func.coalesce(col(BindingRow.device_user), -1)
                == (-1 if device_user is None else device_user),
            )
        ).first()
        if row is None:
            return False
        session.delete(row)
        return True


def list_bindings(db: Database, device: str | None = None) -> list[Binding]:
    """Bindings, optionally of one device, by device then slot."""
    query = select(BindingRow).order_by(col(BindingRow.device), col(BindingRow.device_user))
    if device is not None:
        query = query.where(col(BindingRow.device) == device.upper())
    with db.read() as session:
        return [binding_from_row(row) for row in session.exec(query)]


def resolve_user(
    db: Database, device: str, user_index: int | None, at: datetime
) -> Attribution | None:
    """Who a reading of `device` (slot `user_index`) received at `at` belongs to, if anyone.

    See `attribution.resolve_attribution` for the precedence of kiosk sessions and bindings.
    """
    with db.read() as session:
        bindings, sessions = load_rules(session, [device], at, at)
    return resolve_attribution(bindings, sessions, device=device, user_index=user_index, at=at)
