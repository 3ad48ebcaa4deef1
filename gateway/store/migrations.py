"""Versioned schema migrations, applied in order when the store opens.

The schema version is `PRAGMA user_version`. Each step runs in its own transaction together
with the version bump, so a crash mid-upgrade leaves the previous version intact and the
next start resumes. Steps are append-only: never edit a released step, add a new one.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from gateway.store.db import Database
from gateway.store.errors import SchemaTooNewError

_LOGGER = logging.getLogger(__name__)

# Marks the file as an Edge Gateway store ("EGW1"), visible to `file(1)` and sqlite3.
APPLICATION_ID = 0x45475731


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: the SQL that takes version `version - 1` to `version`."""

    version: int
    description: str
    statements: tuple[str, ...]


_V1 = Migration(
    1,
    "devices, readings, users, bindings, kiosk sessions, API tokens",
    (
        f"PRAGMA application_id = {APPLICATION_ID}",
        """CREATE TABLE device (
            address TEXT PRIMARY KEY NOT NULL,
            name TEXT, brand TEXT, model TEXT, kind TEXT, provider TEXT,
            bond_state TEXT NOT NULL DEFAULT 'none',
            last_sequence INTEGER,
            cursor_json TEXT,
            consent_json TEXT NOT NULL DEFAULT '{}',
            battery_percent INTEGER,
            clock_skew_s REAL,
            last_seen_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        """CREATE TABLE reading (
            pk INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            device TEXT NOT NULL,
            provider TEXT NOT NULL,
            received_at TEXT NOT NULL,
            dt_year INTEGER, dt_month INTEGER, dt_day INTEGER,
            dt_hour INTEGER, dt_minute INTEGER, dt_second INTEGER, dt_offset_minutes INTEGER,
            start_date TEXT NOT NULL,
            time_zone TEXT NOT NULL,
            clock_skew_s REAL,
            sequence INTEGER,
            user_index INTEGER,
            flags_json TEXT NOT NULL DEFAULT '[]',
            values_json TEXT NOT NULL DEFAULT '{}',
            user_id TEXT,
            attributed_by TEXT,
            upload_provider TEXT NOT NULL,
            state TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            change_seq INTEGER NOT NULL UNIQUE
        )""",
        "CREATE INDEX ix_reading_kind ON reading (kind)",
        "CREATE INDEX ix_reading_device ON reading (device)",
        "CREATE INDEX ix_reading_start_date ON reading (start_date)",
        "CREATE INDEX ix_reading_user_id ON reading (user_id)",
        """CREATE TABLE app_user (
            user_id TEXT PRIMARY KEY NOT NULL,
            name TEXT,
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE binding (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            device TEXT NOT NULL,
            device_user INTEGER,
            user_id TEXT NOT NULL REFERENCES app_user (user_id),
            provider TEXT,
            created_at TEXT NOT NULL
        )""",
        # One binding per (device, slot); NULL (every slot) counts as a slot of its own.
        "CREATE UNIQUE INDEX ux_binding_slot ON binding (device, coalesce(device_user, -1))",
        "CREATE INDEX ix_binding_device ON binding (device)",
        """CREATE TABLE kiosk_session (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id TEXT NOT NULL REFERENCES app_user (user_id),
            device TEXT,
            started_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            ended_at TEXT
        )""",
        "CREATE INDEX ix_kiosk_session_expires_at ON kiosk_session (expires_at)",
        """CREATE TABLE api_token (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            token_hash TEXT NOT NULL UNIQUE,
            scope TEXT NOT NULL,
            label TEXT,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        )""",
    ),
)

_V2 = Migration(
    2,
    "upload outbox, attempts, user holds, sync progress; queue readings already assigned",
    (
        """CREATE TABLE outbox_item (
            pk INTEGER PRIMARY KEY AUTOINCREMENT,
            reading_id TEXT NOT NULL UNIQUE REFERENCES reading (id),
            user_id TEXT NOT NULL,
            resource TEXT NOT NULL,
            provider TEXT NOT NULL,
            stage TEXT NOT NULL,
            window_start TEXT,
            window_end TEXT,
            enqueued_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL DEFAULT 'queued',
            not_before TEXT,
            claim_id TEXT,
            lease_until TEXT,
            last_error TEXT,
            delivered_at TEXT,
            dead_status INTEGER,
            dead_body TEXT,
            dead_reason TEXT,
            dead_at TEXT
        )""",
        "CREATE INDEX ix_outbox_stream ON outbox_item (user_id, resource, state, enqueued_at)",
        "CREATE INDEX ix_outbox_claim ON outbox_item (claim_id)",
        "CREATE INDEX ix_outbox_dead ON outbox_item (state, dead_at)",
        """CREATE TABLE upload_attempt (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            claim_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            resource TEXT NOT NULL,
            outcome TEXT NOT NULL,
            count INTEGER NOT NULL,
            status_code INTEGER,
            error TEXT,
            at TEXT NOT NULL
        )""",
        "CREATE INDEX ix_upload_attempt_claim_id ON upload_attempt (claim_id)",
        """CREATE TABLE user_hold (
            user_id TEXT NOT NULL,
            hold TEXT NOT NULL,
            PRIMARY KEY (user_id, hold)
        )""",
        """CREATE TABLE sync_progress (
            user_id TEXT NOT NULL,
            resource TEXT NOT NULL,
            status TEXT NOT NULL,
            at TEXT NOT NULL,
            stage TEXT,
            count INTEGER NOT NULL DEFAULT 0,
            delivered_total INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            PRIMARY KEY (user_id, resource)
        )""",
        # Version 1 marked assigned readings 'queued' with nowhere to queue them: queue them
        # now as daily uploads, in the order they arrived.
        """INSERT INTO outbox_item (reading_id, user_id, resource, provider, stage, enqueued_at)
           SELECT id, user_id, kind, upload_provider, 'daily', updated_at
           FROM reading WHERE user_id IS NOT NULL AND state = 'queued' ORDER BY pk""",
    ),
)

_V3 = Migration(
    3,
    "Junction Sign-In Token sessions per user (access and refresh tokens, rotated atomically)",
    (
        """CREATE TABLE junction_session (
            user_id TEXT PRIMARY KEY NOT NULL,
            access_token TEXT NOT NULL,
            refresh_token TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
    ),
)

_V4 = Migration(
    4,
    "indexes for the local API's filtered pages (device, user, kind in change order; updated_at)",
    (
        "CREATE INDEX ix_reading_device_change ON reading (device, change_seq)",
        "CREATE INDEX ix_reading_user_change ON reading (user_id, change_seq)",
        "CREATE INDEX ix_reading_kind_change ON reading (kind, change_seq)",
        "CREATE INDEX ix_reading_updated_change ON reading (updated_at, change_seq)",
    ),
)

_V5 = Migration(
    5,
    "index for the local API's `source` (provider slug) filter in change order",
    ("CREATE INDEX ix_reading_provider_change ON reading (upload_provider, change_seq)",),
)

_V6 = Migration(
    6,
    "MQTT sink: its change-order cursor and the readings it has published (with what it sent)",
    (
        """CREATE TABLE mqtt_cursor (
            name TEXT PRIMARY KEY NOT NULL,
            change_seq INTEGER NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        """CREATE TABLE mqtt_published (
            reading_id TEXT PRIMARY KEY NOT NULL,
            node TEXT NOT NULL,
            kind TEXT NOT NULL,
            start_date TEXT NOT NULL,
            digest TEXT NOT NULL,
            published_at TEXT NOT NULL
        )""",
        "CREATE INDEX ix_mqtt_published_node ON mqtt_published (node, kind, start_date)",
    ),
)

_V7 = Migration(
    7,
    "the last read failure of each device (for `edge-gateway status`), cleared by a good read",
    (
        """CREATE TABLE device_failure (
            address TEXT PRIMARY KEY NOT NULL,
            name TEXT,
            kind TEXT,
            brand TEXT,
            error TEXT NOT NULL,
            failures INTEGER NOT NULL,
            failed_at TEXT NOT NULL
        )""",
    ),
)

_V8 = Migration(
    8,
    "Junction manual-provider links the gateway made (a restart does not link again)",
    (
        """CREATE TABLE junction_link (
            user_id TEXT NOT NULL,
            provider TEXT NOT NULL,
            linked_at TEXT NOT NULL,
            PRIMARY KEY (user_id, provider)
        )""",
    ),
)

_V9 = Migration(
    9,
    "partial indexes over queued outbox items (claim order, groups, pending, historical);"
    " the local API's device + kind page",
    (
        # Claim order within a stream, queued rows only: the head of a stream and a claim's
        # first `limit` rows are an index walk, not a sort of the stream (issue 18). A query
        # uses it only with the literal ``state = 'queued'`` (a bound parameter does not
        # match a partial index's WHERE), see gateway.store.outbox.
        # (`state` is a column too, so counts need not read the table to check it: SQLite
        # 3.40 does not drop a term its partial index implies.)
        "CREATE INDEX ix_outbox_queue ON outbox_item"
        " (user_id, resource, enqueued_at, reading_id, state) WHERE state = 'queued'",
        # A claim's `remaining` (queued items of its group): an index-only count.
        "CREATE INDEX ix_outbox_group ON outbox_item"
        " (user_id, resource, provider, stage, window_start, window_end, state)"
        " WHERE state = 'queued'",
        # Queued items that are claimed or wait for a retry: few, so `streams()` counts them
        # on this index instead of reading every queued row.
        "CREATE INDEX ix_outbox_pending ON outbox_item (user_id, resource)"
        " WHERE state = 'queued' AND (claim_id IS NOT NULL OR not_before IS NOT NULL)",
        # Queued historical items per stream (`StreamInfo.historical`): an index-only count.
        "CREATE INDEX ix_outbox_historical ON outbox_item (user_id, resource, state, stage)"
        " WHERE state = 'queued' AND stage = 'historical'",
        # The local API's kind + device page (1,000,000 readings, a rare device: 159 ms on
        # (device, change_seq) filtering kind row by row).
        "CREATE INDEX ix_reading_device_kind_change ON reading (device, kind, change_seq)",
    ),
)

_V10 = Migration(
    10,
    "the clinic's own identifier of a user (client_user_id), searched on the kiosk's staff screen",
    (
        "ALTER TABLE app_user ADD COLUMN client_user_id TEXT",
        "CREATE UNIQUE INDEX ux_app_user_client_user_id ON app_user (client_user_id)",
    ),
)

_V11 = Migration(
    11,
    "recorded transfers and their GATT frames; readings note their transfer and a withdrawal",
    (
        """CREATE TABLE transfer (
            pk INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            device TEXT NOT NULL,
            connection_id TEXT NOT NULL,
            driver TEXT NOT NULL,
            driver_version TEXT NOT NULL,
            started_at TEXT NOT NULL,
            context_json TEXT NOT NULL DEFAULT '{}',
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX ix_transfer_device_started ON transfer (device, started_at)",
        "CREATE INDEX ix_transfer_started ON transfer (started_at)",
        # WITHOUT ROWID, keyed by (transfer, position): no rowid and no extra index per frame.
        """CREATE TABLE frame (
            transfer_pk INTEGER NOT NULL REFERENCES transfer (pk) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            direction TEXT NOT NULL,
            characteristic TEXT NOT NULL,
            data BLOB NOT NULL,
            at REAL NOT NULL,
            mono_s REAL NOT NULL,
            PRIMARY KEY (transfer_pk, seq)
        ) WITHOUT ROWID""",
        "ALTER TABLE reading ADD COLUMN transfer_pk INTEGER",
        "ALTER TABLE reading ADD COLUMN withdrawn_at TEXT",
        "CREATE INDEX ix_reading_transfer ON reading (transfer_pk) WHERE transfer_pk IS NOT NULL",
        "CREATE INDEX ix_reading_withdrawn ON reading (withdrawn_at)"
        " WHERE withdrawn_at IS NOT NULL",
    ),
)

_V12 = Migration(
    12,
    "outbox claims live in memory (stored claims cleared, claim and stream indexes dropped);"
    " deliveries are recorded in a narrow table and settled in bulk",
    (
        # Claims are kept in memory (`gateway.store.claims`): the uploader's start-up ends
        # every claim anyway, and writing them cost a claim ~800 WAL pages (issue 18).
        "UPDATE outbox_item SET claim_id = NULL, lease_until = NULL WHERE claim_id IS NOT NULL",
        "DROP INDEX IF EXISTS ix_outbox_claim",
        # (user_id, resource, state, enqueued_at): every query of a stream's queue has used
        # ix_outbox_queue since store v9; keeping it up to date cost every delivery.
        "DROP INDEX IF EXISTS ix_outbox_stream",
        # A 2xx is recorded here (narrow, fsynced) and settled into outbox_item and reading
        # in bulk (`gateway.store.outbox`): rewriting the wide rows per batch was most of a
        # delivery's cost.
        """CREATE TABLE outbox_delivery (
            reading_id TEXT PRIMARY KEY NOT NULL,
            delivered_at TEXT NOT NULL
        ) WITHOUT ROWID""",
    ),
)

_V13 = Migration(
    13,
    "settled deliveries wait in change_catch_up for their place in the change order",
    (
        # Settling a delivery (`gateway.store.outbox`) moves the outbox row and the reading's
        # state; the reading's new place in the change order (its row and seven indexes,
        # about as costly as the rest together) waits here, oldest first, until the
        # uploader is idle. A rowid table and no index: a settle appends.
        """CREATE TABLE change_catch_up (
            pk INTEGER PRIMARY KEY,
            reading_id TEXT NOT NULL
        )""",
    ),
)

_V14 = Migration(
    14,
    "queued outbox counts kept in memory, checked against an epoch that triggers move",
    (
        # `gateway.store.queue_counts`: the outbox keeps its queued counts per stream and
        # group instead of counting every queued row after each batch (O(queued), issue 18),
        # and counts again only when the state they describe changed. Inserts move
        # max(pk) (AUTOINCREMENT); these triggers move `n` on every other change of a row's
        # state or group, by any writer. `n` starts random, so a new file at the same path
        # never looks like the one counted before.
        """CREATE TABLE outbox_epoch (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            n INTEGER NOT NULL
        )""",
        "INSERT INTO outbox_epoch (id, n) VALUES (1, random() / 2)",
        """CREATE TRIGGER tr_outbox_epoch_update AFTER UPDATE OF
            state, user_id, resource, provider, stage, window_start, window_end ON outbox_item
        BEGIN UPDATE outbox_epoch SET n = n + 1 WHERE id = 1; END""",
        """CREATE TRIGGER tr_outbox_epoch_delete AFTER DELETE ON outbox_item
        BEGIN UPDATE outbox_epoch SET n = n + 1 WHERE id = 1; END""",
        # Historical counts come from the group counts now.
        "DROP INDEX IF EXISTS ix_outbox_historical",
    ),
)

MIGRATIONS: tuple[Migration, ...] = (
    _V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9, _V10, _V11, _V12, _V13, _V14,
)  # fmt: skip
LATEST_VERSION = MIGRATIONS[-1].version


def schema_version(conn: Connection) -> int:
    """The schema version recorded in the file (0 for a new, empty file)."""
    return int(conn.exec_driver_sql("PRAGMA user_version").scalar_one())


def migrate(
    db: Database, *, target: int = LATEST_VERSION, steps: Sequence[Migration] = MIGRATIONS
) -> tuple[int, int]:
    """Bring the database up to `target`, one transaction per step.

    Returns:
        The versions before and after.

    Raises:
        SchemaTooNewError: The file has a newer schema than `steps` know.
    """
    with db.read() as session:
        start = schema_version(session.connection())
    if start > steps[-1].version:
        raise SchemaTooNewError(db.path, start, steps[-1].version)
    current = start
    for step in steps:
        if step.version <= current or step.version > target:
            continue
        with db.write_connection() as conn:
            # Re-read under the write lock: another process may have migrated meanwhile.
            current = schema_version(conn)
            if step.version <= current:
                continue
            for statement in step.statements:
                conn.exec_driver_sql(statement)
            conn.exec_driver_sql(f"PRAGMA user_version = {step.version}")
        current = step.version
        _LOGGER.info("%s: schema migrated to version %d (%s)", db.path, current, step.description)
    return start, current
