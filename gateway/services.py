"""What the API needs from the running gateway, bundled for `gateway.app.create_app`.

`edge-gateway run` builds a `Services` with the real runtime parts (the collector's radar and
pairing, the uploader as `SyncControl`); tests and `edge-gateway serve-api` use the in-memory
and null implementations below. The API never imports the collector or the uploader: it
sees only these Protocols.
"""

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from pydantic import SecretStr

from gateway.config import Settings
from gateway.events import DEVICE_LOST, DEVICE_SEEN, EventBus, next_epoch
from gateway.metrics import GatewayMetrics
from gateway.store import DATABASE_FILENAME, Database, open_database
from gateway.store.outbox import SqliteOutbox
from sync.outbox import Outbox, UserHold


class NextStep(StrEnum):
    """What the person at the kiosk should do with a device in range."""

    PAIR = "pair"  # enter the passkey the device shows
    PRESS_BUTTON = "press_button"  # press the meter's Bluetooth button
    MEASURE = "measure"  # start a measurement on the cuff
    STEP_ON = "step_on"  # step on the scale
    WAIT = "wait"  # the gateway is reading the device
    DONE = "done"  # nothing to do


@dataclass(frozen=True, slots=True)
class RadarDevice:
    """A device the radio sees now (or saw recently).

    Attributes:
        address: Bluetooth address (upper case).
        name: Advertised name, if any.
        kind: Reading kind its driver produces (``glucose``, ``blood_pressure``, ``body``).
        rssi: Last signal strength (dBm).
        in_range: Advertising recently.
        connected: A link is up now.
        needs_passkey: The device asked for a passkey and is not bonded yet.
        seen_at: Last advertisement (UTC).
    """

    address: str
    name: str | None = None
    kind: str | None = None
    rssi: int | None = None
    in_range: bool = True
    connected: bool = False
    needs_passkey: bool = False
    seen_at: datetime | None = None


class DeviceRadar(Protocol):
    """Devices in radio range, as the collector sees them."""

    def snapshot(self) -> Sequence[RadarDevice]:
        """Every device seen recently; in-memory, must not block."""
        ...


@dataclass(frozen=True, slots=True)
class PairingResult:
    """How a pairing attempt ended.

    Attributes:
        paired: Bonded now.
        message: One line for the person (e.g. "wrong passkey; check the device's display").
    """

    paired: bool
    message: str


class PairingUnavailableError(Exception):
    """No Bluetooth runtime to pair with (the API runs alone)."""


class PairingControl(Protocol):
    """Bonding with a device (the collector's pairing agent)."""

    async def pair(self, address: str, passkey: int | None) -> PairingResult:
        """Pair with `address`, answering a passkey request with `passkey`.

        Args:
            address: Bluetooth address (upper case).
            passkey: Six-digit passkey (0-999999), or None for Just Works.

        Returns:
            The outcome; the API records the bond state in the store.

        Raises:
            PairingUnavailableError: There is no radio runtime.
        """
        ...

    async def remove_bond(self, address: str) -> None:
        """Remove the adapter's bond with `address` (no error if there is none)."""
        ...


class SyncUnavailableError(Exception):
    """No uploader runs (the API runs alone): sign-in cannot be exchanged now."""


class SyncControl(Protocol):
    """The uploader's control surface (`sync.uploader.Uploader` satisfies it)."""

    def wake(self) -> None:
        """Look at the outbox now (trigger an upload)."""
        ...

    async def pause(self, user_id: str) -> None:
        """Stop uploads for a user; the queue is kept."""
        ...

    async def resume(self, user_id: str) -> None:
        """Undo `pause`."""
        ...

    async def sign_in(self, user_id: str, sign_in_token: SecretStr) -> None:
        """Exchange a Junction Sign-In Token for the user's session.

        Raises:
            ValueError: The token is malformed.
            SyncError: Junction refused it or could not be reached.
            SyncUnavailableError: No uploader runs.
        """
        ...


# ---------------------------------------------------------------- in-memory / null parts


