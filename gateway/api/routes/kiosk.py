"""`/v1/kiosk/sessions`: who is at the kiosk (their readings are theirs meanwhile)."""

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from gateway.api.deps import ReadScope, ServicesDep
from gateway.api.kiosk_access import StaffOrAdminScope
from gateway.api.schemas import (
    AUTH_RESPONSES,
    Deleted,
    KioskCurrent,
    KioskSessionOut,
    KioskStart,
    Problem,
)
from gateway.events import KIOSK_SESSION_ENDED, KIOSK_SESSION_STARTED
from gateway.services import Services
from gateway.store import aio, kiosk, users
from gateway.store.attribution import KioskSession

router = APIRouter(prefix="/v1/kiosk/sessions", tags=["kiosk"], responses=AUTH_RESPONSES)

SessionId = Annotated[int, Path(ge=1, le=2**62)]  # SQLite integers are 64-bit


def display_name(name: str | None, label: str | None) -> str | None:
    """What the patient view calls the person: `[kiosk] label`, else the name's first word."""
    if label:
        return label
    words = (name or "").split()
    return words[0] if words else None


def _out(session: KioskSession, names: dict[str, str | None], label: str | None) -> KioskSessionOut:
    if session.id is None:  # stored sessions always have one
        msg = "kiosk session without id"
        raise RuntimeError(msg)
    name = names.get(session.user_id)
    return KioskSessionOut(
        id=session.id,
        user_id=session.user_id,
        name=name,
        display_name=display_name(name, label),
        device=session.device,
        started_at=session.started_at,
        expires_at=session.expires_at,
        ended_at=session.ended_at,
    )


async def _names(services: Services) -> dict[str, str | None]:
    return {u.user_id: u.name for u in await aio.call(users.list_users, services.db)}


async def begin(
    services: Services, user_id: str, duration_s: int | None, device: str | None
) -> KioskSessionOut:
    """Start a session (`[kiosk] session_s` long by default) and announce it."""
    seconds = duration_s if duration_s is not None else services.settings.kiosk.session_s
    session = await aio.call(
        kiosk.start_session,
        services.db,
        user_id,
        duration=timedelta(seconds=seconds),
        device=device,
    )
    out = _out(session, await _names(services), services.settings.kiosk.label)
    services.events.publish(KIOSK_SESSION_STARTED, out.user_id, out.model_dump(mode="json"))
    return out


@router.post("", status_code=status.HTTP_201_CREATED)
async def start_session(
    services: ServicesDep, _: StaffOrAdminScope, body: KioskStart
) -> KioskSessionOut:
    """Start a session; earlier live sessions on the same device (or on none) end now.

    Needs admin scope or the kiosk's unlocked staff mode (`X-Kiosk-Staff`).
    """
    return await begin(services, body.user_id, body.duration_s, body.device)


@router.get("/current")
async def current_sessions(services: ServicesDep, _: ReadScope) -> KioskCurrent:
    """Live sessions, newest first."""
    sessions = await aio.call(kiosk.active_sessions, services.db)
    names = await _names(services)
    label = services.settings.kiosk.label
    return KioskCurrent(data=[_out(s, names, label) for s in sessions])


@router.delete("/{session_id:int}", responses={404: {"model": Problem}})
async def end_session(
    services: ServicesDep, _: StaffOrAdminScope, session_id: SessionId
) -> Deleted:
    """End a live session now (admin scope, or the kiosk's unlocked staff mode)."""
    live = {s.id: s for s in await aio.call(kiosk.active_sessions, services.db)}
    if not await aio.call(kiosk.end_session, services.db, session_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no live kiosk session {session_id}")
    ended = live.get(session_id)
    services.events.publish(
        KIOSK_SESSION_ENDED,
        ended.user_id if ended else None,
        {"id": session_id, "user_id": ended.user_id if ended else None, "reason": "ended"},
    )
    return Deleted(deleted=True)
