"""Recorded transfers and their GATT frames (schema version 11).

A transfer's frames are written by `save_transfer` inside the same transaction as the
readings derived from them (`FrameBatch`), so a reading is never stored without the bytes it
came from, and readings first stored by a transfer note its `transfer_pk`. Frames are kept as
long as the readings (a transfer goes once none of its readings is left and it is older than
the readings' keep window) and can be pruned sooner (`[store] frame_retention_days`).

Frames hold health data: this module logs counts only.
"""

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from drivers.recording import Direction, Frame, full_uuid, short_uuid
from gateway.store.db import Database, dbapi_cursor
from gateway.store.models import FrameRow, TransferRow
from gateway.store.types import utc_text

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TransferHeader:
    """Who read a device, how and when: what a playback needs besides the frames.

    Attributes:
        id: Transfer id (hex UUID), unique.
        device: Device address, upper case.
        connection_id: The recorded connection (`FrameRecorder.connection_id`).
        driver: The driver's `Driver.name`.
        driver_version: The parser/driver version that derived the readings
            (``"<package version>/<Driver.version>"``).
        started_at: When the connection was wrapped (aware UTC).
        context: JSON-able playback context (match, cursor, historical, zone, advertisement,
            GATT shape).
    """

    id: str
    device: str
    connection_id: str
    driver: str
    driver_version: str
    started_at: datetime
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FrameBatch:
    """Frames to store with one commit of a transfer (the header is upserted each time).

    Attributes:
        header: The transfer.
        frames: Frames not stored yet.
        always: Store them even if the commit stores no new reading (otherwise a re-read of
            known readings keeps no frames: the transfer that first stored them has them).
    """

    header: TransferHeader
    frames: Sequence[Frame]
    always: bool = False


@dataclass(frozen=True, slots=True)
class StoredTransfer:
    """A recorded transfer as stored (`pk` is what readings' `transfer_pk` refers to)."""

    pk: int
    header: TransferHeader


def store_frames(session: Session, batch: FrameBatch, *, now: datetime) -> int:
    """Upsert the transfer and insert its frames, inside the caller's write transaction.

    Returns:
        The transfer's `pk`.
    """
    header = batch.header
    context = json.dumps(header.context, sort_keys=True, separators=(",", ":"))
    # The DB-API cursor, as `save_transfer` uses for readings: this runs with every commit
    # of a transfer, and SQLAlchemy's per-statement overhead was most of its cost.
    cur = dbapi_cursor(session)
    found = cur.execute(
        "SELECT pk, context_json FROM transfer WHERE id = ?", (header.id,)
    ).fetchone()
    stamp = utc_text(now)
    if found is None:
        cur.execute(
            "INSERT INTO transfer (id, device, connection_id, driver, driver_version,"
            " started_at, context_json, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                header.id,
                header.device.upper(),
                header.connection_id,
                header.driver,
                header.driver_version,
                utc_text(header.started_at),
                context,
                stamp,
            ),
        )
        pk = int(cur.lastrowid or 0)
    else:
        pk = int(found[0])
        if found[1] != context:  # the GATT shape grew; unchanged: no page rewritten
            cur.execute(
                "UPDATE transfer SET context_json = ?, updated_at = ? WHERE pk = ?",
                (context, stamp, pk),
            )
    if batch.frames:
        cur.executemany(
            # OR IGNORE: a retried commit may repeat frames.
            "INSERT OR IGNORE INTO frame"
            " (transfer_pk, seq, direction, characteristic, data, at, mono_s)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    pk,
                    f.seq,
                    f.direction.value,
                    short_uuid(f.characteristic) if f.characteristic else "",
                    f.data,
                    f.at.timestamp(),
                    round(f.mono_s, 6),
                )
                for f in batch.frames
            ],
        )
    return pk


def list_transfers(
    db: Database, *, device: str | None = None, since: datetime | None = None
) -> list[StoredTransfer]:
    """Recorded transfers, oldest first.

    Args:
        db: The database.
        device: Only this device's transfers.
        since: Only transfers started at or after this instant (aware).
    """
    query = select(TransferRow).order_by(col(TransferRow.started_at), col(TransferRow.pk))
    if device is not None:
        query = query.where(col(TransferRow.device) == device.upper())
    if since is not None:
        query = query.where(col(TransferRow.started_at) >= since)
    with db.read() as session:
        rows = list(session.exec(query))
    return [
        StoredTransfer(
            pk=row.pk or 0,
            header=TransferHeader(
                id=row.id,
                device=row.device,
                connection_id=row.connection_id,
                driver=row.driver,
                driver_version=row.driver_version,
                started_at=row.started_at,
                context=json.loads(row.context_json),
            ),
        )
        for row in rows
    ]


def load_frames(db: Database, transfer_pk: int) -> list[Frame]:
    """A transfer's frames in conversation order."""
    with db.read() as session:
        rows = list(
            session.exec(
                select(FrameRow)
                .where(FrameRow.transfer_pk == transfer_pk)
                .order_by(col(FrameRow.seq))
            )
        )
    return [
        Frame(
            seq=row.seq,
            direction=Direction(row.direction),
            characteristic=full_uuid(row.characteristic) if row.characteristic else "",
            data=bytes(row.data),
            at=datetime.fromtimestamp(row.at, UTC),
            mono_s=row.mono_s,
        )
        for row in rows
    ]


def prune_frames(
    db: Database,
    *,
    keep_days: float,
    frame_days: float | None = None,
    now: datetime | None = None,
) -> int:
    """Delete recorded transfers (with their frames) that are no longer needed.

    A transfer goes when it started more than `keep_days` ago (the readings' keep window)
    and no reading it first stored is left; or, if `frame_days` is set, when it started more
    than `frame_days` ago, whatever is left of its readings.

    Returns:
        How many transfers were deleted.
    """
    now = now or datetime.now(UTC)
    keep_cutoff = now - timedelta(days=keep_days)
    with db.write() as session:
        conn = session.connection()
        # Plain SQL: the correlated NOT EXISTS uses ix_reading_transfer.
        found = conn.execute(
            text(
                "SELECT pk FROM transfer WHERE started_at < :cutoff AND NOT EXISTS"
                " (SELECT 1 FROM reading WHERE reading.transfer_pk = transfer.pk)"
            ),
            {"cutoff": utc_text(keep_cutoff)},
        )
        pks: set[int] = set(found.scalars().all())
        if frame_days is not None:
            frame_cutoff = now - timedelta(days=frame_days)
            old = conn.execute(
                text("SELECT pk FROM transfer WHERE started_at < :cutoff"),
                {"cutoff": utc_text(frame_cutoff)},
            )
            pks.update(old.scalars().all())
        ordered = sorted(pks)
        for start in range(0, len(ordered), 500):
            chunk = ordered[start : start + 500]
            marks = ",".join(str(int(pk)) for pk in chunk)
            conn.exec_driver_sql(f"DELETE FROM frame WHERE transfer_pk IN ({marks})")  # noqa: S608 - ints
            conn.exec_driver_sql(
                f"UPDATE reading SET transfer_pk = NULL WHERE transfer_pk IN ({marks})"  # noqa: S608
            )
            conn.exec_driver_sql(f"DELETE FROM transfer WHERE pk IN ({marks})")  # noqa: S608
    if ordered:
        _LOGGER.info("retention: pruned %d recorded transfer(s) and their frames", len(ordered))
    return len(ordered)


def frame_count(db: Database) -> int:
    """How many frames are stored (status, bench)."""
    with db.read() as session:
        return int(session.connection().exec_driver_sql("SELECT count(*) FROM frame").scalar_one())
