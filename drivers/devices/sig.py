"""What the SIG-profile drivers share: matching by service and brand, Device Information."""

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import ClassVar

from drivers.devices.base import Advertisement, CollectContext, DeviceInfo, DeviceMatch, Driver
from drivers.devices.brands import Brand, brand_by_name, brand_for
from drivers.errors import PairingError, ParseError, ProtocolError
from drivers.gatt import uuids
from drivers.link import GattLink
from drivers.readings import DeviceTime, ReadingFlag, ReadingKind, stable_reading_id

_LOGGER = logging.getLogger(__name__)

UNKNOWN_USER = 0xFF

_DIS_FIELDS = (
    ("manufacturer", uuids.MANUFACTURER_NAME),
    ("model", uuids.MODEL_NUMBER),
    ("serial", uuids.SERIAL_NUMBER),
    ("firmware", uuids.FIRMWARE_REVISION),
)


class SigDriver(Driver):
    """A driver for one SIG health service (glucose 0x1808, BP 0x1810, weight 0x181D)."""

    service_uuid: ClassVar[str]
    """The SIG service whose presence in an advertisement claims the device."""

    def match(self, advertisement: Advertisement) -> DeviceMatch | None:
        """Claim devices advertising `service_uuid`, or named like a brand of this kind."""
        if self._rejects(advertisement):
            return None
        services = advertisement.service_uuids
        if self.service_uuid in services:
            brand = brand_for(
                self.kind,
                name=advertisement.name,
                service_uuids=services,
                company_ids=tuple(advertisement.manufacturer_data),
            )
        else:
            named = brand_by_name(advertisement.name, services)
            if named is None or named.kinds[0] is not self.kind:
                return None
            brand = named
        return self._match(brand)

    def _rejects(self, advertisement: Advertisement) -> bool:  # noqa: ARG002 - a hook
        """Devices that look like ours but are not (overridden per family)."""
        return False

    def _match(self, brand: Brand, model: str | None = None) -> DeviceMatch:
        return DeviceMatch(
            driver=self.name,
            kind=self.kind,
            brand=brand.name,
            provider=brand.provider,
            model=model,
            pairing_hint=brand.pairing_hint,
        )

    def refine(self, match: DeviceMatch, info: DeviceInfo, name: str | None) -> DeviceMatch:
        """The match corrected by Device Information (the manufacturer string wins).

        The provider slug of the original match is kept when Device Information names no
        known brand, so a binding-level choice made from the name stays stable.
        """
        brand = brand_for(self.kind, name=name, manufacturer=info.manufacturer)
        if brand.name == "Generic" and match.brand != "Generic":
            return DeviceMatch(
                driver=match.driver,
                kind=match.kind,
                brand=match.brand,
                provider=match.provider,
                model=info.model or match.model,
                pairing_hint=match.pairing_hint,
            )
        return self._match(brand, info.model or match.model)


async def read_device_info(link: GattLink) -> DeviceInfo:
    """Read the Device Information strings the device has; unreadable ones are None."""
    values: dict[str, str | None] = {}
    for field_name, uuid in _DIS_FIELDS:
        values[field_name] = None
        if not link.has_characteristic(uuid):
            continue
        try:
            raw = await link.read(uuid)
        except (ProtocolError, PairingError):
            _LOGGER.debug("%s: Device Information %s unreadable", link.address, field_name)
            continue
        text = raw.decode("utf-8", errors="replace").strip("\x00").strip()
        values[field_name] = text or None
    return DeviceInfo(**values)


def base_flags(context: CollectContext) -> frozenset[ReadingFlag]:
    """Flags every reading of the transfer carries (historical first read)."""
    return frozenset({ReadingFlag.HISTORICAL}) if context.historical else frozenset()


def with_flags(flags: Iterable[ReadingFlag], context: CollectContext) -> frozenset[ReadingFlag]:
    """`flags` plus the transfer-wide ones."""
    return frozenset(flags) | base_flags(context)


def unprompted_reading_id(
    address: str,
    kind: ReadingKind,
    *,
    device_time: DeviceTime | None,
    user_index: int | None,
    transfer_started: datetime,
    position: int,
) -> str:
    """The stable id of a record from a device without sequence numbers (cuffs, scales).

    A timestamped record is identified by its device time and user. A record without one
    can only be told apart by when and in what order it came: such devices send each record
    once, so the transfer's start and the record's position stand in for the missing time.
    """
    if device_time is not None:
        return stable_reading_id(
            address, kind, sequence=None, device_time=device_time, user_index=user_index
        )
    when = DeviceTime.from_datetime(transfer_started.astimezone(UTC).replace(tzinfo=None))
    return stable_reading_id(
        address, kind, sequence=position, device_time=when, user_index=user_index
    )


def user_slot(raw: int | None) -> int | None:
    """A device user id, with 255 ("unknown user" in BLS, WSS and BCS) as None."""
    return None if raw is None or raw == UNKNOWN_USER else raw


class MalformedPackets:
    """Skipped packets of one transfer: the first logged at WARNING, the rest at DEBUG.

    The raw bytes go to DEBUG only (they carry measured values), so a field bug can still
    become a test vector.
    """

    def __init__(self, address: str) -> None:
        """Count for the device at `address`."""
        self.address = address
        self.count = 0

    def skip(self, what: str, exc: ParseError, value: bytes) -> None:
        """Note a packet that did not parse."""
        self.count += 1
        level = logging.WARNING if self.count == 1 else logging.DEBUG
        _LOGGER.log(level, "%s: skipping malformed %s: %s", self.address, what, exc)
        _LOGGER.debug("%s: malformed %s bytes %s", self.address, what, value.hex())
