"""SQLModel tables (mirrors the schema that `migrations` builds; a test keeps them in step).

No `from __future__ import annotations` here: SQLModel reads the annotations at runtime.
Instants are aware UTC (`UtcDateTime`); JSON columns are text written by the store.
Rows never leave `gateway.store`: callers get `drivers.readings` values or store dataclasses.
"""

from datetime import datetime

from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

from gateway.store.types import UtcDateTime


class DeviceRow(SQLModel, table=True):
    """A device the gateway has seen, with its bond state and read cursors."""

    __tablename__ = "device"

    address: str = Field(primary_key=True)
    name: str | None = None
    brand: str | None = None
    model: str | None = None
    kind: str | None = None
    provider: str | None = None
    bond_state: str = "none"
    last_sequence: int | None = None
    cursor_json: str | None = None
    consent_json: str = "{}"
    battery_percent: int | None = None
    clock_skew_s: float | None = None
    last_seen_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class ReadingRow(SQLModel, table=True):
    """One reading exactly as the device gave it, plus attribution and upload state."""

    __tablename__ = "reading"
    __table_args__ = (Index("ix_reading_device_kind_change", "device", "kind", "change_seq"),)

    pk: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True)
    kind: str = Field(index=True)
    device: str = Field(index=True)
    provider: str
    received_at: datetime = Field(sa_type=UtcDateTime)
    dt_year: int | None = None
    dt_month: int | None = None
    dt_day: int | None = None
    dt_hour: int | None = None
    dt_minute: int | None = None
    dt_second: int | None = None
    dt_offset_minutes: int | None = None
    start_date: datetime = Field(sa_type=UtcDateTime, index=True)
    time_zone: str
    clock_skew_s: float | None = None
    sequence: int | None = None
    user_index: int | None = None
    flags_json: str = "[]"
    values_json: str = "{}"
    user_id: str | None = Field(default=None, index=True)
    attributed_by: str | None = None
    upload_provider: str
    state: str
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)
    change_seq: int = Field(unique=True)
    transfer_pk: int | None = None  # the recorded transfer that first stored it (v11)
    withdrawn_at: datetime | None = Field(default=None, sa_type=UtcDateTime)  # reparse (v11)


class UserRow(SQLModel, table=True):
    """A Junction user the gateway uploads for."""

    __tablename__ = "app_user"

    user_id: str = Field(primary_key=True)
    name: str | None = None
    created_at: datetime = Field(sa_type=UtcDateTime)
    # The clinic's own identifier (Junction's client_user_id), unique when set (v10).
    client_user_id: str | None = None


class BindingRow(SQLModel, table=True):
    """Device (and optionally one of its user slots) → Junction user."""

    __tablename__ = "binding"

    id: int | None = Field(default=None, primary_key=True)
    device: str = Field(index=True)
    device_user: int | None = None
    user_id: str = Field(foreign_key="app_user.user_id")
    provider: str | None = None
    created_at: datetime = Field(sa_type=UtcDateTime)


class KioskSessionRow(SQLModel, table=True):
    """A person at the kiosk: readings received meanwhile are theirs."""

    __tablename__ = "kiosk_session"

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(foreign_key="app_user.user_id")
    device: str | None = None
    started_at: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class ApiTokenRow(SQLModel, table=True):
    """A local-API token, kept only as its SHA-256."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True)
    scope: str
    label: str | None = None
    created_at: datetime = Field(sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class OutboxRow(SQLModel, table=True):
    """One reading queued for upload for one user (schema version 2)."""

    __tablename__ = "outbox_item"
    __table_args__ = (
        Index(
            "ix_outbox_queue",
            "user_id",
            "resource",
            "enqueued_at",
            "reading_id",
            "state",
            sqlite_where=text("state = 'queued'"),
        ),
        Index(
            "ix_outbox_group",
            "user_id",
            "resource",
            "provider",
            "stage",
            "window_start",
            "window_end",
            "state",
            sqlite_where=text("state = 'queued'"),
        ),
        Index(
            "ix_outbox_pending",
            "user_id",
            "resource",
            sqlite_where=text(
                "state = 'queued' AND (claim_id IS NOT NULL OR not_before IS NOT NULL)"
            ),
        ),
    )

    pk: int | None = Field(default=None, primary_key=True)
    reading_id: str = Field(unique=True, foreign_key="reading.id")
    user_id: str
    resource: str
    provider: str
    stage: str
    window_start: datetime | None = Field(default=None, sa_type=UtcDateTime)
    window_end: datetime | None = Field(default=None, sa_type=UtcDateTime)
    enqueued_at: datetime = Field(sa_type=UtcDateTime)
    attempts: int = 0
    state: str = "queued"
    not_before: datetime | None = Field(default=None, sa_type=UtcDateTime)
    claim_id: str | None = None
    lease_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_error: str | None = None
    delivered_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    dead_status: int | None = None
    dead_body: str | None = None
    dead_reason: str | None = None
    dead_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class OutboxDeliveryRow(SQLModel, table=True):
    """A 2xx recorded for an outbox item, not yet settled into its rows (schema version 12).

    Written and settled with plain SQL by `gateway.store.outbox` (WITHOUT ROWID, keyed by
    the reading id); declared here so the models describe the whole schema.
    """

    __tablename__ = "outbox_delivery"

    reading_id: str = Field(primary_key=True)
    delivered_at: datetime = Field(sa_type=UtcDateTime)


class ChangeCatchUpRow(SQLModel, table=True):
    """A settled delivery whose reading waits for its place in the change order (v13).

    Appended when a delivery is settled and deleted when the reading takes the next
    `change_seq` (`gateway.store.outbox`, plain SQL), oldest first (`pk`).
    """

    __tablename__ = "change_catch_up"

    pk: int | None = Field(default=None, primary_key=True)
    reading_id: str


class OutboxEpochRow(SQLModel, table=True):
    """One row: moved by triggers on every change of an outbox row but inserts (v14).

    `gateway.store.queue_counts` checks its queued counts against it; plain SQL only.
    """

    __tablename__ = "outbox_epoch"

    id: int | None = Field(default=None, primary_key=True)
    n: int


class UploadAttemptRow(SQLModel, table=True):
    """One settled claim: what was tried for which items and how it ended (schema version 2)."""

    __tablename__ = "upload_attempt"

    id: int | None = Field(default=None, primary_key=True)
    claim_id: str = Field(index=True)
    user_id: str
    resource: str
    outcome: str
    count: int
    status_code: int | None = None
    error: str | None = None
    at: datetime = Field(sa_type=UtcDateTime)


class UserHoldRow(SQLModel, table=True):
    """One reason not to upload a user's items (schema version 2)."""

    __tablename__ = "user_hold"

    user_id: str = Field(primary_key=True)
    hold: str = Field(primary_key=True)


