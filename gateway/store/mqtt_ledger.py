"""The MQTT sink's own progress: a cursor in reading change order and a ledger of what it sent.

The sink reads readings after its cursor in `change_seq` order (the order they were stored or
last changed, see `gateway.store.changes`). A reading changes sequence again when it is
assigned, delivered or dead-lettered; the ledger keeps a digest of what was published for each
reading, so such a change publishes nothing again, while a change the broker's subscribers
must see (new owner, re-parsed values) publishes once more. Cursor and ledger move in one
transaction after the broker acknowledged the messages, so a restart or a broker outage
resumes exactly where the sink stopped.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.sqlite import insert
from sqlmodel import col, select

from gateway.store.db import Database
from gateway.store.enqueue import QUEUED
from gateway.store.models import (
    MqttCursorRow,
    MqttPublishedRow,
    OutboxRow,
    ReadingRow,
    UserRow,
)
from gateway.store.readings import StoredReading, stored_from_row
from gateway.store.types import from_utc_text

# The outbox's state for a reading Junction refused for good (`gateway.store.outbox`).
_DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Change:
    """One reading after the cursor, with what the sink needs to name its owner.

    Attributes:
        change_seq: The reading's position in change order.
        stored: The reading as stored.
        user_name: The display name of its user, if it has one (the binding's label).
    """

    change_seq: int
    stored: StoredReading
    user_name: str | None


@dataclass(frozen=True, slots=True)
class Published:
    """What the sink sent for one reading (a ledger entry).

    Attributes:
        reading_id: The reading's stable id.
        node: The Home Assistant device node the reading went to.
        kind: The reading kind (`ReadingKind` value).
        start_date: The measurement instant (UTC).
        digest: A hash of the messages sent, to tell a real change from a state change.
    """

    reading_id: str
    node: str
    kind: str
    start_date: datetime
    digest: str


def cursor(db: Database, name: str) -> int:
    """The sink's cursor (0 before its first publish)."""
    with db.read() as session:
        row = session.get(MqttCursorRow, name)
        return 0 if row is None else row.change_seq


def changes_after(db: Database, after: int, limit: int) -> list[Change]:
    """Up to `limit` readings with `change_seq > after`, in change order."""
    query = (
        select(ReadingRow, UserRow.name)
        .join(UserRow, col(UserRow.user_id) == col(ReadingRow.user_id), isouter=True)
        .where(col(ReadingRow.change_seq) > after)
        .order_by(col(ReadingRow.change_seq))
        .limit(limit)
    )
    with db.read() as session:
        return [
            Change(row.change_seq, stored_from_row(row), name) for row, name in session.exec(query)
        ]


def digests(db: Database, reading_ids: Sequence[str]) -> dict[str, str]:
    """The ledger's digest for each of `reading_ids` that was published."""
    if not reading_ids:
        return {}
    query = select(MqttPublishedRow.reading_id, MqttPublishedRow.digest).where(
        col(MqttPublishedRow.reading_id).in_(reading_ids)
    )
    with db.read() as session:
        return dict(session.exec(query).all())


def latest_published(db: Database) -> dict[tuple[str, str], datetime]:
    """The newest measurement instant published per (node, kind)."""
    query = select(
        MqttPublishedRow.node, MqttPublishedRow.kind, func.max(MqttPublishedRow.start_date)
    ).group_by(col(MqttPublishedRow.node), col(MqttPublishedRow.kind))
    with db.read() as session:
        rows = session.exec(query).all()
    # max() comes back as the stored text; parse it like the column type does.
    return {(node, kind): _instant(value) for node, kind, value in rows}


def record(db: Database, name: str, published: Sequence[Published], change_seq: int) -> None:
    """Add `published` to the ledger and move the cursor to `change_seq`, in one transaction."""
    now = datetime.now(UTC)
    with db.write() as session:
        for entry in published:
            values = {
                "node": entry.node,
                "kind": entry.kind,
                "start_date": entry.start_date,
                "digest": entry.digest,
                "published_at": now,
            }
            session.exec(
                insert(MqttPublishedRow)
                .values(reading_id=entry.reading_id, **values)
                .on_conflict_do_update(index_elements=["reading_id"], set_=values)
            )
        session.exec(
            insert(MqttCursorRow)
            .values(name=name, change_seq=change_seq, updated_at=now)
            .on_conflict_do_update(
                index_elements=["name"],
                set_={"change_seq": change_seq, "updated_at": now},
                where=col(MqttCursorRow.change_seq) < change_seq,
            )
        )


def upload_counts(db: Database) -> Mapping[str, int]:
    """The upload queue's length and dead letters: ``{"queued": n, "dead": n}``."""
    query = (
        select(OutboxRow.state, func.count())
        .where(col(OutboxRow.state).in_([QUEUED, _DEAD]))
        .group_by(col(OutboxRow.state))
    )
    with db.read() as session:
        counts = dict(session.exec(query).all())
    return {"queued": counts.get(QUEUED, 0), "dead": counts.get(_DEAD, 0)}


def _instant(value: object) -> datetime:
    return value.astimezone(UTC) if isinstance(value, datetime) else from_utc_text(str(value))


@dataclass(frozen=True, slots=True)
class Owner:
    """One distinct (device, person or slot, kind) among stored readings.

    Attributes:
        device: BLE address.
        user_id: The Junction user, if assigned.
        user_name: The user's display name, if any.
        user_index: The device's own user slot, if any.
        kind: The reading kind.
    """

    device: str
    user_id: str | None
    user_name: str | None
    user_index: int | None
    kind: str


def owners(db: Database, up_to: int) -> list[Owner]:
    """Every distinct owner of readings with `change_seq <= up_to` (already handled)."""
    # Five columns: past sqlmodel's typed select() overloads, so SQLAlchemy's own.
    query = (
        sa_select(
            col(ReadingRow.device),
            col(ReadingRow.user_id),
            col(UserRow.name),
            col(ReadingRow.user_index),
            col(ReadingRow.kind),
        )
        .join(UserRow, col(UserRow.user_id) == col(ReadingRow.user_id), isouter=True)
        .where(col(ReadingRow.change_seq) <= up_to)
        .distinct()
    )
    with db.read() as session:
        rows = session.connection().execute(query)
        return [Owner(row[0], row[1], row[2], row[3], row[4]) for row in rows]


def prune(db: Database) -> int:
    """Forget ledger entries of readings the store no longer has (retention pruned them).

    Returns:
        How many entries went.
    """
    gone = (
        ~select(ReadingRow.id)
        .where(col(ReadingRow.id) == col(MqttPublishedRow.reading_id))
        .exists()
    )
    with db.write() as session:
        result = session.exec(delete(MqttPublishedRow).where(gone))
        return int(result.rowcount or 0)
