"""Ends kiosk sessions nobody uses and tells the page at once when any session lapses.

Runs in the API's lifespan (`gateway.app`). Every `interval_s`: sessions with no activity
for `[kiosk] idle_s` are ended (`gateway.store.kiosk.end_idle_sessions`), and a session
whose duration ran out is announced, so the kiosk page clears the person's screen within
about a second instead of at its next poll. Event: `gateway.kiosk.session.ended` with
``{"id", "user_id", "reason": "idle" | "expired"}``.
"""

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from gateway.events import KIOSK_SESSION_ENDED, EventBus
from gateway.store import Database, StoreError, aio, kiosk
from gateway.store.attribution import KioskSession

_LOGGER = logging.getLogger(__name__)


def _announce(events: EventBus, session: KioskSession, reason: str) -> None:
    data = {"id": session.id, "user_id": session.user_id, "reason": reason}
    events.publish(KIOSK_SESSION_ENDED, session.user_id, data)


async def watch_sessions(
    db: Database, events: EventBus, idle: timedelta, *, interval_s: float = 1.0
) -> None:
    """End idle sessions and announce lapsed ones until cancelled."""
    seen: dict[int | None, KioskSession] = {}
    while True:
        try:
            for session in await aio.call(kiosk.end_idle_sessions, db, idle):
                _LOGGER.info("kiosk session %s ended: idle for %s", session.id, idle)
                _announce(events, session, "idle")
                seen.pop(session.id, None)
            live = {s.id: s for s in await aio.call(kiosk.active_sessions, db)}
            now = datetime.now(UTC)
            for sid, session in seen.items():
                # Only a lapse: whoever ended a session early (staff, the API) announced it.
                if sid not in live and session.expires_at <= now:
                    _announce(events, session, "expired")
            seen = live
        except StoreError as exc:
            _LOGGER.warning("kiosk session watch: %s", exc)
        await asyncio.sleep(interval_s)
