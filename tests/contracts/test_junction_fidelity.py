"""Issue 16: upload scenarios against the strict Junction stub over loopback.

Each test is one item of the issue and failed on the behaviour before it (noted per test).
The stage items (1) are in tests/sync/test_uploader.py (`…daily_by_default…`,
`…backfill_setting…`).
"""

import base64
import dataclasses
import json
import random

import httpx
import pytest
from pydantic import SecretStr

from drivers.readings import ReadingKind
from gateway.config import JunctionSettings
from sync.errors import RejectedError, SignInTokenRejectedError
from sync.junction.auth import SignInTokenError
from sync.junction.client import USER_AGENT, JunctionClient, MemoryLinkStore
from sync.junction.mapping import build_upload
from sync.junction.providers import scale_upload_slug
from sync.junction.stub import JunctionStub, create_app
from sync.junction.stub_server import StubServer
from sync.memory_outbox import MemoryOutbox
from sync.outbox import Stage, UserHold, items_for_read
from sync.priority import DEFAULT_PRIORITY, DEFAULT_RESOURCE_ORDER
from sync.uploader import Uploader
from tests.sync.factories import T0, blood_pressure, body, glucose

KEY = "sk_us_fidelity"
HEADERS = {"x-vital-api-key": KEY}


@pytest.fixture
async def server():
    stub = JunctionStub(api_key=KEY)
    async with StubServer(create_app(stub=stub, users=["alice", "bob"])) as served:
        yield served


def _client(server, **kw):
    kw.setdefault("api_key", SecretStr(KEY))
    return JunctionClient(base_url=server.base_url, auth_url=server.auth_url, **kw)


async def _drain(outbox, client, **kw):
    uploader = Uploader(
        outbox,
        client,
        time_zone="Europe/Berlin",
        rng=random.Random(1),
        idle_poll_s=0.05,
        backoff=lambda *a: 0.01,
        **kw,
    )
    await uploader.run(until_idle=True)
    return uploader


# ---------------------------------------------------------------- item 2: scale slug


async def test_a_beurer_scale_uploads_as_manual_because_beurer_ble_is_bp_only(server):
    """Before: body under beurer_ble, which the docs' provider table lists for BP only."""
    outbox = MemoryOutbox()
    scale = dataclasses.replace(body(), provider="beurer_ble")
    await outbox.enqueue(items_for_read([scale], user_id="alice", zone=T0.tzinfo, enqueued_at=T0))
    client = _client(server)
    await _drain(outbox, client)
    providers = {d["provider"] for d in server.stub.samples.values()}
    assert providers == {"manual"}
    assert {d["resource"] for d in server.stub.samples.values()} == {"weight", "fat"}
    assert scale_upload_slug("omron_ble") == "omron_ble"  # "monitors and scales"
    assert scale_upload_slug("beurer_ble", "omron_ble") == "omron_ble"  # configured wins
    await client.aclose()


async def test_the_stub_refuses_a_resource_the_slug_does_not_supply(server):
    async with httpx.AsyncClient(base_url=server.base_url, headers=HEADERS) as http:
        await http.post("/v2/link/provider/manual/omron_ble", json={"user_id": "alice"})
        upload = build_upload(
            [glucose()],
            user_id="alice",
            resource=ReadingKind.GLUCOSE,
            provider="omron_ble",
            stage=Stage.DAILY,
            zone=T0.tzinfo,
            time_zone="UTC",
        )
        answer = await http.post(upload.path, json=upload.body)
        unknown = await http.post("/v2/link/provider/manual/acme_ble", json={"user_id": "alice"})
    assert answer.status_code == 400
    assert answer.json()["detail"]["error_type"] == "unsupported_resource"
    assert unknown.json()["detail"]["error_type"] == "unsupported_provider"


# ---------------------------------------------------------------- item 3: auth host


def test_base_url_does_not_move_the_token_exchange():
    """Before: auth_url fell back to base_url (the API host)."""
    client = JunctionClient(
        base_url="https://api.sandbox.eu.junction.com", region="eu", environment="sandbox"
    )
    assert client.auth_url == "https://auth.sandbox.eu.junction.com"
    explicit = JunctionClient(base_url="http://127.0.0.1:1", auth_url="http://127.0.0.1:2/")
    assert explicit.auth_url == "http://127.0.0.1:2"


async def test_the_token_endpoint_is_on_its_own_origin(server):
    async with httpx.AsyncClient() as http:
        on_api = await http.post(f"{server.base_url}/v1/token", data={"grant_type": "x"})
        on_auth = await http.post(f"{server.auth_url}/v1/token", data={"grant_type": "x"})
    assert on_api.status_code == 404
    assert on_auth.json()["detail"]["error_type"] == "unsupported_grant_type"


# ---------------------------------------------------------------- item 4: JWT claims


async def _token_for(server, user_id):
    async with httpx.AsyncClient(base_url=server.base_url, headers=HEADERS) as http:
        answer = await http.post(f"/v2/user/{user_id}/sign_in_token")
    return SecretStr(answer.json()["sign_in_token"])


