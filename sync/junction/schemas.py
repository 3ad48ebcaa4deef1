"""Junction's answers the client reads, as pydantic models, and its timestamp format.

The bodies the gateway sends are built as plain dicts by `sync.junction.mapping`; their
strict models (what the stub validates) are in `sync.junction.payloads`.
"""

from datetime import UTC, datetime

from pydantic import BaseModel


class TokenResponse(BaseModel):
    """`POST {auth}/v1/token` answer (extra fields ignored)."""

    access_token: str
    refresh_token: str
    expires_in: float = 3600.0


class SignInTokenResponse(BaseModel):
    """`POST /v2/user/{user_id}/sign_in_token` answer."""

    user_id: str
    sign_in_token: str


def instant_text(value: datetime) -> str:
    """UTC ISO-8601 with a ``Z`` (seconds, or microseconds when present)."""
    text = value.isoformat()
    if value.tzinfo is UTC:  # the common case (issue 18: it runs per sample uploaded)
        return text[:-6] + "Z"
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text