class MemoryRadar:
    """`DeviceRadar` fed by hand (tests, `serve-api`); publishes device events if given a bus."""

    def __init__(self, events: EventBus | None = None) -> None:
        self._devices: dict[str, RadarDevice] = {}
        self._events = events

    def snapshot(self) -> Sequence[RadarDevice]:
        """See `DeviceRadar.snapshot`."""
        return sorted(self._devices.values(), key=lambda d: d.address)

    def update(self, device: RadarDevice) -> None:
        """Record a sighting (replacing the previous one).

        `gateway.device.seen` is published when something a person acts on changed (new
        device, name, kind, link, passkey needed), not for every advertisement: RSSI
        jitter alone would flood the stream.
        """
        previous = self._devices.get(device.address)
        self._devices[device.address] = device
        unchanged = previous is not None and (
            previous.name,
            previous.kind,
            previous.connected,
            previous.needs_passkey,
            previous.in_range,
        ) == (device.name, device.kind, device.connected, device.needs_passkey, device.in_range)
        if self._events is not None and not unchanged:
            self._events.publish(
                DEVICE_SEEN,
                None,
                {
                    "address": device.address,
                    "name": device.name,
                    "kind": device.kind,
                    "rssi": device.rssi,
                    "connected": device.connected,
                    "needs_passkey": device.needs_passkey,
                },
            )

    def remove(self, address: str) -> None:
        """The device left range."""
        if self._devices.pop(address.upper(), None) is not None and self._events is not None:
            self._events.publish(DEVICE_LOST, None, {"address": address.upper()})


class ScriptedPairing:
    """`PairingControl` that accepts the passkeys it was given (tests, demos)."""

    def __init__(self, passkeys: Mapping[str, int | None] | None = None) -> None:
        self.passkeys = {k.upper(): v for k, v in (passkeys or {}).items()}
        self.bonded: set[str] = set()

    async def pair(self, address: str, passkey: int | None) -> PairingResult:
        """See `PairingControl.pair`."""
        await asyncio.sleep(0)
        if address not in self.passkeys:
            return PairingResult(False, f"{address} is not in range; wake the device and retry")
        expected = self.passkeys[address]
        if expected is not None and passkey != expected:
            return PairingResult(False, f"{address} refused the passkey; check its display")
        self.bonded.add(address)
        return PairingResult(True, f"{address} paired")

    async def remove_bond(self, address: str) -> None:
        """See `PairingControl.remove_bond`."""
        await asyncio.sleep(0)
        self.bonded.discard(address)


class NoPairing:
    """`PairingControl` when no radio runtime runs."""

    async def pair(self, address: str, passkey: int | None) -> PairingResult:
        """Always unavailable."""
        del passkey
        msg = f"{address}: no Bluetooth runtime here; pair through `edge-gateway run`"
        raise PairingUnavailableError(msg)

    async def remove_bond(self, address: str) -> None:
        """Nothing to remove."""
        del address


class OutboxSyncControl:
    """`SyncControl` without an uploader: pause/resume set the outbox holds it would set."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox
        self.wakes = 0

    def wake(self) -> None:
        """Counted only; the running uploader will look at the outbox on its own."""
        self.wakes += 1

    async def pause(self, user_id: str) -> None:
        """Hold the user's uploads."""
        await self._outbox.set_hold(user_id, UserHold.PAUSED, held=True)

    async def resume(self, user_id: str) -> None:
        """Lift the pause hold."""
        await self._outbox.set_hold(user_id, UserHold.PAUSED, held=False)

    async def sign_in(self, user_id: str, sign_in_token: SecretStr) -> None:
        """Unavailable: exchanging a token needs the uploader's Junction client."""
        del sign_in_token
        msg = f"user {user_id}: no uploader runs here; set the token through `edge-gateway run`"
        raise SyncUnavailableError(msg)


# ---------------------------------------------------------------- the bundle


@dataclass(slots=True)
class Services:
    """Everything `create_app` needs.

    Attributes:
        settings: The gateway's settings.
        db: The open store.
        events: The event bus (the collector and uploader publish to it too).
        outbox: The store's outbox (sync progress, dead letters, holds, queue depth).
        radar: Devices in range.
        pairing: Bonding.
        sync: The uploader's controls.
        metrics: Prometheus metrics (the collector and uploader record into it).
        readiness: Named checks for `/v1/health` (e.g. ``"collector": lambda: …``); each
            returns whether that part is ready. The store is always checked.
        started_at: When the gateway started (UTC).
    """

    settings: Settings
    db: Database
    events: EventBus
    outbox: Outbox
    radar: DeviceRadar
    pairing: PairingControl
    sync: SyncControl
    metrics: GatewayMetrics
    readiness: dict[str, Callable[[], bool]] = field(default_factory=dict)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def standalone_services(settings: Settings, *, db: Database | None = None) -> Services:
    """Services for the API alone: the store, a bus, and null/in-memory runtime parts.

    Opens (creating if needed) the database in `settings.data_dir` unless `db` is given.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    database = db or open_database(settings.data_dir / DATABASE_FILENAME)
    events = EventBus(epoch=next_epoch(settings.data_dir))
    outbox = SqliteOutbox(database, zone=settings.zone)
    return Services(
        settings=settings,
        db=database,
        events=events,
        outbox=outbox,
        radar=MemoryRadar(events),
        pairing=NoPairing(),
        sync=OutboxSyncControl(outbox),
        metrics=GatewayMetrics(),
    )