async def test_sign_in_tokens_are_jwts_with_uid_and_iss(server):
    token = await _token_for(server, "alice")
    jwt = json.loads(base64.b64decode(token.get_secret_value()))["user_token"]
    payload = jwt.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["uid"] == "alice"
    assert claims["iss"] == "id-signer-stg-us@vital-id-stg-us.iam.gserviceaccount.com"


async def test_another_users_token_is_refused_and_used_tokens_say_so(server):
    """Before: bob's token for alice was accepted ("user alice signed in"), then 401s."""
    client = _client(server, api_key=None)
    with pytest.raises(SignInTokenError, match="issued for user bob, not alice"):
        await client.sign_in("alice", await _token_for(server, "bob"))
    token = await _token_for(server, "alice")
    await client.sign_in("alice", token)
    with pytest.raises(SignInTokenRejectedError, match="already used or expired"):
        await client.sign_in("alice", token)
    await client.aclose()


async def test_a_user_never_signed_in_is_held_as_not_signed_in(server):
    """Before: held as reauthentication_required, which names something that never happened."""
    outbox = MemoryOutbox()
    await outbox.enqueue(items_for_read([glucose()], user_id="bob", zone=T0.tzinfo, enqueued_at=T0))
    client = _client(server, api_key=None)
    await _drain(outbox, client)
    assert await outbox.holds() == {"bob": frozenset({UserHold.NOT_SIGNED_IN})}
    [progress] = await outbox.progress("bob")
    assert "not signed in yet" in (progress.error or "")
    await client.aclose()


# ---------------------------------------------------------------- item 5: connections


async def test_data_for_a_never_linked_provider_is_refused(server):
    async with httpx.AsyncClient(base_url=server.base_url, headers=HEADERS) as http:
        upload = build_upload(
            [glucose()],
            user_id="alice",
            resource=ReadingKind.GLUCOSE,
            provider="accuchek_ble",
            stage=Stage.DAILY,
            zone=T0.tzinfo,
            time_zone="UTC",
        )
        answer = await http.post(upload.path, json=upload.body)
        nobody = await http.post("/v2/link/provider/manual/accuchek_ble", json={"user_id": "eve"})
    assert answer.json()["detail"]["error_type"] == "connection_not_found"
    assert nobody.status_code == 404


async def test_a_lost_connection_is_linked_again_and_links_persist(server):
    """Before: the link was remembered per process; a lost connection dead-lettered data."""
    links = MemoryLinkStore()
    outbox = MemoryOutbox()
    zone = T0.tzinfo
    await outbox.enqueue(items_for_read([glucose()], user_id="alice", zone=zone, enqueued_at=T0))
    client = _client(server, link_store=links)
    await _drain(outbox, client)
    assert await links.links() == {("alice", "accuchek_ble")}
    server.stub.connections.clear()  # Junction lost it (deregistered, or reset)
    await outbox.enqueue(items_for_read([glucose()], user_id="alice", zone=zone, enqueued_at=T0))
    await _drain(outbox, client)
    assert len(server.stub.samples) == 2
    assert await outbox.dead_letters() == []
    await client.aclose()
    restarted = _client(server, link_store=links)
    await restarted.ensure_connected("alice", "accuchek_ble")
    link_posts = [r for r in server.stub.requests if r.resource == "link"]
    assert len(link_posts) == 2, "a restart does not link again"
    await restarted.aclose()


async def test_a_refusal_that_is_not_about_the_connection_is_not_retried(server):
    client = _client(server)
    await client.ensure_connected("alice", "omron_ble")
    upload = build_upload(
        [glucose()],
        user_id="alice",
        resource=ReadingKind.GLUCOSE,
        provider="omron_ble",
        stage=Stage.DAILY,
        zone=T0.tzinfo,
        time_zone="UTC",
    )
    with pytest.raises(RejectedError) as caught:
        await client.post("alice", upload)
    assert caught.value.status_code == 400
    await client.aclose()


# ---------------------------------------------------------------- item 6: priority


def test_one_priority_default():
    """Before: sync.priority said body 11/BP 21/glucose 22, config glucose first."""
    assert JunctionSettings().resource_priority == [k.value for k in DEFAULT_RESOURCE_ORDER]
    assert sorted(DEFAULT_PRIORITY, key=DEFAULT_PRIORITY.__getitem__) == list(
        DEFAULT_RESOURCE_ORDER
    )


# ---------------------------------------------------------------- item 7: metadata, UA


