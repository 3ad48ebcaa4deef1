"""Per-user Junction credentials: Sign-In Token exchange, refresh with rotation, revocation.

mobile-sdk-sync.md §1.2, for many users at once (the SDK holds one):

- `TokenManager.sign_in` exchanges a Sign-In Token for access + refresh tokens and stores
  them; the sign-in token itself is dropped.
- `TokenManager.access_token` returns a live access token, refreshing it first when it
  expires within `EXPIRY_MARGIN_S` (the SDK has no margin and trips on clock skew).
- Refresh is single-flight per user (concurrent callers wait for the one refresh) and the
  rotated refresh token is stored together with the new access token in one `put`.
- `invalid_token` → the user's credentials are deleted (`InvalidTokenError`);
  `reauthentication_required` → kept but unusable (`ReauthenticationRequiredError`); the
  uploader parks the user until `sign_in` is called again.

HTTP is not done here: the client passes a `TokenEndpoint` (its own method), so exceptions
are translated in one place, `sync.junction.client`.
"""

import asyncio
import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import SecretStr

from sync.errors import InvalidTokenError, NotSignedInError
from sync.junction.regions import Environment, Region, parse_issuer
from sync.junction.schemas import TokenResponse

EXPIRY_MARGIN_S = 60.0  # refresh a minute early: tolerates clock skew and slow requests
JWT_PARTS = 3
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
SIGN_IN_TOKEN_TYPE = "urn:junction:sign-in-token"  # noqa: S105 - a URN, not a secret

TokenEndpoint = Callable[[str, dict[str, str]], Awaitable[TokenResponse]]
"""``(user_id, form) -> TokenResponse``; raises `AuthError` subclasses on refusal."""


@dataclass(frozen=True, slots=True)
class UserTokens:
    """A user's stored Junction session."""

    access_token: SecretStr
    refresh_token: SecretStr
    expires_at: datetime  # aware UTC


class TokenStore(Protocol):
    """Where sessions live (the gateway's store implements it; files mode 0600)."""

    async def get(self, user_id: str) -> UserTokens | None:
        """The user's session, or None."""
        ...

    async def put(self, user_id: str, tokens: UserTokens) -> None:
        """Replace the user's session atomically (both tokens and expiry, or nothing)."""
        ...

    async def delete(self, user_id: str) -> None:
        """Forget the user's session (purge); no error if there is none."""
        ...


class MemoryTokenStore:
    """`TokenStore` in memory."""

    def __init__(self) -> None:
        self._tokens: dict[str, UserTokens] = {}

    async def get(self, user_id: str) -> UserTokens | None:
        """See `TokenStore.get`."""
        return self._tokens.get(user_id)

    async def put(self, user_id: str, tokens: UserTokens) -> None:
        """See `TokenStore.put`."""
        self._tokens[user_id] = tokens

    async def delete(self, user_id: str) -> None:
        """See `TokenStore.delete`."""
        self._tokens.pop(user_id, None)


class SignInTokenError(ValueError):
    """A Sign-In Token that cannot be used as given (malformed, another user's, wrong host)."""


