import asyncio
import base64
import gzip
import json

import httpx
import pytest
from pydantic import ValidationError

from sync.junction.stub import Faults, JunctionStub, create_app, create_auth_app
from sync.junction.stub_server import StubServer, serve

KEY = {"x-vital-api-key": "sk_us_k"}


def _sample(value=5.5, unit="mmol/L", at="2026-11-20T07:30:00Z", **kw):
    return {
        "id": "s1",
        "value": value,
        "unit": unit,
        "start_date": at,
        "end_date": at,
        "type": "fingerprick",
        **kw,
    }


def _glucose(*samples, **kw):
    return {
        "stage": "daily",
        "provider": "accuchek_ble",
        "time_zone": "Europe/Berlin",
        "data": list(samples or [_sample()]),
        **kw,
    }


@pytest.fixture
def stub():
    stub = JunctionStub(api_key="sk_us_k")
    for user in ("u1", "u2"):
        stub.add_user(user)
        stub.connections |= {(user, "accuchek_ble"), (user, "omron_ble")}
    return stub


@pytest.fixture
async def http(stub):
    transport = httpx.ASGITransport(app=create_app(stub=stub))
    async with httpx.AsyncClient(transport=transport, base_url="http://stub") as client:
        yield client


async def test_accepts_and_upserts_by_junction_key(http, stub):
    url = "/v2/timeseries/u1/glucose"
    assert (await http.post(url, json=_glucose(), headers=KEY)).status_code == 200
    resend = _glucose(_sample(value=5.6))
    body = gzip.compress(json.dumps(resend).encode())
    headers = KEY | {"content-encoding": "gzip", "content-type": "application/json"}
    assert (await http.post(url, content=body, headers=headers)).status_code == 200
    [doc] = stub.samples.values()
    assert (doc["value"], doc["writes"], doc["source_type"]) == (5.6, 2, "fingerprick")
    [shown] = (await http.get(url, headers=KEY)).json()
    assert shown == {
        "timestamp": "2026-11-20T07:30:00+00:00",
        "timezone_offset": None,
        "type": "fingerprick",
        "unit": "mmol/L",
        "value": 5.6,
    }
    assert stub.requests[1].gzip


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        (_glucose(_sample(unit="mg")), "unit"),
        (_glucose(_sample(value=-1)), "value"),
        (_glucose(_sample(at="2026-11-20T07:30:00")), "start_date"),
        (_glucose(start_date="2026-11-01T00:00:00Z", end_date="2026-11-20T00:00:00Z"), "daily"),
        (_glucose(stage="historical"), "historical"),
        (_glucose(time_zone="Mars/Olympus"), "time_zone"),
        (_glucose(extra=1), "extra"),
        ({"stage": "daily"}, "provider"),
    ],
)
async def test_wrong_shapes_get_422_with_a_reason(http, stub, payload, where):
    response = await http.post("/v2/timeseries/u1/glucose", json=payload, headers=KEY)
    assert response.status_code == 422
    assert where in json.dumps(response.json()["detail"])
    assert stub.samples == {}


async def test_blood_pressure_and_body(http, stub):
    bp = {
        "systolic": _sample(120, "mmHg", type="cuff"),
        "diastolic": _sample(80, "mmHg", type="cuff"),
        "pulse": _sample(60, "bpm", type="cuff"),
    }
    payload = _glucose(bp) | {"provider": "omron_ble"}
    body_fat_under_accuchek = _glucose() | {
        "data": {"body_fat_percentage": [_sample(20, "%", type="scale")]}
    }
    refused = await http.post("/v2/summary/body/u1", json=body_fat_under_accuchek, headers=KEY)
    assert refused.status_code == 400
    assert refused.json()["detail"]["error_type"] == "unsupported_resource"
    assert (
        await http.post("/v2/timeseries/u1/blood_pressure", json=payload, headers=KEY)
    ).is_success
    body = _glucose() | {
        "provider": "omron_ble",
        "data": {
            "body_mass": [_sample(70, "kg", type="scale")],
            "body_fat_percentage": [_sample(101, "%", type="scale")],
        },
    }
    assert (await http.post("/v2/summary/body/u1", json=body, headers=KEY)).status_code == 422
    body["data"]["body_fat_percentage"][0]["value"] = 20
    assert (await http.post("/v2/summary/body/u1", json=body, headers=KEY)).is_success
    assert {d["resource"] for d in stub.samples.values()} == {"blood_pressure", "weight", "fat"}


