"""The readings page on the DB-API cursor: one snapshot, rows straight to JSON-ready dicts.

`GET /v1/readings` (and `/latest`'s window, and one reading by id) are the API's hot reads
(issue 18: a home app polling, 200 req/s at p99 < 25 ms on one worker). Here a page costs
one read transaction on a read-only connection (`gateway.store.snapshots`), SQL written
out by hand and rows turned into the `Reading` dicts by `gateway.api.reading_json` — no
ORM rows, no dataclasses, no pydantic models. The answer is the same as the ORM path's
(`gateway.api.queries.reading_page` with `gateway.api.schemas.reading_out`), byte for byte:
tests/gateway/api/test_reading_rows.py compares the two over filters, cursors and kinds,
and tests/gateway/api/test_queries.py checks these statements' plans.

Order and cursor are `gateway.store.readings.list_readings`'s: change order, keyset paging
on `change_seq` (a reading that changes moves to the end).
"""

import sqlite3
from dataclasses import dataclass
from typing import Any

from gateway.api.queries import ReadingFilter
from gateway.api.reading_json import CHANGE_SEQ, ROW_COLUMNS_SQL, reading_dict
from gateway.store import Database
from gateway.store.readings import encode_cursor
from gateway.store.snapshots import snapshot
from gateway.store.types import utc_text

