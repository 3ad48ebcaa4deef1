"""Periodic jobs (APScheduler 3.x on the gateway's own event loop); each is idempotent.

- upload tick: wake the uploader even if nothing new was saved (retries that came due);
- retention: prune delivered readings older than `keep_delivered_days`, then recorded frames
  no reading needs any more (or older than `[store] frame_retention_days`);
- status snapshot: one INFO line with counts (never measured values);
- clock check: warn about devices whose clock is far off (their readings are still kept raw);
- change-order catch-up: delivered readings take their place in the change order
  (`updated_since`) while the uploader is idle, `SETTLE_CHUNK` at a time
  (`gateway.store.outbox`); the uploader only does it when it completes a batch.
"""

import logging
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from gateway.store import Database, aio
from gateway.store import devices as device_store
from gateway.store.frames import prune_frames
from gateway.store.retention import prune_delivered

if TYPE_CHECKING:
    from gateway.runtime import Gateway

_LOGGER = logging.getLogger(__name__)

UPLOAD_TICK_S = 30
STATUS_EVERY_S = 300
RETENTION_EVERY_S = 6 * 3600
CLOCK_CHECK_EVERY_S = 3600
CATCH_UP_EVERY_S = 1.0  # a chunk is ~60 ms on a Pi-class core; 100k deliveries in ~50 s


def build_scheduler(gateway: "Gateway") -> AsyncIOScheduler:
    """A scheduler with the gateway's jobs; call `start()` inside the running loop."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    common = {"coalesce": True, "max_instances": 1}
    scheduler.add_job(gateway.uploader.wake, "interval", seconds=UPLOAD_TICK_S, **common)
    scheduler.add_job(retention, "interval", seconds=RETENTION_EVERY_S, args=[gateway], **common)
    scheduler.add_job(status_snapshot, "interval", seconds=STATUS_EVERY_S, args=[gateway], **common)
    scheduler.add_job(
        clock_check, "interval", seconds=CLOCK_CHECK_EVERY_S, args=[gateway], **common
    )
    scheduler.add_job(gateway.outbox.catch_up, "interval", seconds=CATCH_UP_EVERY_S, **common)
    return scheduler


async def retention(gateway: "Gateway") -> int:
    """Prune delivered readings past the keep window."""
    pruned = await aio.call(
        prune_delivered, gateway.db, keep_days=gateway.settings.keep_delivered_days
    )
    if pruned:
        _LOGGER.info("retention: pruned %d delivered reading(s)", pruned)
    # After the readings: a transfer whose readings just went can go in the same run.
    await aio.call(
        prune_frames,
        gateway.db,
        keep_days=gateway.settings.keep_delivered_days,
        frame_days=gateway.settings.store.frame_retention_days,
    )
    return pruned


async def status_snapshot(gateway: "Gateway") -> None:
    """Log what the gateway holds and where its devices are."""
    devices = gateway.radar.snapshot()
    connected = sum(1 for d in devices if d.connected)
    stats = gateway.uploader.stats
    _LOGGER.info(
        "status: %d device(s) seen, %d connected; uploaded %d, retried %d, dead %d",
        len(devices),
        connected,
        stats.delivered,
        stats.retried,
        stats.dead,
    )


async def clock_check(gateway: "Gateway") -> list[str]:
    """Warn about devices whose last measured clock skew exceeds `ble.clock_warn_s`."""
    limit = gateway.settings.ble.clock_warn_s
    known = await aio.call(device_store.list_devices, gateway.db)
    off = [d for d in known if d.clock_skew_s is not None and abs(d.clock_skew_s) > limit]
    for device in off:
        _warn_skew(device.address, device.clock_skew_s or 0.0, limit)
    return [d.address for d in off]


async def check_device_clock(db: Database, address: str, limit_s: float) -> bool:
    """After a read: warn, as `clock_check` does hourly, if `address`'s clock is off.

    Returns:
        Whether it warned (the skew is over `limit_s` seconds).
    """
    known = await aio.call(device_store.get_device, db, address)
    if known is None or known.clock_skew_s is None or abs(known.clock_skew_s) <= limit_s:
        return False
    _warn_skew(address, known.clock_skew_s, limit_s)
    return True


def _warn_skew(address: str, skew_s: float, limit_s: float) -> None:
    _LOGGER.warning(
        "%s: device clock is %+.0f s off (more than %.0f s); readings keep their raw time, "
        "and enabling ble.write_device_clock lets the gateway set it",
        address,
        skew_s,
        limit_s,
    )
