"""A snapshot of the gateway for `edge-gateway status`: store contents plus the live process.

`collect_status` reads the database in `data_dir` without migrating or writing it (a
missing database is `NoDatabaseError`, not created) and asks the running gateway's
`/v1/health` over loopback. The snapshot holds counts, times, addresses and states only:
never a measured value.
"""

import asyncio
import dataclasses
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import col

from drivers.devices.brands import BRANDS
from gateway.api.queries import device_stats
from gateway.config import Settings
from gateway.health_probe import HealthProbe, probe_health
from gateway.store import (
    DATABASE_FILENAME,
    Database,
    ForeignDatabaseError,
    SchemaTooNewError,
    StoreError,
    devices,
)
from gateway.store.db import create_sqlite_engine, translate_error
from gateway.store.device_failures import DeviceFailure, list_failures
from gateway.store.migrations import APPLICATION_ID, LATEST_VERSION
from gateway.store.models import ReadingRow
from gateway.store.outbox import SqliteOutbox
from gateway.store.withdrawn import WithdrawnReading, list_withdrawn
from sync.junction.providers import device_upload_slug


class NoDatabaseError(StoreError):
    """The data directory holds no gateway database yet."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path}: no database yet (nothing has run with this data_dir); run "
            "`edge-gateway run` first, or pass the --config the gateway runs with",
            path,
        )


class SchemaTooOldError(StoreError):
    """The database was written by an older gateway and is not migrated yet."""

    def __init__(self, path: Path, found: int) -> None:
        super().__init__(
            f"{path}: database schema version {found} is older than this gateway's "
            f"({LATEST_VERSION}); run `edge-gateway run` once to migrate it",
            path,
        )


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """One device as the store knows it (no measured values).

    Attributes:
        address: Bluetooth address.
        name: Advertised name.
        kind: Reading kind it produces.
        brand: Manufacturer.
        bond_state: Pairing state (none, bonded, failed).
        last_seen_at: Last transfer or advertisement (UTC).
        battery_percent: Last battery level.
        clock_skew_s: Device clock minus gateway clock, last measured.
        last_sequence: Last record sequence stored.
        readings: Readings stored from it.
        uploads_as: Junction provider slug its readings upload as (``manual``: no Junction
            brand, or a scale whose brand Junction lists no scales for), None if unknown.
    """

    address: str
    name: str | None
    kind: str | None
    brand: str | None
    bond_state: str
    last_seen_at: datetime | None
    battery_percent: int | None
    clock_skew_s: float | None
    last_sequence: int | None
    readings: int
    uploads_as: str | None = None


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """The upload state of one (user, resource) stream.

    Attributes:
        user_id: Junction user.
        resource: glucose, blood_pressure or body.
        queued: Items waiting for upload.
        due: Of those, items the uploader may send now (not backing off, not claimed).
        dead_letters: Items Junction refused for good.
        status: Latest progress status (the SDK's names), if any.
        status_at: When that status was recorded (UTC).
        delivered_total: Items of the stream delivered so far.
        error: One line for an error status, else None.
    """

    user_id: str
    resource: str
    queued: int = 0
    due: int = 0
    dead_letters: int = 0
    status: str | None = None
    status_at: datetime | None = None
    delivered_total: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StatusReport:
    """Everything `edge-gateway status` shows.

    Attributes:
        data_dir: The configured data directory.
        database: The database file read.
        adapter: The configured Bluetooth adapter.
        gateway: What the running gateway's `/v1/health` said.
        devices: Known devices, by address.
        failures: Devices whose last read failed (seen, maybe never read), with the error.
        readings: Readings stored per kind, then per state.
        streams: Upload streams, by user then resource.
        holds: Per user, why uploads are held (paused, reauthentication_required …).
        withdrawn: Readings `edge-gateway reparse` withdrew (no longer derived from their
            frames), newest first.
        collected_at: When the snapshot was taken (UTC).
    """

    data_dir: Path
    database: Path
    adapter: str
    gateway: HealthProbe
    devices: list[DeviceStatus] = field(default_factory=list)
    failures: list[DeviceFailure] = field(default_factory=list)
    readings: dict[str, dict[str, int]] = field(default_factory=dict)
    streams: list[StreamStatus] = field(default_factory=list)
    holds: dict[str, list[str]] = field(default_factory=dict)
    withdrawn: list[WithdrawnReading] = field(default_factory=list)
    collected_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def dead_letters(self) -> int:
        """Dead letters over every stream."""
        return sum(s.dead_letters for s in self.streams)

    @property
    def last_sync_at(self) -> datetime | None:
        """The latest upload progress of any stream (UTC), or None if nothing was tried."""
        latest = self.last_sync
        return None if latest is None else latest.status_at

    @property
    def last_sync(self) -> StreamStatus | None:
        """The stream whose upload progress is the latest (its status says how it went)."""
        tried = [s for s in self.streams if s.status_at is not None]
        return max(
            tried, key=lambda s: s.status_at or datetime.min.replace(tzinfo=UTC), default=None
        )


def open_existing(path: Path) -> Database:
    """Open an existing store for reading, without creating, migrating or checking it.

    Raises:
        NoDatabaseError: There is no database file (or it is empty).
        SchemaTooOldError: An older gateway wrote it and it was not migrated yet.
        StoreError: It is foreign, too new, corrupt or cannot be opened.
    """
    if not path.is_file() or path.stat().st_size == 0:
        raise NoDatabaseError(path)
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        error = translate_error(exc, path)
        if error is None:
            raise
        raise error from exc
    if app_id not in (0, APPLICATION_ID) or (version == 0 and tables):
        raise ForeignDatabaseError(path, app_id)
    if version == 0:
        raise NoDatabaseError(path)  # created, never migrated: nothing in it
    if version > LATEST_VERSION:
        raise SchemaTooNewError(path, version, LATEST_VERSION)
    if version < LATEST_VERSION:
        raise SchemaTooOldError(path, version)
    return Database(path, create_sqlite_engine(path))


def collect_status(settings: Settings, *, probe: bool = True) -> StatusReport:
    """Take the snapshot: the store (read only) and, if `probe`, the running gateway.

    Raises:
        StoreError: The database is missing or cannot be read (see `open_existing`).
    """
    path = settings.data_dir / DATABASE_FILENAME
    db = open_existing(path)
    try:
        found = devices.list_devices(db)
        failures = list_failures(db)
        stats = device_stats(db)
        counts = reading_state_counts(db)
        withdrawn = list_withdrawn(db)
        streams, holds = asyncio.run(
            _outbox_state(SqliteOutbox(db, zone=settings.zone, maintain=False))
        )
    finally:
        db.close()
    overrides = {b.device: b.provider for b in settings.bindings if b.provider}
    api = settings.api
    gateway = probe_health(api.host, api.port) if probe else HealthProbe(url="", running=False)
    readings: dict[str, dict[str, int]] = {}
    for (kind, state), count in sorted(counts.items()):
        readings.setdefault(kind, {})[state] = count
    return StatusReport(
        data_dir=settings.data_dir,
        database=path,
        adapter=settings.ble.adapter,
        gateway=gateway,
        devices=[
            DeviceStatus(
                address=d.address,
                name=d.name,
                kind=d.kind,
                brand=brand_name(d.brand),
                bond_state=d.bond_state.value,
                last_seen_at=d.last_seen_at,
                battery_percent=d.battery_percent,
                clock_skew_s=d.clock_skew_s,
                last_sequence=d.last_sequence,
                readings=stats[d.address].readings if d.address in stats else 0,
                uploads_as=device_upload_slug(
                    d.kind,
                    overrides.get(d.address.upper()) or d.provider,
                    settings.junction.scale_provider,
                ),
            )
            for d in found
        ],
        failures=[
            f if f.brand is None else dataclasses.replace(f, brand=brand_name(f.brand))
            for f in failures
        ],
        readings=readings,
        streams=streams,
        holds=holds,
        withdrawn=withdrawn,
    )


def brand_name(stored: str | None) -> str | None:
    """The brand as the drivers name it ("Omron"): one name everywhere.

    The store may hold a Device Information manufacturer string ("OMRON HEALTHCARE").
    """
    if stored is None:
        return None
    for brand in BRANDS:
        if brand.name.lower() == stored.lower() or brand.matches_manufacturer(stored):
            return brand.name
    return stored


def reading_state_counts(db: Database) -> dict[tuple[str, str], int]:
    """Readings stored per (kind, state); one grouped scan (a candidate for `gateway.store`)."""
    kind, state = col(ReadingRow.kind), col(ReadingRow.state)
    query = sa.select(kind, state, sa.func.count()).group_by(kind, state)
    with db.read() as session:
        rows = session.execute(query).tuples().all()
    return {(str(k), str(s)): int(n) for k, s, n in rows}


async def _outbox_state(
    outbox: SqliteOutbox,
) -> tuple[list[StreamStatus], dict[str, list[str]]]:
    now = datetime.now(UTC)
    queued = {(s.user_id, s.resource.value): s for s in await outbox.streams(now)}
    progress = {(p.user_id, p.resource.value): p for p in await outbox.progress()}
    dead = Counter((d.item.user_id, d.item.resource.value) for d in await outbox.dead_letters())
    streams = []
    for key in sorted(queued.keys() | progress.keys() | dead.keys()):
        q, p = queued.get(key), progress.get(key)
        streams.append(
            StreamStatus(
                user_id=key[0],
                resource=key[1],
                queued=q.queued if q else 0,
                due=q.due if q else 0,
                dead_letters=dead.get(key, 0),
                status=p.status.value if p else None,
                status_at=p.at if p else None,
                delivered_total=p.delivered_total if p else 0,
                error=p.error if p else None,
            )
        )
    holds = {user: sorted(h.value for h in found) for user, found in (await outbox.holds()).items()}
    return streams, dict(sorted(holds.items()))
