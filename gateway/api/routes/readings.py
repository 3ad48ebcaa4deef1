"""`/v1/readings`: filtered, keyset-paged readings; the latest per kind; one by id.

The list speaks the query vocabularies of the APIs nearby apps were written for (README
"API conventions"): Human API dates, `source`, `Link`/`X-Total-Count`; Fitbit Plus
`page[limit]`/`page[after]`, `links`, `meta.count`; Validic's stored-or-updated windows with
a `summary` on `/latest`. Paging itself is one keyset cursor (`gateway.api.paging`).
"""

from datetime import datetime, timedelta
from typing import Annotated

import pydantic_core
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from drivers.readings import ReadingKind
from gateway.api import paging, queries, reading_rows
from gateway.api.deps import DbDep, ReadScope, SettingsDep
from gateway.api.params import WHEN_FORMS, DeviceQuery, UserQuery, When, resolve
from gateway.api.queries import ReadingFilter
from gateway.api.schemas import (
    AUTH_RESPONSES,
    LatestReadings,
    Problem,
    Reading,
    ReadingPage,
    ReadingWindow,
    WindowSummary,
    reading_out,
)
from gateway.store import readings
from gateway.store.readings import decode_cursor

router = APIRouter(prefix="/v1/readings", tags=["readings"], responses=AUTH_RESPONSES)

DEFAULT_LIMIT = 100
MAX_PAGE = readings.MAX_PAGE

SourceQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9_]+$",
        description="Only readings uploaded under this provider slug, e.g. `omron_ble` "
        "(Human API `source`).",
    ),
]
LimitQuery = Annotated[
    int | None,
    Query(
        ge=0,
        le=MAX_PAGE,
        description=f"Page size (default {DEFAULT_LIMIT}); 0 returns only the count.",
    ),
]
CursorQuery = Annotated[
    str | None,
    Query(min_length=1, max_length=64, description="next_cursor of the last page."),
]
OffsetQuery = Annotated[
    int | None,
    Query(
        ge=0,
        description="Human API offset: only 0 is accepted (400 otherwise); page with `cursor` "
        "or the `Link` header, which stay correct while readings change.",
    ),
]
UpdatedSince = Annotated[
    When | None,
    Query(description=f"Stored or changed at or after (incremental sync). {WHEN_FORMS}."),
]
UpdatedBefore = Annotated[
    When | None, Query(description=f"Stored or changed before. {WHEN_FORMS}.")
]

_PAGE_HEADERS = {
    "Link": {
        "description": 'The next page: `<full URL>; rel="next"` (RFC 8288); absent on the last.',
        "schema": {"type": "string"},
    },
    "X-Total-Count": {
        "description": "Readings matching the filters over all pages (as `meta.count`); "
        "on the first page (no cursor) and with `limit=0` only.",
        "schema": {"type": "integer"},
    },
}


def json_response(content: object, headers: dict[str, str] | None = None) -> Response:
    """`content` (plain dicts, lists, strings, numbers) as FastAPI would send its model.

    `pydantic_core.to_json` is the serializer FastAPI's own fast path uses for a response
    model, with pydantic's default for NaN and infinities (null), so the bytes are the same.
    """
    body = pydantic_core.to_json(content, inf_nan_mode="null")
    return Response(body, media_type="application/json", headers=headers)


