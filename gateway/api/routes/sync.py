"""`/v1/sync`: per user and resource progress, dead letters, trigger now, pause/resume."""

from fastapi import APIRouter, status

from gateway.api.deps import AdminScope, ReadScope, ServicesDep
from gateway.api.params import UserPath, UserQuery
from gateway.api.schemas import (
    AUTH_RESPONSES,
    Accepted,
    DeadLetterList,
    DeadLetterOut,
    RequeueRequest,
    SyncStatusOut,
    UserSync,
)
from gateway.api.sync_state import stream_states, user_sync

router = APIRouter(prefix="/v1/sync", tags=["sync"], responses=AUTH_RESPONSES)


@router.get("")
async def sync_status(
    services: ServicesDep, _: ReadScope, user_id: UserQuery = None
) -> SyncStatusOut:
    """Progress of every (user, resource) stream, with each user's holds."""
    holds = await services.outbox.holds()
    return SyncStatusOut(
        data=await stream_states(services, user_id),
        holds={u: sorted(h) for u, h in holds.items() if user_id is None or u == user_id},
    )


@router.get("/dead_letters")
async def dead_letters(
    services: ServicesDep, _: AdminScope, user_id: UserQuery = None
) -> DeadLetterList:
    """Readings Junction refused for good, with its status, body and the reason (admin)."""
    letters = await services.outbox.dead_letters(user_id)
    return DeadLetterList(
        data=[
            DeadLetterOut(
                reading_id=d.item.id,
                user_id=d.item.user_id,
                resource=d.item.resource,
                status_code=d.status_code,
                reason=d.reason,
                body=d.body,
                at=d.at,
            )
            for d in letters
        ]
    )


@router.post("/dead_letters/requeue", status_code=status.HTTP_202_ACCEPTED)
async def requeue_dead_letters(
    services: ServicesDep, _: AdminScope, body: RequeueRequest
) -> Accepted:
    """Put dead letters back in the queue (after fixing the cause) and wake the uploader."""
    count = await services.outbox.requeue_dead(body.reading_ids)
    services.sync.wake()
    return Accepted(detail=f"{count} reading(s) requeued")


@router.post("/trigger", status_code=status.HTTP_202_ACCEPTED)
async def trigger(services: ServicesDep, _: AdminScope) -> Accepted:
    """Look at the outbox now instead of at the next poll."""
    services.sync.wake()
    return Accepted(detail="upload triggered")


@router.post("/users/{user_id}/pause")
async def pause(services: ServicesDep, _: AdminScope, user_id: UserPath) -> UserSync:
    """Stop uploading a user's readings; they stay queued."""
    await services.sync.pause(user_id)
    return await user_sync(services, user_id)


@router.post("/users/{user_id}/resume")
async def resume(services: ServicesDep, _: AdminScope, user_id: UserPath) -> UserSync:
    """Resume a paused user's uploads."""
    await services.sync.resume(user_id)
    return await user_sync(services, user_id)