async def test_each_part_carries_its_own_raw_value_and_unit(server):
    """Before: pulse carried raw_unit mmHg; body_fat carried the weight's raw unit."""
    outbox = MemoryOutbox()
    reads = [blood_pressure(), body()]
    await outbox.enqueue(items_for_read(reads, user_id="alice", zone=T0.tzinfo, enqueued_at=T0))
    client = _client(server)
    await _drain(outbox, client, scale_provider="omron_ble")
    posts = {r.resource: r for r in server.stub.requests if r.method == "POST"}
    [bp] = posts["blood_pressure"].body["data"]
    assert bp["pulse"]["metadata"]["raw_unit"] == "bpm"
    assert bp["systolic"]["metadata"]["raw_unit"] == "mmHg"
    assert bp["systolic"]["metadata"]["raw_value"] == "120"
    [fat] = posts["body"].body["data"]["body_fat_percentage"]
    [mass] = posts["body"].body["data"]["body_mass"]
    assert (fat["metadata"]["raw_unit"], mass["metadata"]["raw_unit"]) == ("%", "kg")
    assert fat["metadata"]["raw_value"] != mass["metadata"]["raw_value"]
    assert posts["body"].headers["user-agent"] == USER_AGENT
    assert "github.com/;" not in USER_AGENT
    assert USER_AGENT.startswith("edge-gateway/")
    await client.aclose()


# ---------------------------------------------------------------- strict stub rules


def _post(http, upload):
    return http.post(upload.path, json=upload.body)


async def test_content_type_ranges_bp_times_and_historical_window(server):
    stub = server.stub
    stub.connections |= {("alice", "accuchek_ble"), ("alice", "omron_ble")}
    async with httpx.AsyncClient(base_url=server.base_url, headers=HEADERS) as http:
        path = "/v2/timeseries/alice/glucose"
        good = build_upload(
            [glucose()],
            user_id="alice",
            resource=ReadingKind.GLUCOSE,
            provider="accuchek_ble",
            stage=Stage.DAILY,
            zone=T0.tzinfo,
            time_zone="UTC",
        )
        as_text = await http.post(
            path, content=json.dumps(good.body), headers={"content-type": "text/plain"}
        )
        assert as_text.status_code == 415
        implausible = json.loads(json.dumps(good.body))
        implausible["data"][0]["value"] = 80.0  # mmol/L: a mg/dL number in the wrong unit
        answer = await http.post(path, json=implausible)
        assert answer.status_code == 422
        assert answer.json()["detail"][0]["type"] == "value_out_of_range"
        cuff = build_upload(
            [blood_pressure()],
            user_id="alice",
            resource=ReadingKind.BLOOD_PRESSURE,
            provider="omron_ble",
            stage=Stage.DAILY,
            zone=T0.tzinfo,
            time_zone="UTC",
        )
        cuff.body["data"][0]["pulse"]["start_date"] = "2026-11-20T00:00:00Z"
        cuff.body["data"][0]["pulse"]["end_date"] = "2026-11-20T00:00:00Z"
        answer = await _post(http, cuff)
        assert answer.json()["detail"][0]["type"] == "parts_at_different_times"
        window = (T0.replace(hour=10), T0)  # the reading (07:xx UTC) lies before it
        historical = build_upload(
            [glucose()],
            user_id="alice",
            resource=ReadingKind.GLUCOSE,
            provider="accuchek_ble",
            stage=Stage.HISTORICAL,
            zone=T0.tzinfo,
            time_zone="UTC",
            window=window,
        )
        answer = await _post(http, historical)
        assert answer.json() == {"success": True, "count": 0, "dropped": 1}
    assert stub.samples == {}
    assert stub.dropped == [
        {"user_id": "alice", "resource": "glucose", "reason": "outside historical window"}
    ]


async def test_read_back_needs_auth_and_has_the_documented_paths(server):
    outbox = MemoryOutbox()
    reads = [glucose(1), blood_pressure(1), body(1)]  # 2026-11-20 08:01 device time
    await outbox.enqueue(items_for_read(reads, user_id="alice", zone=T0.tzinfo, enqueued_at=T0))
    client = _client(server)
    await _drain(outbox, client, scale_provider="omron_ble")
    await client.aclose()
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        assert (await http.get("/v2/timeseries/alice/body_weight")).status_code == 401
        weight = (await http.get("/v2/timeseries/alice/body_weight", headers=HEADERS)).json()
        fat = (await http.get("/v2/timeseries/alice/body_fat", headers=HEADERS)).json()
        grouped = (
            await http.get(
                "/v2/timeseries/alice/blood_pressure/grouped",
                params={"start_date": "2026-11-19", "end_date": "2026-11-21"},
                headers=HEADERS,
            )
        ).json()
        summary = (
            await http.get(
                "/v2/summary/body/alice", params={"start_date": "2026-11-20"}, headers=HEADERS
            )
        ).json()
        log = (await http.get("/_stub/requests")).json()
    assert [w["unit"] for w in weight] == ["kg"]
    assert [f["unit"] for f in fat] == ["%"]
    [group] = grouped["groups"]["omron_ble"]
    assert group["source"] == {"provider": "omron_ble", "type": "cuff"}
    assert group["data"][0]["systolic"] == 120.0
    [day] = summary["body"]
    assert (day["weight"], day["source"]["provider"]) == (weight[0]["value"], "omron_ble")
    posted = [r for r in log if r["method"] == "POST" and r["resource"] == "glucose"]
    assert posted[0]["headers"]["x-vital-api-key"] == "<redacted>"
    assert KEY not in json.dumps(log)
    assert posted[0]["body"]["data"][0]["unit"] == "mmol/L", "bodies are logged decoded"