async def test_auth_required(http):
    url = "/v2/timeseries/u1/glucose"
    assert (await http.post(url, json=_glucose())).status_code == 401
    assert (
        await http.post(url, json=_glucose(), headers={"x-vital-api-key": "no"})
    ).status_code == 401
    assert (
        await http.post(url, json=_glucose(), headers={"authorization": "Bearer no"})
    ).status_code == 401


async def test_sign_in_token_exchange_refresh_rotation(http, stub):
    token = (await http.post("/v2/user/u1/sign_in_token", headers=KEY)).json()["sign_in_token"]
    user_token = json.loads(base64.b64decode(token))["user_token"]
    auth = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_auth_app(stub)), base_url="http://auth"
    )
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token_type": "urn:junction:sign-in-token",
        "subject_token": user_token,
    }
    assert (await http.post("/v1/token", data=form)).status_code == 404, "auth has its own origin"
    tokens = (await auth.post("/v1/token", data=form)).json()
    bearer = {"authorization": f"Bearer {tokens['access_token']}"}
    assert (
        await http.post("/v2/timeseries/u1/glucose", json=_glucose(), headers=bearer)
    ).is_success
    other_user = await http.post("/v2/timeseries/u2/glucose", json=_glucose(), headers=bearer)
    assert other_user.status_code == 401
    assert (await auth.post("/v1/token", data=form)).json()["detail"][
        "error_type"
    ] == "invalid_token"
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert (await auth.post("/v1/token", data=refresh)).status_code == 200
    reused = await auth.post("/v1/token", data=refresh)
    assert reused.json()["detail"]["error_type"] == "invalid_token", "refresh tokens rotate"


async def test_link_is_200_then_409(http):
    url = "/v2/link/provider/manual/beurer_ble"
    assert (await http.post(url, json={"user_id": "u1"}, headers=KEY)).status_code == 200
    assert (await http.post(url, json={"user_id": "u1"}, headers=KEY)).status_code == 409
    assert (await http.post(url, json={}, headers=KEY)).status_code == 422


async def test_faults_at_run_time(http):
    faults = {"script": ["rate_limit", "unavailable", "reject", "server_error"], "retry_after_s": 2}
    assert (await http.put("/_stub/faults", json=faults)).is_success
    url = "/v2/timeseries/u1/glucose"
    answers = [await http.post(url, json=_glucose(), headers=KEY) for _ in range(5)]
    assert [a.status_code for a in answers] == [429, 503, 400, 500, 200]
    assert answers[0].headers["retry-after"] == "2"
    log = (await http.get("/_stub/requests")).json()
    assert [r["fault"] for r in log] == [
        "rate_limit",
        "unavailable",
        "reject",
        "server_error",
        None,
    ]


async def test_bad_gzip_is_refused(http):
    headers = KEY | {"content-encoding": "gzip", "content-type": "application/json"}
    response = await http.post("/v2/timeseries/u1/glucose", content=b"nope", headers=headers)
    assert response.status_code == 400


def test_fault_flags():
    faults = Faults.from_flags(["rate_limit=0.25", "script=drop,slow", "seed=4"])
    assert (faults.rate_limit, faults.script, faults.seed) == (0.25, ["drop", "slow"], 4)
    with pytest.raises(ValueError, match="name=value"):
        Faults.from_flags(["rate_limit"])
    with pytest.raises(ValidationError):
        Faults.from_flags(["teleport=1"])


async def test_dropped_connection_over_a_real_socket():
    stub = JunctionStub(api_key="sk_us_k", faults=Faults(script=["drop", "drop_after_accept"]))
    stub.add_user("u1")
    stub.connections.add(("u1", "accuchek_ble"))
    async with StubServer(create_app(stub=stub)) as server, httpx.AsyncClient() as client:
        url = f"{server.base_url}/v2/timeseries/u1/glucose"
        for _ in range(2):
            with pytest.raises(httpx.RemoteProtocolError):
                await client.post(url, json=_glucose(), headers=KEY)
        assert len(stub.samples) == 1, "the second was stored before the drop"


async def test_binds_loopback_only():
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        await serve(0, host="0.0.0.0")  # noqa: S104 - must be refused


async def test_serve_reports_its_url_and_stops_when_cancelled():
    ready: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    task = asyncio.create_task(serve(0, api_key="k", on_ready=lambda *u: ready.put_nowait(u)))
    url, auth_url = await asyncio.wait_for(ready.get(), 5)
    assert url.startswith("http://127.0.0.1:")
    assert auth_url.startswith("http://127.0.0.1:")
    assert auth_url != url
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{url}/_stub/faults")).json()["rate_limit"] == 0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
