"""`/v1/kiosk/staff` and `/v1/kiosk/checkins`: the kiosk page's staff mode and check-in codes.

Staff unlock with the PIN; `[kiosk] pin_attempts` wrong ones in a row shut staff mode for
`[kiosk] lockout_s` (429 with Retry-After), counted here on the server. With the grant, staff
search people and start or end sessions (`/v1/kiosk/sessions` takes the grant in place of
admin scope). A check-in code, made by admin or staff, starts its person's session once,
until it expires (`gateway.kiosk.checkin`).
"""

import asyncio
import logging
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, status

from gateway.api.deps import ReadScope, ServicesDep
from gateway.api.kiosk_access import KioskDep, StaffOrAdminScope, StaffScope, StaffToken
from gateway.api.routes.kiosk import begin
from gateway.api.schemas import (
    AUTH_RESPONSES,
    CheckinCode,
    CheckinCreate,
    CheckinRedeem,
    KioskSessionOut,
    PeopleFound,
    Person,
    Problem,
    StaffLocked,
    StaffUnlock,
    StaffUnlocked,
)
from gateway.kiosk import checkin
from gateway.kiosk.staff import LockedOutError, StaffModeOffError, WrongPinError
from gateway.store import aio, users

router = APIRouter(prefix="/v1/kiosk", tags=["kiosk"], responses=AUTH_RESPONSES)
_LOGGER = logging.getLogger(__name__)


@router.post(
    "/staff/unlock",
    responses={409: {"model": Problem}, 429: {"model": Problem}},
)
async def unlock(kiosk: KioskDep, _: ReadScope, body: StaffUnlock) -> StaffUnlocked:
    """Open staff mode with the staff PIN.

    403 for a wrong PIN (the detail says how many tries are left); 429 with Retry-After
    while locked out; 409 when no PIN is set.
    """
    try:
        grant = await asyncio.to_thread(kiosk.staff.unlock, body.pin.get_secret_value())
    except StaffModeOffError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    except WrongPinError as exc:
        msg = f"wrong PIN; {exc.attempts_left} more wrong and staff mode locks for a while"
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=msg) from None
    except LockedOutError as exc:
        _LOGGER.warning("kiosk staff mode locked for %d s after wrong PINs", exc.retry_after_s)
        minutes = max(1, round(exc.retry_after_s / 60))
        msg = f"too many wrong PINs; staff mode is locked for about {minutes} min"
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=msg,
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from None
    return StaffUnlocked(staff_token=grant.token, valid_s=grant.valid_s)


@router.post("/staff/lock")
async def lock(kiosk: KioskDep, _: ReadScope, grant: StaffToken = None) -> StaffLocked:
    """Close staff mode now (the page does it after starting or ending a session)."""
    return StaffLocked(locked=kiosk.staff.lock(grant))


@router.get("/staff/people")
async def find_people(
    services: ServicesDep,
    _: StaffScope,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=100,
            description="Part of the name or of the clinic identifier (client_user_id), "
            "or a whole user_id.",
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> PeopleFound:
    """People matching `q`, for staff to pick from (never shown on the patient view)."""
    found = await aio.call(users.search_users, services.db, q, limit=limit)
    return PeopleFound(
        data=[
            Person(user_id=u.user_id, name=u.name, client_user_id=u.client_user_id) for u in found
        ]
    )


@router.post("/checkins", status_code=status.HTTP_201_CREATED, responses={404: {"model": Problem}})
async def create_checkin(
    services: ServicesDep, kiosk: KioskDep, _: StaffOrAdminScope, body: CheckinCreate
) -> CheckinCode:
    """A check-in code for a known user, valid `[kiosk] checkin_ttl_s` (admin or staff)."""
    known = {u.user_id for u in await aio.call(users.list_users, services.db)}
    if body.user_id not in known:
        msg = f"no user {body.user_id!r}; add it with POST /v1/users"
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=msg)
    settings = services.settings.kiosk
    key = await asyncio.to_thread(kiosk.checkin_key)
    code, made = checkin.make_code(
        key,
        body.user_id,
        ttl=timedelta(seconds=settings.checkin_ttl_s),
        session_s=body.duration_s or settings.session_s,
        device=body.device,
    )
    return CheckinCode(code=code, path=f"/?checkin={quote(code)}", expires_at=made.expires_at)


@router.post(
    "/checkins/redeem",
    status_code=status.HTTP_201_CREATED,
    responses={400: {"model": Problem}},
)
async def redeem_checkin(
    services: ServicesDep, kiosk: KioskDep, _: ReadScope, body: CheckinRedeem
) -> KioskSessionOut:
    """Start the session a check-in code names (once; 400 if forged, expired or used)."""
    key = await asyncio.to_thread(kiosk.checkin_key)
    try:
        found = checkin.read_code(key, body.code)
        kiosk.checkins.claim(found)
    except checkin.CheckinError as exc:
        _LOGGER.info("kiosk check-in refused: %s", exc)
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=str(exc)) from None
    return await begin(services, found.user_id, found.session_s, found.device)
