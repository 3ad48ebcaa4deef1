"""The driver contract: match an advertisement, then collect readings over a `GattLink`.

The collector (gateway) drives every driver the same way:

1. `Driver.match(advertisement)` → a `DeviceMatch` (kind, brand, provider slug) or None;
2. connect (`drivers.bleak_link`) and `await driver.collect(link, cursor, context)`;
3. save `Transfer.readings` **and** `Transfer.cursor` in one transaction;
4. only then disconnect.

So `collect` must do nothing irreversible (no RACP delete, no acknowledgement a device erases
on): cuffs and scales may erase what they sent, and the gateway persists before anything else.
BlueZ confirms every indication itself the moment it arrives, so a cuff or scale may forget a
record long before `collect` returns: drivers of such devices hand each reading to
`CollectContext.sink` as soon as it is built, and the gateway makes it durable at once
(the Transfer still lists every reading; saving is idempotent by stable id).
A link drop mid-transfer does not raise: `collect` returns what it got, `complete=False`, with
the cursor advanced only to the last record received without a gap, so the next connection
resumes from there and stable ids absorb any overlap.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from drivers.clock import ClockPolicy
from drivers.link import GattLink
from drivers.readings import Reading, ReadingKind


def utc_now() -> datetime:
    """The gateway's clock (aware UTC); `CollectContext.clock` defaults to it."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Advertisement:
    """One advertisement as the scanner heard it (no Bleak types leave `bleak_link`).

    Attributes:
        address: Bluetooth address, upper case.
        name: Advertised (local) name, if any.
        rssi: Signal strength in dBm, if known.
        service_uuids: Advertised service UUIDs, full 128-bit lower case.
        manufacturer_data: Manufacturer-specific data by company id.
        service_data: Service data by full service UUID.
    """

    address: str
    name: str | None = None
    rssi: int | None = None
    service_uuids: tuple[str, ...] = ()
    manufacturer_data: Mapping[int, bytes] = field(default_factory=dict)
    service_data: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """Device Information Service (0x180A) strings; None where the device has none."""

    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceMatch:
    """What a driver recognised in an advertisement (or, refined, in Device Information).

    Attributes:
        driver: The claiming driver's `Driver.name` (``"sig_glucose"``).
        kind: What the device measures.
        brand: Display brand (``"Accu-Chek"``, ``"Omron"``, ``"Generic"``).
        provider: Junction provider slug readings are sent under (``"accuchek_ble"``);
            ``"manual"`` for a generic SIG device of no known brand.
        model: Model, when the name or Device Information tells it.
        pairing_hint: How to put this device in pairing mode, for error messages.
    """

    driver: str
    kind: ReadingKind
    brand: str
    provider: str
    model: str | None = None
    pairing_hint: str = "put the device in pairing mode (see its manual) and retry"


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the last stored transfer of a device ended; the store keeps it opaque per device.

    Attributes:
        last_sequence: Highest record sequence stored with no gap before it (RACP devices).
        last_id: Stable reading id of that record, so a different meter (or one reset and
            refilled) that reuses the number can be told apart.
        newest_first: The meter numbers its records newest-first (TaiDoc): sequence numbers
            shift with every new test, so they are no cursor; every read is a full read
            deduplicated by device time + value.
    """

    last_sequence: int | None = None
    last_id: str | None = None
    newest_first: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (the store writes it with `json.dumps`)."""
        value: dict[str, Any] = {"last_sequence": self.last_sequence, "last_id": self.last_id}
        if self.newest_first:
            value["newest_first"] = True
        return value

    @classmethod
    def from_json(cls, value: object) -> "Cursor":
        """Rebuild from `to_json` output; None or anything unrecognised gives an empty cursor.

        An unreadable cursor only costs a full re-read (deduplicated by stable id), so it is
        not an error.
        """
        if not isinstance(value, dict):
            return cls()
        seq = value.get("last_sequence")
        last_id = value.get("last_id")
        return cls(
            last_sequence=seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
            last_id=last_id if isinstance(last_id, str) else None,
            newest_first=value.get("newest_first") is True,
        )


class NoticeCode(StrEnum):
    """Things a transfer reports that are not readings."""

    METER_RESET = "meter_reset"  # sequence numbers went backwards: a full read was done
    MEASUREMENT_UNSUCCESSFUL = "measurement_unsuccessful"  # scale said 0xFFFF
    CONSENT_MISSING = "consent_missing"  # UDS user slot without a stored consent code
    CONSENT_REFUSED = "consent_refused"  # the scale rejected the stored consent code
    CLOCK_SET = "clock_set"  # the device clock was written (CTS)
    INCOMPLETE = "incomplete"  # the link dropped before the device said it was done
    CAPPED = "capped"  # the total time cap ended a stream still running; read it again


