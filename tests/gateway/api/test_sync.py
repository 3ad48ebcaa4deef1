"""/v1/sync: progress per user and resource, dead letters, trigger, pause/resume, requeue."""

from datetime import UTC, datetime, timedelta

from drivers.readings import ReadingKind
from gateway.store import readings, users
from sync.outbox import Stage, SyncStatus, UploadProgress
from tests.sync.factories import glucose

METER = "C0:FF:EE:00:00:01"
NOW = datetime.now(UTC)


async def seed(services, count=3) -> list[str]:
    users.bind(services.db, METER, "u1")
    items = [glucose(seq) for seq in range(1, count + 1)]
    readings.save_transfer(services.db, items, zone=services.settings.zone)
    return [r.id for r in items]


async def test_progress_and_queue(services, remote_read) -> None:
    await seed(services)
    await services.outbox.record_progress(
        UploadProgress(
            "u1",
            ReadingKind.GLUCOSE,
            SyncStatus.UPLOADED_CHUNK,
            NOW,
            stage=Stage.HISTORICAL,
            count=2,
            delivered_total=2,
        )
    )
    body = (await remote_read.get("/v1/sync")).json()
    assert body["holds"] == {}
    [stream] = body["data"]
    assert stream["user_id"] == "u1"
    assert stream["resource"] == "glucose"
    assert stream["status"] == "uploadedChunk"
    assert stream["delivered_total"] == 2
    assert stream["queued"] == 3
    assert (await remote_read.get("/v1/sync", params={"user_id": "u2"})).json() == {
        "data": [],
        "holds": {},
    }


async def test_dead_letters_and_requeue(services, remote_admin, remote_read) -> None:
    await seed(services)
    batch = await services.outbox.claim(
        "u1", ReadingKind.GLUCOSE, limit=1, now=NOW, lease_until=NOW + timedelta(minutes=5)
    )
    await services.outbox.dead_letter(
        batch.claim_id,
        [batch.items[0].id],
        status_code=422,
        body='{"detail":"bad unit"}',
        reason="Junction refused the reading (422); check the device's unit",
        now=NOW,
    )
    assert (await remote_read.get("/v1/sync/dead_letters")).status_code == 403
    [dead] = (await remote_admin.get("/v1/sync/dead_letters")).json()["data"]
    assert dead["reading_id"] == batch.items[0].id
    assert dead["status_code"] == 422
    assert "check the device's unit" in dead["reason"]
    assert (await remote_admin.get("/v1/users/u1/sync")).json()["dead_letters"] == 1
    response = await remote_admin.post(
        "/v1/sync/dead_letters/requeue", json={"reading_ids": [batch.items[0].id, "unknown"]}
    )
    assert response.status_code == 202
    assert response.json()["detail"] == "1 reading(s) requeued"
    assert services.sync.wakes == 1
    assert (await remote_admin.get("/v1/sync/dead_letters")).json() == {"data": []}
    bad = await remote_admin.post("/v1/sync/dead_letters/requeue", json={"reading_ids": []})
    assert bad.status_code == 422


async def test_trigger_pause_resume(services, remote_admin) -> None:
    await seed(services)
    assert (await remote_admin.post("/v1/sync/trigger")).status_code == 202
    assert services.sync.wakes == 1
    paused = (await remote_admin.post("/v1/sync/users/u1/pause")).json()
    assert paused["paused"] is True
    assert paused["holds"] == ["paused"]
    assert (await remote_admin.get("/v1/sync")).json()["holds"] == {"u1": ["paused"]}
    resumed = (await remote_admin.post("/v1/sync/users/u1/resume")).json()
    assert resumed["paused"] is False
    assert (await remote_admin.post("/v1/sync/users/a%20b/pause")).status_code == 422
