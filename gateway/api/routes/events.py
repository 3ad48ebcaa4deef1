"""`/v1/events`: Server-Sent Events in Junction's webhook envelope, resumable.

Each SSE message has ``id: <event id>`` and ``data: <envelope JSON>`` and no ``event:``
field, so `EventSource.onmessage` sees every type (the type is ``event_type`` inside).
Resume with the ``Last-Event-ID`` header (browsers send it on reconnect) or the
``last_event_id`` query parameter. A browser `EventSource` cannot send an Authorization
header: off the box it authenticates with ``?access_token=`` (Human API's query token, same
scopes; see `gateway.api.auth`). Reading events are Junction data events (`gateway.events`).
"""

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, status
from sse_starlette import EventSourceResponse, ServerSentEvent

from gateway.api.deps import ReadScope, ServicesDep
from gateway.api.params import UserQuery
from gateway.api.schemas import AUTH_RESPONSES, Problem
from gateway.events import GAP, Event
from gateway.services import Services
from gateway.store import aio, kiosk

router = APIRouter(prefix="/v1", tags=["events"], responses=AUTH_RESPONSES)
_LOGGER = logging.getLogger(__name__)

PING_S = 15  # keeps proxies and the browser from timing the stream out
RETRY_MS = 1000  # how soon a browser reconnects after a drop
KIOSK_PREFIX = "gateway.kiosk."  # session events always reach the kiosk stream


def _parse_last_id(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 20:
        msg = f"Last-Event-ID {raw[:40]!r} is not an id this gateway issued; omit it to start live"
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=msg)
    return int(raw)


async def _kiosk_users(services: Services) -> set[str]:
    return {s.user_id for s in await aio.call(kiosk.active_sessions, services.db)}


async def _stream(
    services: Services, after: int | None, user_id: str | None, kiosk_only: bool
) -> AsyncIterator[ServerSentEvent]:
    yield ServerSentEvent(comment="edge-gateway events", retry=RETRY_MS)
    async with contextlib.aclosing(services.events.subscribe(after)) as events:
        async for event in events:
            if await _visible(services, event, user_id, kiosk_only):
                yield ServerSentEvent(data=event.json, id=str(event.id))


async def _visible(services: Services, event: Event, user_id: str | None, kiosk_only: bool) -> bool:
    if event.user_id is None or event.event_type == GAP:
        return True
    if kiosk_only and event.event_type.startswith(KIOSK_PREFIX):
        return True  # who is at the kiosk now (an ended session's person just left it)
    if user_id is not None and event.user_id != user_id:
        return False
    return not kiosk_only or event.user_id in await _kiosk_users(services)


@router.get(
    "/events",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The event stream."},
        400: {"model": Problem},
    },
)
async def events(
    services: ServicesDep,
    _: ReadScope,
    user_id: UserQuery = None,
    kiosk_only: Annotated[
        bool,
        Query(
            alias="kiosk",
            description="Only people in a live kiosk session (the kiosk page), plus device events.",
        ),
    ] = False,
    last_event_id: Annotated[
        str | None, Query(max_length=20, description="Resume after this id.")
    ] = None,
    last_event_id_header: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=20)
    ] = None,
) -> EventSourceResponse:
    """Live events; first those after `Last-Event-ID`, or a gap event if they are gone."""
    after = _parse_last_id(last_event_id_header or last_event_id)
    return EventSourceResponse(
        _stream(services, after, user_id, kiosk_only), ping=PING_S, send_timeout=30
    )