# Where an `updated_since` page starts walking change order. Starting anywhere at or before
# the first match gives the same rows (each match is checked for updated_at anyway); the
# start only decides how many rows the walk skips. Two starts are on offer:
# - the first match itself: the minimum over every match (updated_at and change_seq need not
#   rise together: a writer reads its clock before it takes the write lock, and clocks
#   step), a walk of the matches on the (updated_at, change_seq) index (1,000,000 matches:
#   43 ms); INDEXED BY, or SQLite walks change_seq from the start instead;
# - the cursor (or the first reading): free, but the walk then skips every non-match before
#   the first match.
# The match changed earliest (`EARLIEST_CHANGED_SQL`, one index seek) is at or after the
# first match and usually is it: how far it lies from the start, against how far from the
# end, says which walk is shorter (issue 18).
_FIRST_CHANGED = (
    "(SELECT min(change_seq) FROM reading INDEXED BY ix_reading_updated_change"
    " WHERE updated_at >= ?)"
)
EARLIEST_CHANGED_SQL = (
    "SELECT change_seq FROM reading INDEXED BY ix_reading_updated_change"
    " WHERE updated_at >= ? ORDER BY updated_at, change_seq LIMIT 1"
)
CHANGE_SPAN_SQL = (
    "SELECT (SELECT min(change_seq) FROM reading), (SELECT max(change_seq) FROM reading)"
)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of readings as the API shows them.

    Attributes:
        data: The readings (`gateway.api.schemas.Reading` as dicts), in change order.
        next_cursor: The next page's cursor; None on the last page.
        count: Matches over all pages, when asked for.
    """

    data: list[dict[str, Any]]
    next_cursor: str | None
    count: int | None


def conditions(wanted: ReadingFilter) -> tuple[list[str], list[Any]]:
    """The WHERE terms of `wanted` and their parameters, as `gateway.api.queries` words them.

    Kind and source match a third to all of the rows; with a device or user, `x || ''`
    keeps SQLite (no ANALYZE statistics) off their indexes and on the selective one. A kind
    with a device is the exception: (device, kind, change_seq) answers both in page order.
    """
    terms: list[str] = []
    params: list[Any] = []
    narrow = wanted.device is not None or wanted.user_id is not None
    if wanted.kind is not None:
        broad = narrow and wanted.device is None
        terms.append("kind || '' = ?" if broad else "kind = ?")
        params.append(wanted.kind.value)
    if wanted.user_id is not None:
        terms.append("user_id = ?")
        params.append(wanted.user_id)
    elif wanted.unassigned:
        terms.append("user_id IS NULL")
    if wanted.device is not None:
        terms.append("device = ?")
        params.append(wanted.device.upper())
    if wanted.source is not None:
        terms.append("upload_provider || '' = ?" if narrow else "upload_provider = ?")
        params.append(wanted.source)
    for term, bound in (
        ("start_date >= ?", wanted.start),
        ("start_date < ?", wanted.end),
        ("updated_at < ?", wanted.updated_before),
        ("updated_at >= ?", wanted.updated_since),
    ):
        if bound is not None:
            terms.append(term)
            params.append(utc_text(bound))
    if wanted.withdrawn is not None:
        terms.append("withdrawn_at IS NOT NULL" if wanted.withdrawn else "withdrawn_at IS NULL")
    return terms, params


def page_sql(
    wanted: ReadingFilter, *, limit: int, after: int | None, seek_first: bool = True
) -> tuple[str, list[Any]]:
    """The page's SELECT (`limit` + 1 rows, to know whether a next page exists).

    Args:
        wanted: The conditions.
        limit: Page size.
        after: The change_seq the page starts after, or None.
        seek_first: With `updated_since`: start the walk at the first match (found by a
            walk of the matches) rather than at `after` (see `_FIRST_CHANGED`).
    """
    terms, params = conditions(wanted)
    if wanted.updated_since is not None and seek_first:
        terms.append(f"change_seq >= {_FIRST_CHANGED}")
        params.append(utc_text(wanted.updated_since))
    if after is not None:
        terms.append("change_seq > ?")
        params.append(after)
    where = f" WHERE {' AND '.join(terms)}" if terms else ""
    sql = f"SELECT {ROW_COLUMNS_SQL} FROM reading{where} ORDER BY change_seq LIMIT ?"  # noqa: S608 - terms are constants
    return sql, [*params, limit + 1]


def count_sql(wanted: ReadingFilter) -> tuple[str, list[Any]]:
    """How many readings match over all pages (an index-only count where a filter has one)."""
    terms, params = conditions(wanted)
    where = f" WHERE {' AND '.join(terms)}" if terms else ""
    return f"SELECT count(*) FROM reading{where}", params  # noqa: S608 - terms are constants


def read_page(
    db: Database, wanted: ReadingFilter, *, limit: int, after: int | None, count: bool
) -> Page:
    """One page of matching readings, and their count if asked, from one snapshot (blocking).

    Args:
        db: The store.
        wanted: The conditions.
        limit: Page size (0: no rows).
        after: The change_seq the page starts after (a decoded cursor), or None.
        count: Also count every match (a visit of every match: first pages only).

    Raises:
        StoreError: The database cannot be read.
    """
    with snapshot(db) as cursor:
        data: list[dict[str, Any]] = []
        next_cursor = None
        if limit > 0:
            rows = _page_rows(cursor, wanted, limit=limit, after=after)
            if len(rows) > limit:
                rows = rows[:limit]
                next_cursor = encode_cursor(rows[-1][CHANGE_SEQ])
            data = [reading_dict(row) for row in rows]
        total = None
        if count:
            sql, params = count_sql(wanted)
            total = int(cursor.execute(sql, params).fetchone()[0])
    return Page(data, next_cursor, total)


def _page_rows(
    cursor: sqlite3.Cursor, wanted: ReadingFilter, *, limit: int, after: int | None
) -> list[Any]:
    seek_first = True
    if wanted.updated_since is not None:
        since = utc_text(wanted.updated_since)
        earliest = cursor.execute(EARLIEST_CHANGED_SQL, (since,)).fetchone()
        if earliest is None:
            return []  # nothing changed since then
        low, high = cursor.execute(CHANGE_SPAN_SQL).fetchone()
        start = low if after is None else after + 1
        # Rows the walk from `start` could skip, against matches the seek would walk.
        seek_first = earliest[0] - start > high - earliest[0]
    sql, params = page_sql(wanted, limit=limit, after=after, seek_first=seek_first)
    return cursor.execute(sql, params).fetchall()


def read_one(db: Database, reading_id: str) -> dict[str, Any] | None:
    """One reading by its stable id as the API shows it, or None (blocking).

    Raises:
        StoreError: The database cannot be read.
    """
    sql = f"SELECT {ROW_COLUMNS_SQL} FROM reading WHERE id = ?"  # noqa: S608 - constants
    with snapshot(db) as cursor:
        row = cursor.execute(sql, (reading_id,)).fetchone()
    return None if row is None else reading_dict(row)
