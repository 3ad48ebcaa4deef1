"""Where a browser request comes from: the page's own origin, an allowed one, or another site.

Browsers say it in two headers: `Origin` (sent on every non-GET request and on CORS requests)
and `Sec-Fetch-Site` (Fetch Metadata, sent by Chromium and Firefox on every request). A
request with neither is from a non-browser client (curl, a LAN app), which has no ambient
credentials to abuse. Rules: Fetch standard §3.1.2 (Origin), W3C Fetch Metadata §2.1.
"""

from collections.abc import Collection
from enum import StrEnum

from starlette.requests import HTTPConnection


class Site(StrEnum):
    """Classification of a request's origin."""

    SAME_ORIGIN = "same-origin"  # the gateway's own page (or the user typed the URL)
    ALLOWED = "allowed"  # an origin listed in `[api] cors_origins`
    CROSS_SITE = "cross-site"  # any other page, including another port on the same host
    NO_BROWSER = "no-browser"  # neither header: curl, scripts, LAN apps


# "same-site" is cross-origin too: http://127.0.0.1:18999 and :8080 are the same site.
_FOREIGN_FETCH_SITES = frozenset({"cross-site", "same-site"})


def classify(conn: HTTPConnection, allowed_origins: Collection[str]) -> Site:
    """Classify `conn` by its `Origin` and `Sec-Fetch-Site` headers.

    The request's own origin is its scheme plus the `Host` header (which
    `TrustedHostMiddleware` has already checked). `Origin: null` (sandboxed frames,
    file: pages) is cross-site.
    """
    origin = conn.headers.get("origin")
    if origin is not None:
        origin = origin.strip().lower().rstrip("/")
        own = f"{conn.url.scheme}://{conn.headers.get('host', '')}".lower()
        if origin == own:
            return Site.SAME_ORIGIN
        if origin in {o.lower().rstrip("/") for o in allowed_origins}:
            return Site.ALLOWED
        return Site.CROSS_SITE
    fetch_site = conn.headers.get("sec-fetch-site")
    if fetch_site is None:
        return Site.NO_BROWSER
    if fetch_site.strip().lower() in _FOREIGN_FETCH_SITES:
        return Site.CROSS_SITE
    return Site.SAME_ORIGIN  # "same-origin", or "none": the user navigated there themselves
