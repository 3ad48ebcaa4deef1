"""Unknown or repeated query parameters are refused (400), not ignored.

A typo such as ``?user=u1`` for ``?user_id=u1`` would otherwise answer everyone's readings,
and ``?user_id=a&user_id=b`` would silently answer for whichever one the framework keeps.
"""

from fastapi import HTTPException, Request, status
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

_ALLOWED: dict[int, frozenset[str]] = {}


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _allowed(route: APIRoute) -> frozenset[str]:
    known = _ALLOWED.get(id(route))
    if known is None:
        known = _ALLOWED[id(route)] = frozenset(_query_names(route.dependant))
    return known


async def reject_unknown_query(request: Request) -> None:
    """App-wide dependency: 400 naming the unknown parameters and the accepted ones.

    `async` only so FastAPI runs it on the event loop (it does not block), not in a thread.

    Raises:
        HTTPException: 400 for a query parameter the route does not declare, or one given twice.
    """
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not route.include_in_schema:
        return  # the kiosk page takes whatever a browser appends
    allowed = _allowed(route)
    keys = [key for key, _ in request.query_params.multi_items()]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        msg = f"query parameter(s) {', '.join(repeated)[:200]} given more than once; give each once"
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=msg)
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        takes = ", ".join(sorted(allowed)) or "no query parameters"
        msg = f"unknown query parameter(s) {', '.join(unknown)[:200]}; this endpoint takes {takes}"
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=msg)
