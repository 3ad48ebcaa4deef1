"""Upload state per (user, resource) stream: the outbox's progress joined with its queue."""

from datetime import UTC, datetime

from gateway.api.schemas import StreamSync, UserSync
from gateway.services import Services
from sync.outbox import UserHold


async def stream_states(services: Services, user_id: str | None = None) -> list[StreamSync]:
    """Every stream with progress or queued items, sorted by user then resource."""
    outbox = services.outbox
    progress = {(p.user_id, p.resource): p for p in await outbox.progress(user_id)}
    queued = {
        (s.user_id, s.resource): s.queued
        for s in await outbox.streams(datetime.now(UTC))
        if user_id is None or s.user_id == user_id
    }
    states = []
    for key in sorted(progress.keys() | queued.keys()):
        p = progress.get(key)
        states.append(
            StreamSync(
                user_id=key[0],
                resource=key[1],
                status=p.status if p else None,
                at=p.at if p else None,
                stage=p.stage.value if p and p.stage else None,
                count=p.count if p else 0,
                delivered_total=p.delivered_total if p else 0,
                queued=queued.get(key, 0),
                error=p.error if p else None,
            )
        )
    return states


async def user_sync(services: Services, user_id: str) -> UserSync:
    """One user's holds, streams and dead-letter count."""
    holds = (await services.outbox.holds()).get(user_id, frozenset())
    return UserSync(
        holds=sorted(holds),
        paused=UserHold.PAUSED in holds,
        streams=await stream_states(services, user_id),
        dead_letters=len(await services.outbox.dead_letters(user_id)),
    )
