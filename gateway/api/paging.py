"""Paging in the vocabularies nearby apps already speak, mapped onto one keyset cursor.

The gateway pages readings by a cursor over their change order (stable while readings
arrive). Clients written for other health-data APIs ask for pages their own way:

- Human API ("Patterns and Conventions"): `limit`, `offset`, and the `Link` (RFC 8288) and
  `X-Total-Count` response headers;
- Fitbit Plus ("Paging"): cursor paging with `page[limit]` and `page[after]`, a `links`
  object with the full URL of the next page, `meta.count`, and a zero page size for the count
  alone; skip-based `page[size]`/`page[number]` is the other strategy;
- Validic v1 ("Summary Object"): `limit` and a `summary.next` full URL.

`Paging.resolve` reconciles them into (limit, cursor) or refuses with a 400 that says what
to send instead. Offsets and page numbers are refused (`offset=0` and `page[size]=0` alone
are fine): a reading that changes moves to the end of the order, so every later offset
would shift by one and the client would silently skip a reading.
"""

from dataclasses import dataclass

from fastapi import HTTPException, Request, status
from starlette.datastructures import URL

AFTER = "page[after]"
LIMIT = "page[limit]"
SIZE = "page[size]"
NUMBER = "page[number]"
SECRET_PARAMS = ("access_token",)  # never echoed back in a link (Human API's query token)


def _bad(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, detail=detail)


@dataclass(frozen=True, slots=True)
class Paging:
    """The paging parameters as a request gave them (None: absent)."""

    limit: int | None = None
    cursor: str | None = None
    offset: int | None = None
    page_limit: int | None = None
    page_after: str | None = None
    page_size: int | None = None
    page_number: int | None = None

    def resolve(self, default_limit: int) -> tuple[int, str | None, str]:
        """The page size, the cursor, and the name the next-page link puts the cursor in.

        Raises:
            HTTPException: 400 for offsets, page numbers, or one setting given two ways.
        """
        if self.limit is not None and self.page_limit is not None:
            msg = f"limit and {LIMIT} both given; give one"
            raise _bad(msg)
        if self.cursor is not None and self.page_after is not None:
            msg = f"cursor and {AFTER} both given; give one"
            raise _bad(msg)
        if self.offset:
            msg = (
                f"offset={self.offset} is not offered: readings that change move to the end of "
                'the order, so offsets would skip readings. Follow the Link rel="next" header '
                "(or links.next), or pass the page's next_cursor as cursor"
            )
            raise _bad(msg)
        skip_based = self.page_size is not None or self.page_number is not None
        cursor_based = self.page_limit is not None or self.page_after is not None
        if skip_based and cursor_based:
            msg = f"{SIZE}/{NUMBER} and {LIMIT}/{AFTER} mixed; use {LIMIT} and {AFTER}"
            raise _bad(msg)
        if skip_based:
            if self.page_size == 0 and self.page_number is None and self.cursor is None:
                return 0, None, "cursor"  # Fitbit Plus: page size 0 answers the count alone
            msg = (
                f"skip-based paging ({SIZE}, {NUMBER}) is not offered: pages would shift "
                f"while readings change. Use {LIMIT} and {AFTER} (links.next gives the URL); "
                f"{SIZE}=0 alone returns the count"
            )
            raise _bad(msg)
        name = AFTER if cursor_based else "cursor"
        size = self.page_limit if self.page_limit is not None else self.limit
        return (default_limit if size is None else size), self.page_after or self.cursor, name


def next_url(request: Request, cursor_name: str, cursor: str | None) -> str | None:
    """The full URL of the next page: this request's URL with the cursor set.

    Human API's query token (`access_token`) is left out: a secret is never echoed; a client
    that sends its token in the query adds it again.
    """
    if cursor is None:
        return None
    kept = [
        (key, value)
        for key, value in request.query_params.multi_items()
        if key not in {"cursor", AFTER, "offset", *SECRET_PARAMS}
    ]
    kept.append((cursor_name, cursor))
    return str(URL(str(request.url)).replace_query_params(**dict(kept)))


def link_header(url: str | None) -> dict[str, str]:
    """`Link: <url>; rel="next"` (RFC 8288) when there is a next page, else nothing."""
    return {} if url is None else {"Link": f'<{url}>; rel="next"'}
