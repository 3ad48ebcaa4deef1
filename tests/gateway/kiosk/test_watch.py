"""The session watcher: idle sessions end, lapsed ones are announced, each once."""

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from gateway.events import KIOSK_SESSION_ENDED, EventBus
from gateway.kiosk.watch import watch_sessions
from gateway.store import kiosk
from gateway.store.models import KioskSessionRow


async def _ended(events: EventBus, after: int, count: int) -> list[dict]:
    async with asyncio.timeout(10):
        while True:
            found = [e for e in events.since(after)[0] if e.event_type == KIOSK_SESSION_ENDED]
            if len(found) >= count:
                return [dict(e.data) for e in found]
            await asyncio.sleep(0.02)


async def test_idle_and_lapsed_sessions_are_announced_once(db) -> None:
    events = EventBus()
    start = events.last_id
    idle = kiosk.start_session(db, "ada", duration=timedelta(hours=1), device="C0:FF:EE:00:00:01")
    lapsing = kiosk.start_session(
        db, "bob", duration=timedelta(hours=1), device="C0:FF:EE:00:00:02"
    )
    watcher = asyncio.create_task(watch_sessions(db, events, timedelta(seconds=1), interval_s=0.05))
    try:
        # Bob's session runs out (as if its duration had passed); Ada's goes idle meanwhile.
        with db.write() as session:
            row = session.get_one(KioskSessionRow, lapsing.id)
            row.expires_at = datetime.now(UTC) + timedelta(milliseconds=300)
            session.add(row)
        ended = await _ended(events, start, 2)
        await asyncio.sleep(0.3)
        assert len(await _ended(events, start, 2)) == 2  # nothing announced twice
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    reasons = {e["user_id"]: e["reason"] for e in ended}
    assert reasons == {"ada": "idle", "bob": "expired"}
    assert {e["id"] for e in ended} == {idle.id, lapsing.id}
    assert kiosk.active_sessions(db) == []
