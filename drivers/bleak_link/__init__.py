"""The only package that imports Bleak: a `GattLink` over BlueZ, scanning, and error translation.

Connections go through bleak-retry-connector (`establish_connection` with
`BleakClientWithServiceCache`: backoff by error class, BlueZ's GATT cache reused when still
valid). Every Bleak, D-Bus and retry-connector error is translated (`errors.translate`) into the
`drivers.errors.LinkError` tree, ``raise … from exc``, with a message that leads with the
device and ends with a remedy. Nothing outside this package sees a Bleak type: adverts become
`drivers.devices.base.Advertisement` values.

Gotchas handled (see `shared/reference/bluez-simulator.md`):

- Notifications use StartNotify, never AcquireNotify, which loses cross-characteristic order.
- Bleak raises nothing into code awaiting notifications when the link drops; the
  disconnected callback sets `GattLink.disconnected`, which every driver wait races.
- After a drop Bleak says "Service Discovery has not been performed yet": that is a
  `DisconnectedError`.
- `disconnect()` is always called, even after the device hung up, or Bleak keeps its
  per-connection D-Bus socket open.
- dbus-fast finalises a dead bus again on every call made on it, unwatching whatever file has
  its socket's number now; `dead_bus` makes such a send fail at once.
"""

from drivers.bleak_link import dead_bus
from drivers.bleak_link.errors import PAIR_REMEDY, translate
from drivers.bleak_link.link import (
    CONNECT_ATTEMPTS,
    FIND_TIMEOUT_S,
    LINK_LOSS_SETTLE_S,
    PAIR_CONNECT_ATTEMPTS,
    BleakLink,
)
from drivers.bleak_link.pairing import pair_device
from drivers.bleak_link.radio import (
    BleakRadio,
    advertisement_from,
    find,
    release_stale_links,
    scan,
)

# Before any bus exists: a dead bus finalised twice unwatches another file (see the module).
dead_bus.apply()

__all__ = [
    "CONNECT_ATTEMPTS",
    "FIND_TIMEOUT_S",
    "LINK_LOSS_SETTLE_S",
    "PAIR_CONNECT_ATTEMPTS",
    "PAIR_REMEDY",
    "BleakLink",
    "BleakRadio",
    "advertisement_from",
    "find",
    "pair_device",
    "release_stale_links",
    "scan",
    "translate",
]
