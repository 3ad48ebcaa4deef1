"""Uploader behaviour with a scripted in-process client (no HTTP)."""

import asyncio
import random
from datetime import timedelta

from sync.errors import ServerBusyError
from sync.junction.mapping import Upload
from sync.memory_outbox import MemoryOutbox
from sync.outbox import Stage, SyncStatus
from sync.uploader import Uploader
from tests.sync.conftest import fast_backoff
from tests.sync.factories import T0, blood_pressure, body, glucose, item


class ScriptedClient:
    """Answers POSTs from a script of exceptions (None = success); records uploads."""

    def __init__(self, *script):
        self.script = list(script)
        self.uploads: list[tuple[str, Upload]] = []

    async def post(self, user_id, upload):
        await asyncio.sleep(0)
        answer = self.script.pop(0) if self.script else None
        if answer is not None:
            raise answer
        self.uploads.append((user_id, upload))

    async def ensure_connected(self, user_id, provider):
        return None

    async def sign_in(self, user_id, sign_in_token):
        return None


class RecordingOutbox(MemoryOutbox):
    """Keeps every progress record, not only the latest."""

    def __init__(self):
        super().__init__()
        self.history = []

    async def record_progress(self, progress):
        self.history.append(progress)
        await super().record_progress(progress)


def _uploader(outbox, client, **kw):
    options = {"time_zone": "UTC", "backoff": fast_backoff, "rng": random.Random(1),
               "idle_poll_s": 0.02} | kw  # fmt: skip
    return Uploader(outbox, client, **options)


async def test_an_unexpected_exception_is_retried_not_lost():
    outbox = MemoryOutbox()
    await outbox.enqueue([item(glucose())])
    client = ScriptedClient(RuntimeError("bug"))
    await asyncio.wait_for(_uploader(outbox, client).run(until_idle=True), 10)
    assert len(client.uploads) == 1


async def test_progress_statuses_over_a_stream_life():
    outbox = RecordingOutbox()
    await outbox.enqueue([item(glucose()) for _ in range(3)])
    busy = ServerBusyError("x", status_code=503, body="", retry_after=None)
    await asyncio.wait_for(
        _uploader(outbox, ScriptedClient(busy), batch_size=2).run(until_idle=True), 10
    )
    seen = [p.status for p in outbox.history]
    assert seen[0] is SyncStatus.STARTED
    assert SyncStatus.ERROR in seen
    assert seen[-1] is SyncStatus.COMPLETED
    [final] = await outbox.progress()
    assert final.delivered_total == 3


async def test_pause_records_connection_paused():
    outbox = MemoryOutbox()
    await outbox.enqueue([item(glucose(), user_id="p"), item(body(), user_id="p")])
    uploader = _uploader(outbox, ScriptedClient())
    await uploader.pause("p")
    statuses = {p.resource: p.status for p in await outbox.progress("p")}
    assert set(statuses.values()) == {SyncStatus.CONNECTION_PAUSED}


async def test_historical_gate_records_deprioritized():
    outbox = RecordingOutbox()
    await outbox.enqueue(
        [item(glucose(), stage=Stage.HISTORICAL)]
        + [item(body(), stage=Stage.HISTORICAL) for _ in range(2)]
    )
    client = ScriptedClient()
    uploader = _uploader(outbox, client, max_in_flight=4, backfill_days=30)
    await asyncio.wait_for(uploader.run(until_idle=True), 10)
    assert [u.path.split("/")[2] for _, u in client.uploads] == ["timeseries", "summary"]
    body_statuses = [p.status for p in outbox.history if p.resource == "body"]
    assert body_statuses[0] is SyncStatus.DEPRIORITIZED
    assert body_statuses[-1] is SyncStatus.COMPLETED


async def test_no_historical_gate_without_a_backfill_setting():
    """Everything is daily by default (the Devices SDK), so nothing waits for a backfill."""
    outbox = RecordingOutbox()
    await outbox.enqueue(
        [item(glucose(), stage=Stage.HISTORICAL)]
        + [item(body(), stage=Stage.HISTORICAL) for _ in range(2)]
    )
    client = ScriptedClient()
    await asyncio.wait_for(_uploader(outbox, client, max_in_flight=4).run(until_idle=True), 10)
    assert {u.body["stage"] for _, u in client.uploads} == {"daily"}
    assert SyncStatus.DEPRIORITIZED not in {p.status for p in outbox.history}


class FailingStreamClient(ScriptedClient):
    """Every POST for one path fails with a 503; everything else succeeds."""

    def __init__(self, failing_path):
        super().__init__()
        self.failing_path = failing_path
        self.failures = 0

    async def post(self, user_id, upload):
        await asyncio.sleep(0)
        if upload.path == self.failing_path:
            self.failures += 1
            msg = "down"
            raise ServerBusyError(msg, status_code=503, body="", retry_after=None)
        self.uploads.append((user_id, upload))


async def test_a_failing_stream_never_blocks_the_others():
    outbox = MemoryOutbox()
    await outbox.enqueue(
        [item(glucose(), user_id="a") for _ in range(5)]
        + [item(body(), user_id="a") for _ in range(5)]
        + [item(glucose(), user_id="b") for _ in range(5)]
    )
    client = FailingStreamClient("/v2/timeseries/a/glucose")
    uploader = _uploader(outbox, client, batch_size=2, max_in_flight=1)
    task = asyncio.create_task(uploader.run())
    for _ in range(200):
        if len(client.uploads) == 6:
            break
        await asyncio.sleep(0.01)
    uploader.stop()
    await task
    assert sorted({u.path for _, u in client.uploads}) == [
        "/v2/summary/body/a",
        "/v2/timeseries/b/glucose",
    ]
    assert client.failures >= 2, "the failing stream kept being retried"
    [stream] = await outbox.streams(T0 + timedelta(days=1))
    assert (stream.user_id, stream.queued) == ("a", 5)


async def test_every_post_is_reported_with_its_duration_and_outcome():
    outbox = MemoryOutbox()
    await outbox.enqueue([item(glucose())])
    busy = ServerBusyError("x", status_code=503, body="", retry_after=None)
    posts = []
    uploader = _uploader(outbox, ScriptedClient(busy), on_post=lambda *args: posts.append(args))
    await asyncio.wait_for(uploader.run(until_idle=True), 10)
    assert [(resource.value, outcome) for resource, _, outcome in posts] == [
        ("glucose", "retry"),
        ("glucose", "delivered"),
    ]
    assert all(seconds >= 0 for _, seconds, _ in posts)


async def test_a_backfill_is_not_held_behind_a_daily_backlog():
    """Issue 18: a BP backfill goes up while glucose is still draining daily readings."""
    outbox = RecordingOutbox()
    backlog = [item(glucose(), enqueued_at=T0 + timedelta(seconds=n)) for n in range(6)]
    trailing = [
        item(glucose(), stage=Stage.HISTORICAL, enqueued_at=T0 + timedelta(minutes=1))
        for _ in range(2)
    ]
    bp = item(blood_pressure(), stage=Stage.HISTORICAL)
    await outbox.enqueue([*backlog, *trailing, bp])
    client = ScriptedClient()
    uploader = _uploader(outbox, client, max_in_flight=4, backfill_days=30, batch_size=2)
    await asyncio.wait_for(uploader.run(until_idle=True), 10)
    kinds = [u.path.split("/")[-1] for _, u in client.uploads]
    assert kinds.index("blood_pressure") < 3, kinds  # not after the whole glucose drain
    assert SyncStatus.DEPRIORITIZED not in {
        p.status for p in outbox.history if p.resource == "blood_pressure"
    }