@dataclass(frozen=True, slots=True)
class SignInClaims:
    """What a Sign-In Token's JWT says (read without checking the signature, as the SDK does).

    Attributes:
        user_token: The JWT itself (the ``subject_token`` of the exchange).
        uid: The Junction user id it was issued for.
        iss: The issuer (names the region and environment), or None.
        region: The region ``iss`` names, or None.
        environment: The environment ``iss`` names, or None.
    """

    user_token: str
    uid: str
    iss: str | None
    region: Region | None
    environment: Environment | None


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def sign_in_claims(sign_in_token: SecretStr) -> SignInClaims:
    """Decode a Sign-In Token: base64 of ``{"public_key", "user_token"}``, ``user_token`` a JWT.

    The signature is not checked: the gateway has no key for it and the SDK does not check
    it either (mobile-sdk-sync.md §1.2 item 2: "reads its claims **without verifying the
    signature**: `uid` … and `iss`"). Junction checks it at the exchange.

    Raises:
        SignInTokenError: The token is not in that format or its JWT has no ``uid``.
    """
    try:
        inner = json.loads(base64.b64decode(sign_in_token.get_secret_value(), validate=True))
        user_token = inner["user_token"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        msg = "sign-in token is malformed; ask the backend for a new one"
        raise SignInTokenError(msg) from exc
    if not isinstance(user_token, str) or not user_token:
        msg = "sign-in token has no user_token; ask the backend for a new one"
        raise SignInTokenError(msg)
    parts = user_token.split(".")  # header.payload.signature
    try:
        claims: dict[str, Any] = json.loads(_b64url(parts[1])) if len(parts) == JWT_PARTS else {}
        uid = claims["uid"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        msg = "sign-in token's user_token is not a JWT with a uid; ask the backend for a new one"
        raise SignInTokenError(msg) from exc
    if not isinstance(uid, str) or not uid:
        msg = "sign-in token's JWT has an empty uid; ask the backend for a new one"
        raise SignInTokenError(msg)
    iss = claims.get("iss") if isinstance(claims.get("iss"), str) else None
    where = parse_issuer(iss) if iss else None
    return SignInClaims(
        user_token, uid, iss, where[0] if where else None, where[1] if where else None
    )


def check_claims(
    claims: SignInClaims, user_id: str, *, region: Region, environment: Environment
) -> None:
    """Refuse a token issued for another user or another region/environment than configured.

    Raises:
        SignInTokenError: ``uid`` is not `user_id`, or ``iss`` names another region or
            environment (the exchange would go to the wrong host, or succeed for the wrong
            user and every upload then fail with 401).
    """
    if claims.uid != user_id:
        msg = (
            f"sign-in token was issued for user {claims.uid}, not {user_id}; ask the backend "
            f"for a token for {user_id}"
        )
        raise SignInTokenError(msg)
    named, expected = claims.region, claims.environment
    if named is None or expected is None:
        return  # no issuer region/environment to compare (a stub's or an old token)
    if (named, expected) != (Region(region), Environment(environment)):
        msg = (
            f"sign-in token is for {expected.value}/{named.value} (iss {claims.iss}), but "
            f"junction is configured for {Environment(environment).value}/"
            f"{Region(region).value}; fix junction.region/environment or ask the right team "
            "for a token"
        )
        raise SignInTokenError(msg)


def user_token_of(sign_in_token: SecretStr) -> str:
    """The ``user_token`` (a JWT) inside a Sign-In Token.

    Raises:
        SignInTokenError: The token is not in the documented format.
    """
    return sign_in_claims(sign_in_token).user_token


def _utcnow() -> datetime:
    return datetime.now(UTC)


class TokenManager:
    """Keeps every user's access token fresh (see the module docstring)."""

    def __init__(
        self,
        store: TokenStore,
        endpoint: TokenEndpoint,
        *,
        clock: Callable[[], datetime] = _utcnow,
        region: Region = Region.US,
        environment: Environment = Environment.SANDBOX,
    ) -> None:
        self._region, self._environment = Region(region), Environment(environment)
        self._store = store
        self._endpoint = endpoint
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, user_id: str) -> asyncio.Lock:
        return self._locks.setdefault(user_id, asyncio.Lock())

    async def _save(self, user_id: str, response: TokenResponse) -> UserTokens:
        tokens = UserTokens(
            SecretStr(response.access_token),
            SecretStr(response.refresh_token),
            self._clock() + timedelta(seconds=response.expires_in),
        )
        await self._store.put(user_id, tokens)
        return tokens

    async def sign_in(self, user_id: str, sign_in_token: SecretStr) -> None:
        """Exchange a Sign-In Token for a session and store it.

        Raises:
            SignInTokenError: The token is malformed, or for another user or region (see
                `check_claims`); nothing is sent.
            AuthError: Junction refused the exchange.
        """
        claims = sign_in_claims(sign_in_token)
        check_claims(claims, user_id, region=self._region, environment=self._environment)
        form = {
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "subject_token_type": SIGN_IN_TOKEN_TYPE,
            "subject_token": claims.user_token,
        }
        async with self._lock(user_id):
            await self._save(user_id, await self._endpoint(user_id, form))

    async def access_token(self, user_id: str) -> SecretStr:
        """A live access token for the user, refreshed first if it is about to expire.

        Raises:
            NotSignedInError: No session is stored for the user.
            AuthError: The refresh was refused (see the module docstring).
        """
        tokens = await self._store.get(user_id)
        if tokens is None:
            msg = f"user {user_id}: not signed in yet; give the gateway a sign-in token"
            raise NotSignedInError(msg, user_id=user_id)
        if tokens.expires_at - timedelta(seconds=EXPIRY_MARGIN_S) <= self._clock():
            return await self.refresh(user_id, stale=tokens.access_token)
        return tokens.access_token

    async def refresh(self, user_id: str, *, stale: SecretStr | None = None) -> SecretStr:
        """Refresh the user's session once, however many callers ask at the same time.

        Args:
            user_id: The user.
            stale: The access token the caller found wanting; if the stored one differs,
                another caller already refreshed and it is returned as is.

        Raises:
            NotSignedInError: No session is stored for the user.
            InvalidTokenError: The refresh token is invalid; the session was deleted.
            AuthError: Any other refusal (e.g. re-authentication required).
        """
        async with self._lock(user_id):
            tokens = await self._store.get(user_id)
            if tokens is None:
                msg = f"user {user_id}: not signed in yet; give the gateway a sign-in token"
                raise NotSignedInError(msg, user_id=user_id)
            if stale is not None and tokens.access_token != stale:
                return tokens.access_token
            form = {
                "grant_type": "refresh_token",
                "refresh_token": tokens.refresh_token.get_secret_value(),
            }
            try:
                response = await self._endpoint(user_id, form)
            except InvalidTokenError:
                await self._store.delete(user_id)
                raise
            return (await self._save(user_id, response)).access_token

    async def forget(self, user_id: str) -> None:
        """Delete the user's session."""
        await self._store.delete(user_id)
