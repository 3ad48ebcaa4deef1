"""The recording of one transfer: its frames plus what a playback needs to run it again.

The collector wraps each connected link with `TransferRecording.recorder` and hands the
recording to the `TransferSaver`, which stores `batch()` with every commit.
"""

import uuid
from datetime import datetime
from functools import cache
from importlib import metadata
from typing import Any

from drivers.devices.base import Advertisement, CollectContext, Cursor, DeviceMatch, Driver
from drivers.recording import FrameRecorder, short_uuid
from gateway.store.frames import FrameBatch, TransferHeader


@cache
def package_version() -> str:
    """The installed edge-gateway version (``"0.1.0"``)."""
    try:
        return metadata.version("edge-gateway")
    except metadata.PackageNotFoundError:
        return "0"


def driver_version(driver: type[Driver] | Driver) -> str:
    """``"<package version>/<Driver.version>"``: which parse rules derived a reading."""
    return f"{package_version()}/{driver.version}"


def match_to_json(match: DeviceMatch) -> dict[str, Any]:
    """A `DeviceMatch` as JSON."""
    return {
        "driver": match.driver,
        "kind": match.kind.value,
        "brand": match.brand,
        "provider": match.provider,
        "model": match.model,
    }


def advertisement_to_json(advertisement: Advertisement) -> dict[str, Any]:
    """An `Advertisement` as JSON (bytes in hex)."""
    return {
        "name": advertisement.name,
        "rssi": advertisement.rssi,
        "service_uuids": [short_uuid(u) for u in advertisement.service_uuids],
        "manufacturer_data": {str(k): v.hex() for k, v in advertisement.manufacturer_data.items()},
        "service_data": {short_uuid(k): v.hex() for k, v in advertisement.service_data.items()},
    }


class TransferRecording:
    """One transfer being recorded (a connection's frames and its playback context)."""

    def __init__(
        self,
        driver: Driver,
        match: DeviceMatch,
        cursor: Cursor,
        context: CollectContext,
        advertisement: Advertisement,
        *,
        now: datetime | None = None,
    ) -> None:
        """Record a transfer `driver` is about to do with `context`, starting from `cursor`."""
        self.id = uuid.uuid4().hex
        self.recorder = FrameRecorder(now=(lambda: now) if now is not None else None)
        self.address = advertisement.address.upper()
        self.driver = driver.name
        self.driver_version = driver_version(driver)
        self._context: dict[str, Any] = {
            "match": match_to_json(match),
            "cursor": cursor.to_json(),
            "historical": context.historical,
            "zone": context.zone,
            "clock_write": context.clock_policy.write,
            "advertisement": advertisement_to_json(advertisement),
        }

    def header(self) -> TransferHeader:
        """The transfer's header as of now (the GATT shape grows as the driver asks)."""
        return TransferHeader(
            id=self.id,
            device=self.address,
            connection_id=self.recorder.connection_id,
            driver=self.driver,
            driver_version=self.driver_version,
            started_at=self.recorder.started_at,
            context={**self._context, "shape": self.recorder.shape.to_json()},
        )

    def batch(self) -> FrameBatch:
        """The header and every frame not yet committed."""
        return FrameBatch(self.header(), self.recorder.pending)
