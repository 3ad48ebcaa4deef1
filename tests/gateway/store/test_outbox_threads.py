"""Threads: streams drained concurrently, settles and catch-ups racing, while /metrics-like
readers call streams(): every reading claimed once, delivered and caught up."""

import asyncio
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from drivers.readings import ReadingKind
from gateway.store import outbox as om
from gateway.store import users
from gateway.store.outbox import SqliteOutbox
from gateway.store.readings import save_transfer
from tests.gateway.store.conftest import ZONE
from tests.sync.factories import T0, glucose


@pytest.mark.parametrize("settle_after", [0.0, 0.01])
async def test_streams_drained_concurrently_with_readers_deliver_each_reading_once(
    db, monkeypatch, settle_after
):
    monkeypatch.setattr(om, "SETTLE_AFTER_S", settle_after)
    monkeypatch.setattr(om, "CATCH_UP_AFTER_S", 0.0)
    for n, user in enumerate(("a", "b")):
        users.bind(db, f"C0:FF:EE:00:00:0{n}", user)
        save_transfer(
            db,
            [glucose(i, device=f"C0:FF:EE:00:00:0{n}") for i in range(1, 301)],
            zone=ZONE,
            now=T0,
        )
    outbox = SqliteOutbox(db, zone=ZONE)
    sent: Counter[str] = Counter()
    anomalies = []
    done = asyncio.Event()

    async def drain(user):
        while True:
            now = datetime.now(UTC)
            b = await outbox.claim(
                user, ReadingKind.GLUCOSE, limit=7, now=now, lease_until=now + timedelta(minutes=5)
            )
            if b is None:
                mine = [s for s in await outbox.streams(now) if s.user_id == user]
                if not mine:
                    return
                continue
            if b.remaining < 0:
                anomalies.append(("remaining", user, b.remaining))
            sent.update(i.id for i in b.items)
            await outbox.complete(b.claim_id, [i.id for i in b.items], now)

    async def reader():
        while not done.is_set():
            anomalies.extend(
                ("count", s.user_id, s.queued, s.due)
                for s in await outbox.streams(datetime.now(UTC))
                if s.queued <= 0 or s.due < 0
            )
            await outbox.catch_up()

    r = [asyncio.create_task(reader()) for _ in range(2)]
    await asyncio.gather(drain("a"), drain("b"))
    done.set()
    await asyncio.gather(*r)
    assert await outbox.streams(datetime.now(UTC)) == []
    for _ in range(5):
        await outbox.catch_up()
    with sqlite3.connect(db.path) as conn:
        states = dict(conn.execute("SELECT state, count(*) FROM reading GROUP BY state"))
        left = conn.execute("SELECT count(*) FROM outbox_delivery").fetchone()[0]
        waiting = conn.execute("SELECT count(*) FROM change_catch_up").fetchone()[0]
    assert anomalies == []
    assert max(sent.values()) == 1
    assert len(sent) == 600
    assert states == {"delivered": 600}
    assert (left, waiting) == (0, 0)
