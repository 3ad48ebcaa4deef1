"""`/v1/events`: Server-Sent Events in Junction's webhook envelope, resumable.

Each SSE message has ``id: <event id>`` and ``data: <envelope JSON>`` and no ``event:``
field, so `EventSource.onmessage` sees every type (the type is ``event_type`` inside).
Resume with the ``Last-Event-ID`` header (browsers send it on reconnect) or the
``last_event_id`` query parameter. A browser `EventSource` cannot send an Authorization
header: off the box it authenticates with ``?access_token=`` (Human API's query token, same
scopes; see `gateway.api.auth`). Reading events are Junction data events (`gateway.events`).
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from sse_starlette import EventSourceResponse, ServerSentEvent

from gateway.api.auth import authenticate
from gateway.api.deps import ReadScope, ServicesDep
from gateway.api.params import UserQuery
from gateway.api.schemas import AUTH_RESPONSES, Problem
from gateway.events import GAP, Event
from gateway.services import Services
from gateway.store import aio, kiosk
from gateway.store.tokens import WouldBlockError

router = APIRouter(prefix="/v1", tags=["events"], responses=AUTH_RESPONSES)
_LOGGER = logging.getLogger(__name__)

PING_S = 15  # keeps proxies and the browser from timing the stream out
RETRY_MS = 1000  # how soon a browser reconnects after a drop
KIOSK_PREFIX = "gateway.kiosk."  # session events always reach the kiosk stream
RECHECK_S = 2.0  # how often an open stream's credentials are checked again
_QUEUED = 1000  # events taken from the bus ahead of a slow client


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
    request: Request,
    services: Services,
    after: int | None,
    user_id: str | None,
    kiosk_only: bool,
) -> AsyncIterator[ServerSentEvent]:
    """The events, for as long as the request's credentials stay good.

    A stream outlives the check made when it opened, so the credentials are checked again
    before each event goes out (the token map is in memory: microseconds) and every
    `RECHECK_S` while it is quiet: a token revoked with `edge-gateway token revoke` gets no
    event after the revocation, and its stream ends.
    """
    yield ServerSentEvent(comment="edge-gateway events", retry=RETRY_MS)
    queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=_QUEUED)

    async def pump() -> None:
        async with contextlib.aclosing(services.events.subscribe(after)) as events:
            async for event in events:
                await queue.put(event)

    feed = asyncio.get_running_loop().create_task(pump())
    checked = time.monotonic()
    try:
        while not feed.done() or not queue.empty():
            try:
                event: Event | None = await asyncio.wait_for(queue.get(), RECHECK_S)
            except TimeoutError:
                event = None
            if event is not None or time.monotonic() - checked >= RECHECK_S:
                if not await _still_allowed(request, services):
                    _LOGGER.info("closed an event stream whose token was revoked")
                    return
                checked = time.monotonic()
            if event is not None and await _visible(services, event, user_id, kiosk_only):
                yield ServerSentEvent(data=event.json, id=str(event.id))
        feed.result()  # a failed subscription ends the stream with its error
    finally:
        feed.cancel()
        await asyncio.gather(feed, return_exceptions=True)


async def _still_allowed(request: Request, services: Services) -> bool:
    try:
        try:  # on the loop, as `AuthGate` does: never waits
            authenticate(request, services, wait=False)
        except WouldBlockError:  # another thread holds the token map, or SQLite is busy
            await asyncio.to_thread(authenticate, request, services)
    except HTTPException:
        return False
    return True


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
    request: Request,
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
        _stream(request, services, after, user_id, kiosk_only), ping=PING_S, send_timeout=30
    )