@router.get(
    "",
    response_model=ReadingPage,
    responses={
        200: {"headers": _PAGE_HEADERS},
        400: {"model": Problem, "description": "An unknown cursor, or offset paging."},
    },
)
async def list_readings(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    _: ReadScope,
    kind: ReadingKind | None = None,
    user_id: UserQuery = None,
    unassigned: Annotated[
        bool, Query(description="Only readings with no user (ignored with user_id).")
    ] = False,
    device: DeviceQuery = None,
    source: SourceQuery = None,
    withdrawn: Annotated[
        bool | None,
        Query(
            description="true: only readings `edge-gateway reparse` withdrew (no longer "
            "derived from their frames; `withdrawn_at` set); false: none of them."
        ),
    ] = None,
    start_date: Annotated[
        When | None,
        Query(description=f"Measured at or after. {WHEN_FORMS}; a date: from its start."),
    ] = None,
    end_date: Annotated[
        When | None,
        Query(description=f"Measured before. {WHEN_FORMS}; a date: up to its end (inclusive)."),
    ] = None,
    updated_since: UpdatedSince = None,
    updated_before: UpdatedBefore = None,
    limit: LimitQuery = None,
    cursor: CursorQuery = None,
    offset: OffsetQuery = None,
    page_limit: Annotated[
        int | None,
        Query(alias=paging.LIMIT, ge=0, le=MAX_PAGE, description="Fitbit Plus name of `limit`."),
    ] = None,
    page_after: Annotated[
        str | None,
        Query(alias=paging.AFTER, min_length=1, max_length=64, description="Fitbit Plus `cursor`."),
    ] = None,
    page_size: Annotated[
        int | None,
        Query(alias=paging.SIZE, ge=0, description="Fitbit Plus skip paging: only 0 (the count)."),
    ] = None,
    page_number: Annotated[
        int | None,
        Query(alias=paging.NUMBER, ge=0, description="Fitbit Plus skip paging: refused (400)."),
    ] = None,
) -> Response:
    """Readings in change order; stable keyset paging while readings keep arriving.

    `start_date` is inclusive and `end_date` exclusive, except that a bare date means its
    whole day in the gateway's `timezone` (Human API's `YYYY-MM-DD`). An empty window gives an
    empty page. `meta.count` and `X-Total-Count` count every matching reading, on the first
    page only (a count visits every match); `limit=0` (Fitbit Plus: `page[limit]=0` or
    `page[size]=0`) answers that count alone.

    A reading that changes later (assigned, uploaded) moves to the end of the order, so an
    `updated_since` or cursor consumer sees it again: deduplicate by `id`.
    """
    size, after, cursor_name = paging.Paging(
        limit, cursor, offset, page_limit, page_after, page_size, page_number
    ).resolve(DEFAULT_LIMIT)
    zone = settings.zone
    wanted = ReadingFilter(
        kind=kind,
        user_id=user_id,
        unassigned=unassigned,
        device=device,
        source=source,
        withdrawn=withdrawn,
        start=resolve(start_date, zone, end_of_day=False),
        end=resolve(end_date, zone, end_of_day=True),
        updated_since=resolve(updated_since, zone, end_of_day=False),
        updated_before=resolve(updated_before, zone, end_of_day=False),
    )
    start = decode_cursor(after) if after is not None else None

    def answer() -> Response:
        # The one hop off the event loop: the page, its count and the JSON (issue 18).
        page = reading_rows.read_page(
            db, wanted, limit=size, after=start, count=_counted(size, after)
        )
        url = paging.next_url(request, cursor_name, page.next_cursor)
        body = {
            "data": page.data,
            "next_cursor": page.next_cursor,
            "links": {"next": url},
            "meta": {"count": page.count},
        }
        return json_response(body, {**_total_header(page.count), **paging.link_header(url)})

    if _short_walk(wanted, after is not None):
        return answer()
    return await run_in_threadpool(answer)


def _short_walk(wanted: ReadingFilter, from_cursor: bool) -> bool:
    """Whether the page is a short keyset walk, answered on the event loop.

    A page after a cursor, with no filter or one whose change-order index it walks (kind,
    user, device, device + kind, source), reads about its own rows (~0.2 ms of SQLite) and
    counts nothing: there the hop to a worker thread and the GIL hand-over back cost more
    than the read (issue 18: p99 at 200 req/s offered, 1M readings: 42-72 ms with the hop,
    9-12 ms without). First pages count every match, and time or rare filters may walk far:
    those keep the hop, so the loop (BLE notifications, uploads) never waits on a long read.
    (In WAL mode a reader does not wait for writers, so a short read stays short while the
    collector and the uploader commit.)
    """
    if not from_cursor or wanted.unassigned or wanted.withdrawn is not None:
        return False
    if any(t is not None for t in (wanted.start, wanted.end)):
        return False
    if wanted.updated_since is not None or wanted.updated_before is not None:
        return False
    indexed = [f for f in (wanted.kind, wanted.user_id, wanted.device, wanted.source) if f]
    return len(indexed) <= 1 or (len(indexed) == 2 and bool(wanted.device and wanted.kind))


def _counted(size: int, cursor: str | None) -> bool:
    # A count visits every match (1,000,000 readings: up to ~0.3 s with two filters), so
    # it is taken once per paging run, on the first page, or when it is all that was asked.
    return cursor is None or size == 0


def _total_header(count: int | None) -> dict[str, str]:
    return {} if count is None else {"X-Total-Count": str(count)}


def _validic_end(value: datetime) -> datetime:
    # Validic's windows are inclusive to the second (…T10:04:59Z, then …T10:05:00Z): a
    # whole-second end covers that second; an exclusive bound one second on.
    step = timedelta(seconds=1) if value.microsecond == 0 else timedelta(microseconds=1)
    try:
        return value + step
    except OverflowError:  # the last representable second: nothing is stored after it
        return value


