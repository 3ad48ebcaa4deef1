"""Users and bindings (device, optional device user slot → Junction user)."""

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, or_
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
        client_user_id: The clinic's own identifier for the person, unique, if set.
    """

    user_id: str
    name: str | None
    created_at: datetime
    client_user_id: str | None = None


class ClientUserIdTakenError(ValueError):
    """Another user already has this `client_user_id`."""

    def __init__(self, client_user_id: str, owner: str) -> None:
        super().__init__(
            f"client_user_id {client_user_id!r} already belongs to user {owner!r}; "
            "identifiers are unique: change that user's first"
        )
        self.client_user_id = client_user_id
        self.owner = owner


def _user(row: UserRow) -> User:
    return User(row.user_id, row.name, row.created_at, row.client_user_id)


def upsert_user(
    db: Database, user_id: str, name: str | None = None, client_user_id: str | None = None
) -> User:
    """Create a user, or update its name and identifier if it exists (None leaves one unchanged).

    Raises:
        ClientUserIdTakenError: `client_user_id` belongs to another user (nothing changes).
    """
    now = datetime.now(UTC)
    with db.write() as session:
        if client_user_id is not None:
            owner = session.exec(
                select(UserRow.user_id).where(col(UserRow.client_user_id) == client_user_id)
            ).first()
            if owner is not None and owner != user_id:
                raise ClientUserIdTakenError(client_user_id, owner)
        values = {"user_id": user_id, "name": name, "client_user_id": client_user_id}
        statement = insert(UserRow).values(**values, created_at=now)
        changes = {k: v for k, v in values.items() if k != "user_id" and v is not None}
        if changes:
            session.exec(statement.on_conflict_do_update(index_elements=["user_id"], set_=changes))
        else:
            session.exec(statement.on_conflict_do_nothing())
        return _user(session.get_one(UserRow, user_id))


def list_users(db: Database) -> list[User]:
    """Every user, by id."""
    with db.read() as session:
        rows = session.exec(select(UserRow).order_by(col(UserRow.user_id)))
        return [_user(row) for row in rows]


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_users(db: Database, text: str, *, limit: int = 20) -> list[User]:
    """Users matching `text`, by name, at most `limit` (the kiosk's staff search).

    A user matches when its name or client_user_id contains `text` (case-insensitive; `%`
    and `_` are literal) or its user_id is `text`.
    """
    pattern = _like_pattern(text.strip())
    with db.read() as session:
        rows = session.exec(
            select(UserRow)
            .where(
                or_(
                    col(UserRow.name).ilike(pattern, escape="\\"),
                    col(UserRow.client_user_id).ilike(pattern, escape="\\"),
                    col(UserRow.user_id) == text.strip(),
                )
            )
            .order_by(func.lower(func.coalesce(col(UserRow.name), "")), col(UserRow.user_id))
            .limit(limit)
        )
        return [_user(row) for row in rows]


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
