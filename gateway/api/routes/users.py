"""`/v1/users`: the Junction users the gateway uploads for, their Sign-In Tokens and sync."""

import logging

from fastapi import APIRouter, HTTPException, status

from gateway.api.deps import AdminScope, ReadScope, ServicesDep
from gateway.api.params import UserPath
from gateway.api.routes.devices import binding_out
from gateway.api.schemas import (
    AUTH_RESPONSES,
    Accepted,
    Problem,
    SignInTokenIn,
    UserCreate,
    UserList,
    UserOut,
    UserRemoved,
    UserSync,
)
from gateway.api.sync_state import user_sync
from gateway.services import Services
from gateway.store import aio, kiosk, users
from gateway.store.users import User
from sync.errors import AuthError, PermanentSyncError, RetryableSyncError

router = APIRouter(prefix="/v1/users", tags=["users"], responses=AUTH_RESPONSES)
_LOGGER = logging.getLogger(__name__)


async def _find(services: Services, user_id: str) -> User:
    for user in await aio.call(users.list_users, services.db):
        if user.user_id == user_id:
            return user
    raise HTTPException(
        status.HTTP_404_NOT_FOUND, detail=f"no user {user_id!r}; add it with POST /v1/users"
    )


async def _out(services: Services, user: User) -> UserOut:
    bindings = [
        binding_out(b)
        for b in await aio.call(users.list_bindings, services.db)
        if b.user_id == user.user_id
    ]
    return UserOut(
        user_id=user.user_id,
        name=user.name,
        client_user_id=user.client_user_id,
        created_at=user.created_at,
        bindings=bindings,
        sync=await user_sync(services, user.user_id),
    )


@router.get("")
async def list_users(services: ServicesDep, _: ReadScope) -> UserList:
    """Every user, with bindings and sync state."""
    found = await aio.call(users.list_users, services.db)
    return UserList(data=[await _out(services, u) for u in found])


@router.post("", status_code=status.HTTP_201_CREATED, responses={409: {"model": Problem}})
async def add_user(services: ServicesDep, _: AdminScope, body: UserCreate) -> UserOut:
    """Add a Junction user (or rename one that exists, or set its clinic identifier).

    409 when `client_user_id` belongs to another user.
    """
    try:
        user = await aio.call(
            users.upsert_user, services.db, body.user_id, body.name, body.client_user_id
        )
    except users.ClientUserIdTakenError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    return await _out(services, user)


@router.get("/{user_id}", responses={404: {"model": Problem}})
async def get_user(services: ServicesDep, _: ReadScope, user_id: UserPath) -> UserOut:
    """One user."""
    return await _out(services, await _find(services, user_id))


@router.get("/{user_id}/sync", responses={404: {"model": Problem}})
async def get_user_sync(services: ServicesDep, _: ReadScope, user_id: UserPath) -> UserSync:
    """A user's holds, per-resource progress and dead letters."""
    await _find(services, user_id)
    return await user_sync(services, user_id)


@router.delete("/{user_id}", responses={404: {"model": Problem}})
async def remove_user(services: ServicesDep, _: AdminScope, user_id: UserPath) -> UserRemoved:
    """Stop collecting for a user: unbind their devices, end their kiosk sessions, pause uploads.

    Stored readings are kept (the store never deletes health data); queued ones stay queued
    while the user is paused.
    """
    await _find(services, user_id)
    removed = 0
    for binding in await aio.call(users.list_bindings, services.db):
        if binding.user_id == user_id and await aio.call(
            users.unbind, services.db, binding.device, device_user=binding.device_user
        ):
            removed += 1
    ended = 0
    for session in await aio.call(kiosk.active_sessions, services.db):
        if session.user_id == user_id and session.id is not None:
            ended += await aio.call(kiosk.end_session, services.db, session.id)
    await services.sync.pause(user_id)
    _LOGGER.info("user %s removed: %d binding(s), %d kiosk session(s)", user_id, removed, ended)
    return UserRemoved(
        user_id=user_id, bindings_removed=removed, kiosk_sessions_ended=ended, paused=True
    )


@router.put(
    "/{user_id}/sign_in_token",
    responses={404: {"model": Problem}, 409: {"model": Problem}, 503: {"model": Problem}},
)
async def set_sign_in_token(
    services: ServicesDep, _: AdminScope, user_id: UserPath, body: SignInTokenIn
) -> Accepted:
    """Set or replace the user's Junction Sign-In Token (exchanged at once, never stored plain)."""
    await _find(services, user_id)
    try:
        await services.sync.sign_in(user_id, body.sign_in_token)
    except (ValueError, AuthError, PermanentSyncError) as exc:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, detail=f"sign-in token refused: {exc}"
        ) from exc
    except RetryableSyncError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"Junction cannot be reached to exchange the token: {exc}; try again",
            headers={"Retry-After": "30"},
        ) from exc
    return Accepted(detail=f"user {user_id} signed in")