class SyncProgressRow(SQLModel, table=True):
    """The latest upload status of one (user, resource) stream (schema version 2)."""

    __tablename__ = "sync_progress"

    user_id: str = Field(primary_key=True)
    resource: str = Field(primary_key=True)
    status: str
    at: datetime = Field(sa_type=UtcDateTime)
    stage: str | None = None
    count: int = 0
    delivered_total: int = 0
    error: str | None = None


class JunctionSessionRow(SQLModel, table=True):
    """A user's Junction session from a Sign-In Token (schema version 3). Secrets: never log."""

    __tablename__ = "junction_session"

    user_id: str = Field(primary_key=True)
    access_token: str
    refresh_token: str
    expires_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class MqttCursorRow(SQLModel, table=True):
    """How far (in reading change order) an MQTT sink has looked (schema version 6)."""

    __tablename__ = "mqtt_cursor"

    name: str = Field(primary_key=True)
    change_seq: int
    updated_at: datetime = Field(sa_type=UtcDateTime)


class MqttPublishedRow(SQLModel, table=True):
    """A reading the MQTT sink has published, and a digest of what it sent (schema version 6)."""

    __tablename__ = "mqtt_published"
    __table_args__ = (Index("ix_mqtt_published_node", "node", "kind", "start_date"),)

    reading_id: str = Field(primary_key=True)
    node: str
    kind: str
    start_date: datetime = Field(sa_type=UtcDateTime)
    digest: str
    published_at: datetime = Field(sa_type=UtcDateTime)


class DeviceFailureRow(SQLModel, table=True):
    """The last failed read of a device, for `edge-gateway status` (schema version 7).

    Written and read with plain SQL by `gateway.store.device_failures`; declared here so the
    models describe the whole schema.
    """

    __tablename__ = "device_failure"

    address: str = Field(primary_key=True)
    name: str | None = None
    kind: str | None = None
    brand: str | None = None
    error: str
    failures: int
    failed_at: str  # ISO 8601 UTC, as written by `record_failure`


class JunctionLinkRow(SQLModel, table=True):
    """A manual-provider connection the gateway made at Junction (schema version 8)."""

    __tablename__ = "junction_link"

    user_id: str = Field(primary_key=True)
    provider: str = Field(primary_key=True)
    linked_at: datetime = Field(sa_type=UtcDateTime)


class TransferRow(SQLModel, table=True):
    """One recorded connection to a device: who read it, how, from where (schema version 11).

    `context_json` holds what a playback needs to run the driver again: the match, the cursor
    the transfer started from, the historical flag, the zone, the advertisement and the GATT
    shape the driver saw (`drivers.recording.GattShape`). Health data: same care as readings.
    """

    __tablename__ = "transfer"

    pk: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True)
    device: str
    connection_id: str
    driver: str
    driver_version: str
    started_at: datetime = Field(sa_type=UtcDateTime)
    context_json: str = "{}"
    updated_at: datetime = Field(sa_type=UtcDateTime)


class FrameRow(SQLModel, table=True):
    """One GATT value of a recorded transfer (schema version 11; `drivers.recording.Frame`).

    `characteristic` is short ("2a18") for SIG UUIDs; `at` is Unix seconds (UTC), `mono_s`
    seconds since the connection started. Health data: never logged above DEBUG.
    """

    __tablename__ = "frame"

    transfer_pk: int = Field(primary_key=True, foreign_key="transfer.pk")
    seq: int = Field(primary_key=True)
    direction: str
    characteristic: str
    data: bytes
    at: float
    mono_s: float
