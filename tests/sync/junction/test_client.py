import gzip
import json
import sys

import httpx
import pytest
from pydantic import SecretStr

from drivers.readings import ReadingKind
from sync.errors import (
    OfflineError,
    RejectedError,
    ServerBusyError,
    UnauthorizedError,
    UploadTimeoutError,
)
from sync.junction.auth import UserTokens
from sync.junction.client import JunctionClient
from sync.junction.mapping import Upload
from sync.junction.regions import Environment, Region, api_base_url, auth_base_url
from tests.sync.factories import T0

UPLOAD = Upload("/v2/timeseries/u1/glucose", {"stage": "daily", "data": []}, 0)


class Junction:
    """A MockTransport handler: answers from a script, records requests."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else httpx.Response(200, json={})
        if isinstance(answer, Exception):
            raise answer
        return answer


def _client(handler, **kw):
    kw.setdefault("api_key", SecretStr("sk_us_x"))
    return JunctionClient(
        base_url="https://junction.test", transport=httpx.MockTransport(handler), **kw
    )


def test_region_hosts():
    assert api_base_url(Region.EU, Environment.SANDBOX) == "https://api.sandbox.eu.junction.com"
    assert auth_base_url(Region.US, Environment.PRODUCTION) == "https://auth.us.junction.com"
    client = JunctionClient(region="eu", environment="production")
    assert (client.base_url, client.auth_url) == (
        "https://api.eu.junction.com",
        "https://auth.eu.junction.com",
    )


async def test_post_sends_gzip_json_with_the_api_key():
    junction = Junction()
    client = _client(junction)
    await client.post("u1", UPLOAD)
    [request] = junction.requests
    assert request.url == "https://junction.test/v2/timeseries/u1/glucose"
    assert request.headers["content-encoding"] == "gzip"
    assert request.headers["x-vital-api-key"] == "sk_us_x"
    assert json.loads(gzip.decompress(request.content)) == UPLOAD.body


@pytest.mark.parametrize(
    ("answer", "error", "retry_after"),
    [
        (httpx.Response(429, headers={"retry-after": "3"}), ServerBusyError, 3.0),
        (
            httpx.Response(503, headers={"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}),
            ServerBusyError,
            0.0,
        ),
        (httpx.Response(500), ServerBusyError, None),
        (httpx.Response(408), ServerBusyError, None),
        (httpx.ConnectError("refused"), OfflineError, None),
        (httpx.ConnectTimeout("slow syn"), OfflineError, None),
        (httpx.ReadTimeout("slow"), UploadTimeoutError, None),
        (httpx.RemoteProtocolError("dropped"), UploadTimeoutError, None),
    ],
)
async def test_retryable_errors(answer, error, retry_after):
    client = _client(Junction(answer))
    with pytest.raises(error) as caught:
        await client.post("u1", UPLOAD)
    assert caught.value.retry_after == retry_after
    if isinstance(answer, Exception):
        assert caught.value.__cause__ is answer


async def test_other_4xx_is_permanent_with_the_body():
    client = _client(Junction(httpx.Response(422, json={"detail": [{"msg": "bad"}]})))
    with pytest.raises(RejectedError) as caught:
        await client.post("u1", UPLOAD)
    assert caught.value.status_code == 422
    assert "bad" in caught.value.body


async def test_api_key_401_is_not_retried():
    junction = Junction(httpx.Response(401))
    with pytest.raises(UnauthorizedError):
        await _client(junction).post("u1", UPLOAD)
    assert len(junction.requests) == 1


async def test_link_once_per_user_and_slug_and_409_is_fine():
    junction = Junction(httpx.Response(409), httpx.Response(200))
    client = _client(junction)
    await client.ensure_connected("u1", "omron_ble")
    await client.ensure_connected("u1", "omron_ble")
    await client.ensure_connected("u2", "omron_ble")
    assert [json.loads(r.content) for r in junction.requests] == [
        {"user_id": "u1"},
        {"user_id": "u2"},
    ]
    assert junction.requests[0].url.path == "/v2/link/provider/manual/omron_ble"


FAR = T0.replace(year=2100)


def _tokens(access="a1", refresh="r1", expires=FAR):
    return UserTokens(SecretStr(access), SecretStr(refresh), expires)


async def test_bearer_401_refreshes_once_and_retries_once():
    refreshed = httpx.Response(
        200, json={"access_token": "a2", "refresh_token": "r2", "expires_in": 3600}
    )
    junction = Junction(httpx.Response(401), refreshed, httpx.Response(200))
    client = _client(junction, api_key=None)
    store = client.tokens._store
    await store.put("u1", _tokens())
    await client.post("u1", UPLOAD)
    first, refresh, retry = junction.requests
    assert first.headers["authorization"] == "Bearer a1"
    assert refresh.url.path == "/v1/token"
    assert b"grant_type=refresh_token" in refresh.content
    assert b"refresh_token=r1" in refresh.content
    assert retry.headers["authorization"] == "Bearer a2"
    stored = await store.get("u1")
    assert stored.refresh_token.get_secret_value() == "r2", "rotation stored"


async def test_bearer_401_twice_gives_up():
    refreshed = httpx.Response(200, json={"access_token": "a2", "refresh_token": "r2"})
    junction = Junction(httpx.Response(401), refreshed, httpx.Response(401))
    client = _client(junction, api_key=None)
    await client.tokens._store.put("u1", _tokens())
    with pytest.raises(UnauthorizedError):
        await client.post("u1", UPLOAD)
    assert len(junction.requests) == 3


async def test_secrets_do_not_leak_into_reprs():
    client = _client(Junction())
    assert "sk_us_x" not in repr(vars(client))
    assert "r1" not in repr(_tokens())
    assert ReadingKind.GLUCOSE


async def test_httpcore_finds_sniffio_so_no_request_pays_a_failed_import() -> None:
    # httpcore 1.0.9 imports sniffio in every lock/semaphore set-up (4 per request); absent,
    # each is a failed import that searches sys.path again (~47 us; encode/httpcore #1103).
    from httpcore._synchronization import current_async_library

    sys.modules.pop("sniffio", None)
    assert current_async_library() == "asyncio"
    assert "sniffio" in sys.modules  # found and kept: the next call is a dict hit
