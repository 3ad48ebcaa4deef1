"""Who may act for the kiosk's staff: an admin token, or an unlocked staff mode.

The staff grant (`X-Kiosk-Staff`, from `POST /v1/kiosk/staff/unlock`) is checked on top of
the API's own authentication, never instead of it: a request still needs a token, or the
loopback exemption under its cross-site rules (`gateway.api.auth`). Being a custom header, a
cross-origin page cannot send it without a CORS preflight either.
"""

from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from gateway.api.deps import ReadScope
from gateway.kiosk.staff import STAFF_HEADER
from gateway.kiosk.state import KioskState
from gateway.store.tokens import Scope

StaffToken = Annotated[
    str | None,
    Header(
        alias=STAFF_HEADER,
        description="The staff grant from `POST /v1/kiosk/staff/unlock` (kiosk staff mode).",
    ),
]


def get_kiosk(request: Request) -> KioskState:
    """The kiosk state `create_app` keeps."""
    state: KioskState = request.app.state.kiosk
    return state


KioskDep = Annotated[KioskState, Depends(get_kiosk)]


def _not_staff() -> HTTPException:
    msg = (
        "staff mode is locked; unlock it with the staff PIN (POST /v1/kiosk/staff/unlock) "
        f"and send the grant as {STAFF_HEADER}"
    )
    return HTTPException(status.HTTP_403_FORBIDDEN, detail=msg)


def staff_only(scope: ReadScope, kiosk: KioskDep, grant: StaffToken = None) -> Scope:
    """Authenticated and a live staff grant (403 otherwise)."""
    if not kiosk.staff.check(grant):
        raise _not_staff()
    return scope


def staff_or_admin(scope: ReadScope, kiosk: KioskDep, grant: StaffToken = None) -> Scope:
    """Admin scope, or authenticated with a live staff grant (403 otherwise)."""
    if scope is Scope.ADMIN or kiosk.staff.check(grant):
        return scope
    msg = (
        "this request needs a token with scope 'admin', or the kiosk's staff mode "
        f"(unlock with the staff PIN, then send {STAFF_HEADER})"
    )
    raise HTTPException(status.HTTP_403_FORBIDDEN, detail=msg)


StaffScope = Annotated[Scope, Depends(staff_only)]
StaffOrAdminScope = Annotated[Scope, Depends(staff_or_admin)]
