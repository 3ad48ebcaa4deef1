import asyncio
import base64
import json
from datetime import timedelta

import pytest
from pydantic import SecretStr

from sync.errors import InvalidTokenError, NotSignedInError, ReauthenticationRequiredError
from sync.junction.auth import MemoryTokenStore, TokenManager, UserTokens, user_token_of
from sync.junction.schemas import TokenResponse
from tests.sync.factories import T0


def _sign_in_token(user_token="ut"):  # noqa: S107 - test token
    raw = json.dumps({"public_key": "pk", "user_token": user_token}).encode()
    return SecretStr(base64.b64encode(raw).decode())


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
    assert user_token_of(_sign_in_token("xyz")) == "xyz"
    with pytest.raises(ValueError, match="malformed"):
        user_token_of(SecretStr("not base64!"))


async def test_sign_in_exchanges_and_stores():
    endpoint = TokenEndpoint(_response(1))
    store = MemoryTokenStore()
    manager = TokenManager(store, endpoint, clock=lambda: T0)
    await manager.sign_in("u", _sign_in_token())
    assert endpoint.forms[0]["subject_token"] == "ut"  # noqa: S105
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
