"""kill -9 of an uploader process mid-batch, then a restart: nothing lost, nothing doubled.

The outbox is the store's SQLite outbox (durable), the uploader runs in a child process,
and the Junction stub runs in this test's event loop so its request log can be watched.
"""

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.store import DATABASE_FILENAME, open_database
from gateway.store.outbox import SqliteOutbox
from sync.junction.stub import Faults
from sync.outbox import items_for_read
from tests.sync.conftest import API_KEY
from tests.sync.factories import blood_pressure, glucose
from tests.sync.test_uploader import _expected_keys, _stored_keys

ROOT = Path(__file__).resolve().parents[2]
BERLIN = ZoneInfo("Europe/Berlin")


async def _child(data_dir: Path, base_url: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.sync.crash_uploader", str(data_dir), base_url, API_KEY,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )  # fmt: skip


async def test_kill_9_mid_batch_then_restart(stub_server, tmp_path):
    outbox = SqliteOutbox(open_database(tmp_path / DATABASE_FILENAME), zone=ZoneInfo("UTC"))
    now = datetime.now(UTC)
    items = []
    for user in ("u1", "u2"):
        reads = [glucose(device="C0:FF:EE:0A:00:01") for _ in range(40)]
        reads += [blood_pressure(device="C0:FF:EE:0A:00:02") for _ in range(40)]
        items += items_for_read(reads, user_id=user, zone=BERLIN, enqueued_at=now)
    assert await outbox.enqueue(items) == len(items)

    stub = stub_server.stub
    # Requests 1-4 go through, then every POST hangs for 30 s: the child is mid-batch.
    stub.set_faults(Faults(script=["none"] * 4 + ["slow"] * 50, slow_s=30, scope="data"))
    first = await _child(tmp_path, stub_server.base_url)
    for _ in range(1500):
        if sum(r.fault == "slow" for r in stub.requests) >= 2:
            break
        await asyncio.sleep(0.01)
    os.kill(first.pid, signal.SIGKILL)
    assert await first.wait() == -signal.SIGKILL
    delivered_before = len(stub.samples)
    assert 0 < delivered_before < len(items)

    stub.set_faults(Faults(script=["drop_after_accept", "none", "drop_after_accept"], scope="data"))
    second = await _child(tmp_path, stub_server.base_url)
    stdout, _ = await asyncio.wait_for(second.communicate(), 40)
    assert second.returncode == 0, stdout

    assert _stored_keys(stub) == _expected_keys(items)
    assert await outbox.streams(datetime.now(UTC)) == []
    assert await outbox.dead_letters() == []
    assert max(d["writes"] for d in stub.samples.values()) >= 2, "resends were upserted"
