"""`/v1/readings`: filtered, keyset-paged readings; the latest per kind; one by id."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from drivers.readings import ReadingKind
from gateway.api import queries
from gateway.api.deps import DbDep, ReadScope
from gateway.api.params import DeviceQuery, Instant, UserQuery
from gateway.api.schemas import (
    AUTH_RESPONSES,
    LatestReadings,
    Problem,
    Reading,
    ReadingPage,
    reading_out,
)
from gateway.store import readings

router = APIRouter(prefix="/v1/readings", tags=["readings"], responses=AUTH_RESPONSES)

DEFAULT_LIMIT = 100


@router.get(
    "",
    responses={400: {"model": Problem, "description": "A cursor this gateway did not issue."}},
)
def list_readings(
    db: DbDep,
    _: ReadScope,
    kind: ReadingKind | None = None,
    user_id: UserQuery = None,
    unassigned: Annotated[
        bool, Query(description="Only readings with no user (ignored with user_id).")
    ] = False,
    device: DeviceQuery = None,
    start_date: Annotated[
        Instant | None, Query(description="Measured at or after (UTC if no zone).")
    ] = None,
    end_date: Annotated[Instant | None, Query(description="Measured before.")] = None,
    updated_since: Annotated[
        Instant | None, Query(description="Stored or changed at or after (incremental sync).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=readings.MAX_PAGE)] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(min_length=1, max_length=64, description="next_cursor of the last page.")
    ] = None,
) -> ReadingPage:
    """Readings in change order; stable keyset paging while readings keep arriving.

    `start_date` is inclusive and `end_date` exclusive; an empty window gives an empty page.

    A reading that changes later (assigned, uploaded) moves to the end of the order, so an
    `updated_since` or cursor consumer sees it again.
    """
    rows, next_cursor = readings.list_readings(
        db,
        kind=kind,
        user_id=user_id,
        unassigned=unassigned,
        device=device,
        start=start_date,
        end=end_date,
        updated_since=updated_since,
        limit=limit,
        cursor=cursor,
    )
    return ReadingPage(data=[reading_out(r) for r in rows], next_cursor=next_cursor)


@router.get("/latest")
def latest_readings(
    db: DbDep,
    _: ReadScope,
    user_id: UserQuery = None,
    kind: ReadingKind | None = None,
) -> LatestReadings:
    """The newest reading (by measurement time) of each kind, for one user or everyone."""
    kinds = [kind] if kind is not None else list(ReadingKind)
    found = {}
    for reading_id in queries.latest_ids(db, user_id=user_id, kinds=kinds):
        stored = readings.get_reading(db, reading_id)
        if stored is not None:
            found[stored.reading.kind] = reading_out(stored)
    return LatestReadings(data=found)


@router.get("/{reading_id}", responses={404: {"model": Problem}})
def get_reading(
    db: DbDep,
    _: ReadScope,
    reading_id: Annotated[str, Path(min_length=1, max_length=64)],
) -> Reading:
    """One reading by its stable id."""
    stored = readings.get_reading(db, reading_id)
    if stored is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no reading {reading_id!r}")
    return reading_out(stored)
