"""Who a reading belongs to: bindings and kiosk sessions, resolved in one pure function."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlmodel import Session

from gateway.store.db import dbapi_cursor
from gateway.store.models import BindingRow, KioskSessionRow
from gateway.store.types import from_utc_text, utc_text


class AttributionSource(StrEnum):
    """What attributed a reading to its user."""

    KIOSK = "kiosk"
    BINDING = "binding"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class Binding:
    """Readings of `device` (only from its user slot `device_user`, if set) belong to `user_id`.

    Attributes:
        device: Device address (upper case).
        device_user: The device's own user index, or None for every slot.
        user_id: The Junction user.
        provider: Provider slug overriding the driver's, or None.
        id: Row id (None before it is stored).
    """

    device: str
    device_user: int | None
    user_id: str
    provider: str | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class KioskSession:
    """A person at the kiosk from `started_at` until `expires_at` (or `ended_at`).

    Attributes:
        user_id: The Junction user at the kiosk.
        device: Only this device's readings are theirs, or any device's if None.
        started_at: Session start (aware, UTC).
        expires_at: Session end unless ended earlier (aware, UTC).
        ended_at: When it was ended explicitly, if it was.
        id: Row id (None before it is stored).
    """

    user_id: str
    device: str | None
    started_at: datetime
    expires_at: datetime
    ended_at: datetime | None = None
    id: int | None = None

    def active_at(self, at: datetime) -> bool:
        """Whether the session covers the instant `at`."""
        end = self.expires_at if self.ended_at is None else min(self.expires_at, self.ended_at)
        return self.started_at <= at < end


@dataclass(frozen=True, slots=True)
class Attribution:
    """The outcome of `resolve_attribution`."""

    user_id: str
    provider: str | None
    source: AttributionSource


def resolve_attribution(
    bindings: Iterable[Binding],
    sessions: Iterable[KioskSession],
    *,
    device: str,
    user_index: int | None,
    at: datetime,
) -> Attribution | None:
    """Who a reading of `device` (user slot `user_index`) received at `at` belongs to.

    Precedence, most specific first: a kiosk session naming this device; a binding of this
    device's slot `user_index`; a binding of every slot of this device; a kiosk session
    naming no device. Among sessions of equal rank the latest started wins. A binding's
    provider override applies whichever rule matched, so a kiosk meter keeps its slug.

    Returns:
        The attribution, or None: the reading stays unassigned (kept, never uploaded).
    """
    device = device.upper()
    mine = [b for b in bindings if b.device.upper() == device]
    slot = next(
        (b for b in mine if b.device_user is not None and b.device_user == user_index), None
    )
    every = next((b for b in mine if b.device_user is None), None)
    binding = slot or every
    override = binding.provider if binding else None
    live = sorted(
        (s for s in sessions if s.active_at(at)), key=lambda s: s.started_at, reverse=True
    )
    named = next((s for s in live if s.device is not None and s.device.upper() == device), None)
    if named:
        return Attribution(named.user_id, override, AttributionSource.KIOSK)
    if binding:
        return Attribution(binding.user_id, override, AttributionSource.BINDING)
    anywhere = next((s for s in live if s.device is None), None)
    if anywhere:
        return Attribution(anywhere.user_id, override, AttributionSource.KIOSK)
    return None


def load_rules(
    session: Session, devices: Sequence[str], at_from: datetime, at_to: datetime
) -> tuple[list[Binding], list[KioskSession]]:
    """The bindings of `devices` and the kiosk sessions overlapping [at_from, at_to].

    On the session's DB-API cursor: every saved transfer asks (issue 18: through the ORM
    this was 6 % of a save). Instants compare as `utc_text`, as the columns store them.
    """
    upper = sorted({d.upper() for d in devices})
    marks = ", ".join("?" * len(upper))
    raw = dbapi_cursor(session)
    bindings = [
        Binding(device, device_user, user_id, provider, id_)
        for device, device_user, user_id, provider, id_ in raw.execute(
            "SELECT device, device_user, user_id, provider, id FROM binding"  # noqa: S608
            f" WHERE device IN ({marks})",
            upper,
        )
    ]
    sessions = [
        KioskSession(
            user_id,
            device,
            from_utc_text(started),
            from_utc_text(expires),
            None if ended is None else from_utc_text(ended),
            id_,
        )
        for user_id, device, started, expires, ended, id_ in raw.execute(
            "SELECT user_id, device, started_at, expires_at, ended_at, id FROM kiosk_session"  # noqa: S608
            " WHERE started_at <= ? AND expires_at > ?"
            f" AND (device IS NULL OR device IN ({marks}))",
            [utc_text(at_to), utc_text(at_from), *upper],
        )
    ]
    return bindings, sessions


def binding_from_row(row: BindingRow) -> Binding:
    """Row → value."""
    return Binding(row.device, row.device_user, row.user_id, row.provider, row.id)


def kiosk_session_from_row(row: KioskSessionRow) -> KioskSession:
    """Row → value."""
    return KioskSession(
        row.user_id, row.device, row.started_at, row.expires_at, row.ended_at, row.id
    )