@dataclass(frozen=True, slots=True)
class Notice:
    """A transfer event for logs, the API and the kiosk page; carries no measured values."""

    code: NoticeCode
    message: str
    user_index: int | None = None


ReadingSink = Callable[[Sequence[Reading]], None]
"""Takes readings as they arrive, for saving at once; must not block (it queues)."""


def _no_sink(_readings: Sequence[Reading]) -> None:
    return None


@dataclass(frozen=True, slots=True)
class CollectContext:
    """What the gateway tells a driver for one transfer.

    Attributes:
        match: The match that chose the driver (slug, brand).
        consent_codes: UDS consent code per device user slot (scales).
        historical: This is the first read of the device's memory; readings get
            `ReadingFlag.HISTORICAL`.
        clock: The gateway clock (aware UTC); injectable for tests.
        clock_policy: Whether to measure and write the device clock.
        zone: IANA zone the device clock shows (for CTS writes).
        sink: Where streaming drivers hand each reading the moment it is built (the
            gateway saves it within milliseconds); the default drops them, for callers
            that only want the returned `Transfer`.
    """

    match: DeviceMatch
    consent_codes: Mapping[int, int] = field(default_factory=dict)
    historical: bool = False
    clock: Callable[[], datetime] = utc_now
    clock_policy: ClockPolicy = field(default_factory=ClockPolicy)
    zone: str = "UTC"
    sink: ReadingSink = _no_sink


@dataclass(frozen=True, slots=True)
class Transfer:
    """The result of one `collect`.

    Attributes:
        readings: Every record received, in device order (duplicates by id removed).
        cursor: The cursor to store with the readings (in the same transaction).
        complete: False when the transfer was cut short: for RACP meters, the link dropped
            before the procedure ended; cuffs and scales signal no end, so only when the
            total cap cut a stream still running (their hang-up is the normal end).
        match: The match refined by Device Information (brand and slug may change).
        device_info: Device Information strings, if read.
        clock_skew_s: Device clock minus gateway clock, if measured.
        notices: Events worth telling a person about (reset, unsuccessful measurement, …).
    """

    readings: tuple[Reading, ...]
    cursor: Cursor
    complete: bool = True
    match: DeviceMatch | None = None
    device_info: DeviceInfo | None = None
    clock_skew_s: float | None = None
    notices: tuple[Notice, ...] = ()

    @property
    def last_sequence(self) -> int | None:
        """The cursor's sequence (the store keeps it in its own column too)."""
        return self.cursor.last_sequence


class Driver(ABC):
    """One device family behind one interface (SIG glucose, SIG BP, SIG scale, …)."""

    name: ClassVar[str]
    """Stable identifier, e.g. ``"sig_glucose"``; stored with a device."""
    kind: ClassVar[ReadingKind]
    """What every device of the family measures."""
    version: ClassVar[str] = "1"
    """Parse-rule version: bump it when a fix changes what the same frames give, so stored
    transfers say which rules derived their readings (`edge-gateway reparse`)."""

    @abstractmethod
    def match(self, advertisement: Advertisement) -> DeviceMatch | None:
        """Claim a device from its advertisement.

        Args:
            advertisement: What the scanner heard.

        Returns:
            The match, or None if this driver does not handle the device.
        """

    @abstractmethod
    async def collect(self, link: GattLink, cursor: Cursor, context: CollectContext) -> Transfer:
        """Read every record newer than `cursor` over a connected link.

        Must not delete or acknowledge anything on the device (the gateway has not persisted
        yet). Leaves disconnecting to the caller. A link drop is never raised: the result then
        has whatever arrived before the drop (possibly nothing), with the cursor left where it
        is safe to resume from.

        Args:
            link: A connected link to the device.
            cursor: The cursor stored with the previous transfer (`Cursor()` the first time).
            context: Consent codes, clock and policy for this transfer.

        Returns:
            The readings and the new cursor; `complete=False` if the link dropped mid-way.

        Raises:
            PairingError: The device needs bonding and it failed.
            ProtocolError: The device answered with an error the driver cannot work around.
            LinkTimeoutError: The device stopped answering (link still up).
        """
