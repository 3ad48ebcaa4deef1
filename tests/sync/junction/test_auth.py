import asyncio
import base64
import json
from datetime import timedelta

import pytest
from pydantic import SecretStr

from sync.errors import InvalidTokenError, NotSignedInError, ReauthenticationRequiredError
from sync.junction.auth import (
    MemoryTokenStore,
    SignInTokenError,
    TokenManager,
    UserTokens,
    sign_in_claims,
    user_token_of,
)
from sync.junction.regions import Environment, Region, issuer, parse_issuer
from sync.junction.schemas import TokenResponse
from tests.sync.factories import T0, sign_in_token


def _sign_in_token(uid="u", **kw):
    return sign_in_token(uid, **kw)


class TokenEndpoint:
    def __init__(self, *answers):
        self.answers = list(answers)
        self.forms = []

    async def __call__(self, user_id, form):
        self.forms.append(form)
        await asyncio.sleep(0.01)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _response(n):
    return TokenResponse(access_token=f"a{n}", refresh_token=f"r{n}", expires_in=3600)


def test_user_token_is_read_from_the_sign_in_token():
    token = _sign_in_token("xyz")
    claims = sign_in_claims(token)
    assert claims.uid == "xyz"
    assert (claims.region, claims.environment) == (Region.US, Environment.SANDBOX)
    assert user_token_of(token) == claims.user_token
    assert claims.user_token.count(".") == 2
    with pytest.raises(ValueError, match="malformed"):
        user_token_of(SecretStr("not base64!"))
    raw = json.dumps({"public_key": "pk", "user_token": "not-a-jwt"}).encode()
    with pytest.raises(SignInTokenError, match="not a JWT with a uid"):
        user_token_of(SecretStr(base64.b64encode(raw).decode()))


async def test_a_token_for_another_user_is_refused_before_any_exchange():
    """Issue 16 item 4: user-y's token given to user-x used to be exchanged and accepted."""
    endpoint = TokenEndpoint(_response(1))
    manager = TokenManager(MemoryTokenStore(), endpoint, clock=lambda: T0)
    with pytest.raises(SignInTokenError, match="issued for user user-y, not user-x"):
        await manager.sign_in("user-x", _sign_in_token("user-y"))
    assert endpoint.forms == []
    with pytest.raises(NotSignedInError, match="not signed in yet"):
        await manager.access_token("user-x")


async def test_a_token_of_another_region_or_environment_is_flagged():
    endpoint = TokenEndpoint(_response(1))
    manager = TokenManager(
        MemoryTokenStore(), endpoint, region=Region.EU, environment=Environment.PRODUCTION
    )
    with pytest.raises(SignInTokenError, match=r"sandbox/us .* configured for production/eu"):
        await manager.sign_in("u", _sign_in_token("u"))
    assert endpoint.forms == []
    eu = issuer(Region.EU, Environment.PRODUCTION)
    assert parse_issuer(eu) == (Region.EU, Environment.PRODUCTION)
    await manager.sign_in("u", _sign_in_token("u", iss=eu))
    assert len(endpoint.forms) == 1


async def test_sign_in_exchanges_and_stores():
    endpoint = TokenEndpoint(_response(1))
    store = MemoryTokenStore()
    manager = TokenManager(store, endpoint, clock=lambda: T0)
    await manager.sign_in("u", _sign_in_token())
    assert endpoint.forms[0]["subject_token"] == sign_in_claims(_sign_in_token()).user_token
    assert endpoint.forms[0]["subject_token_type"] == "urn:junction:sign-in-token"  # noqa: S105
    assert (await manager.access_token("u")).get_secret_value() == "a1"


async def test_expiring_token_is_refreshed_once_for_concurrent_callers():
    endpoint = TokenEndpoint(_response(2))
    store = MemoryTokenStore()
    await store.put("u", UserTokens(SecretStr("a1"), SecretStr("r1"), T0 + timedelta(seconds=30)))
    manager = TokenManager(store, endpoint, clock=lambda: T0)
    tokens = await asyncio.gather(*(manager.access_token("u") for _ in range(5)))
    assert {t.get_secret_value() for t in tokens} == {"a2"}
    assert len(endpoint.forms) == 1
    assert (await store.get("u")).refresh_token.get_secret_value() == "r2"


async def test_invalid_token_purges_and_reauth_keeps():
    store = MemoryTokenStore()
    expired = UserTokens(SecretStr("a1"), SecretStr("r1"), T0)
    await store.put("gone", expired)
    await store.put("parked", expired)
    manager = TokenManager(
        store,
        TokenEndpoint(
            InvalidTokenError("x", user_id="gone"),
            ReauthenticationRequiredError("y", user_id="parked"),
        ),
        clock=lambda: T0,
    )
    with pytest.raises(InvalidTokenError):
        await manager.access_token("gone")
    assert await store.get("gone") is None
    with pytest.raises(ReauthenticationRequiredError):
        await manager.access_token("parked")
    assert await store.get("parked") == expired
    with pytest.raises(NotSignedInError):
        await manager.access_token("nobody")