@router.get(
    "/latest",
    response_model=LatestReadings | ReadingWindow,
    responses={
        200: {"headers": _PAGE_HEADERS},
        400: {"model": Problem, "description": "Window given two ways, or offset paging."},
    },
)
async def latest_readings(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    _: ReadScope,
    user_id: UserQuery = None,
    kind: ReadingKind | None = None,
    source: SourceQuery = None,
    updated_since: UpdatedSince = None,
    updated_before: UpdatedBefore = None,
    start_date: Annotated[
        When | None,
        Query(
            description="Validic's name on `latest` for `updated_since` (stored or changed "
            f"at or after). {WHEN_FORMS}."
        ),
    ] = None,
    end_date: Annotated[
        When | None,
        Query(
            description="Validic's name on `latest` for the window end, inclusive to the "
            f"second (a date: its whole day). {WHEN_FORMS}."
        ),
    ] = None,
    limit: Annotated[
        int | None,
        Query(ge=0, le=MAX_PAGE, description=f"Window page size (default {DEFAULT_LIMIT})."),
    ] = None,
    cursor: CursorQuery = None,
    offset: OffsetQuery = None,
) -> LatestReadings | Response:
    """Without a window: the newest reading (by measurement time) of each kind.

    With any of `updated_since`, `updated_before`, `start_date`, `end_date`, `source`,
    `limit`, `cursor` or `offset`: Validic's "latest" instead: every reading stored or
    changed in the window (whenever it was measured), in change order, with Validic's
    `summary` (`results`, `limit`, `next`). Poll with consecutive windows, or with
    `updated_since` = the time of the previous poll.
    """
    window = (updated_since, updated_before, start_date, end_date, source, limit, cursor, offset)
    if all(v is None for v in window):
        return await run_in_threadpool(_newest_per_kind, db, user_id, kind)
    if (updated_since or updated_before) and (start_date or end_date):
        msg = "window given twice: use updated_since/updated_before or start_date/end_date"
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=msg)
    size, after, _name = paging.Paging(limit=limit, cursor=cursor, offset=offset).resolve(
        DEFAULT_LIMIT
    )
    zone = settings.zone
    since = resolve(updated_since or start_date, zone, end_of_day=False)
    if end_date is not None:
        resolved = resolve(end_date, zone, end_of_day=True)
        before = _validic_end(resolved) if isinstance(end_date, datetime) and resolved else resolved
    else:
        before = resolve(updated_before, zone, end_of_day=False)
    wanted = ReadingFilter(
        kind=kind, user_id=user_id, source=source, updated_since=since, updated_before=before
    )
    start = decode_cursor(after) if after is not None else None
    given = {
        key: value[:100]
        for key, value in request.query_params.items()
        if key not in paging.SECRET_PARAMS
    }

    def answer() -> Response:
        # The lean page, as for GET /v1/readings; the summary is small: pydantic makes it.
        page = reading_rows.read_page(
            db, wanted, limit=size, after=start, count=_counted(size, after)
        )
        url = paging.next_url(request, "cursor", page.next_cursor)
        summary = WindowSummary(
            status=200,
            message="OK",
            results=page.count,
            start_date=since,
            end_date=before,
            offset=0,
            limit=size,
            previous=None,
            next=url,
            params=given,
        )
        body = {
            "summary": summary.model_dump(mode="json"),
            "data": page.data,
            "next_cursor": page.next_cursor,
        }
        return json_response(body, {**_total_header(page.count), **paging.link_header(url)})

    return await run_in_threadpool(answer)


def _newest_per_kind(db: DbDep, user_id: str | None, kind: ReadingKind | None) -> LatestReadings:
    kinds = [kind] if kind is not None else list(ReadingKind)
    found = {}
    for reading_id in queries.latest_ids(db, user_id=user_id, kinds=kinds):
        stored = readings.get_reading(db, reading_id)
        if stored is not None:
            found[stored.reading.kind] = reading_out(stored)
    return LatestReadings(data=found)


@router.get("/{reading_id}", response_model=Reading, responses={404: {"model": Problem}})
async def get_reading(
    db: DbDep,
    _: ReadScope,
    reading_id: Annotated[str, Path(min_length=1, max_length=64)],
) -> Response:
    """One reading by its stable id."""
    # A primary-key look-up: on the event loop, like a short keyset walk (`_short_walk`).
    found = reading_rows.read_one(db, reading_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no reading {reading_id!r}")
    return json_response(found)
