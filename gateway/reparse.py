"""Re-deriving stored readings from their stored frames with today's drivers.

For each recorded transfer (`gateway.store.frames`) the driver that read it runs again,
offline, over a `drivers.playback.PlaybackLink`, and what it derives now is compared with
what is stored:

- ``unchanged``: same id, same values, flags, kind, device time, sequence and user slot;
- ``changed``: same id, something of the above differs (the fields are named);
- ``new``: an id nothing stored has (e.g. a record the old parser dropped, or a ketone the
  old parser stored as glucose: the ketone is new, the glucose withdrawn);
- ``withdrawn``: a reading this transfer first stored that it no longer gives.

`apply_outcome` writes one transfer's changes in one transaction: a changed reading keeps its
id and is queued upstream again as a correction (Junction upserts samples by id, see
`reference/mobile-sdk-sync.md` §2); a new one is stored and queued like any new reading; a
withdrawn one is marked (`withdrawn_at`), taken out of the queue if it never left, and kept
for `status` and the API to show, since Junction may already have it.

Values never reach the log: outcomes name ids and field names only.
"""

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlmodel import Session, col, delete, select

from drivers.clock import ClockPolicy
from drivers.devices.base import CollectContext, Cursor, DeviceMatch
from drivers.devices.registry import DriverRegistry
from drivers.errors import DriverError
from drivers.playback import PlaybackLink
from drivers.readings import Reading, ReadingKind
from drivers.recording import Frame, GattShape
from gateway.store import devices as device_store
from gateway.store.changes import ReadingState, mark_changed
from gateway.store.codec import reading_columns
from gateway.store.db import Database
from gateway.store.delivery import settle_recorded
from gateway.store.frames import StoredTransfer, load_frames
from gateway.store.models import OutboxRow, ReadingRow
from gateway.store.readings import save_in_session
from sync.outbox import uploadable

_LOGGER = logging.getLogger(__name__)

# Columns that say what a reading is; receive time and measured skew are the gateway's own
# (playback reproduces them only to the millisecond) and never make a reading "changed".
_COMPARED = (
    "kind",
    "values_json",
    "flags_json",
    "dt_year",
    "dt_month",
    "dt_day",
    "dt_hour",
    "dt_minute",
    "dt_second",
    "dt_offset_minutes",
    "sequence",
    "user_index",
)
_UPDATED = (*_COMPARED, "provider")


class Outcome(StrEnum):
    """What re-derivation says about one reading."""

    UNCHANGED = "unchanged"
    CHANGED = "changed"
    NEW = "new"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class ReadingOutcome:
    """One reading's outcome.

    Attributes:
        reading_id: The stable id.
        outcome: Unchanged, changed, new or withdrawn.
        kind: The reading's kind (today's for changed and new, the stored one otherwise).
        fields: For ``changed``: the columns that differ (``values_json``, ``flags_json``…).
        reading: Today's reading (None for withdrawn).
    """

    reading_id: str
    outcome: Outcome
    kind: str
    fields: tuple[str, ...] = ()
    reading: Reading | None = None


@dataclass(frozen=True, slots=True)
class TransferOutcome:
    """Everything re-derivation found for one recorded transfer.

    Attributes:
        transfer: The recorded transfer.
        readings: Per-reading outcomes, in derivation order, withdrawn last.
        error: Why the transfer could not be played (no driver of that name, a parser
            error today's driver raises); its readings are then left as they are.
        unmatched: Driver calls the recording had no frame for (the conversation changed).
    """

    transfer: StoredTransfer
    readings: tuple[ReadingOutcome, ...] = ()
    error: str | None = None
    unmatched: int = 0

    def count(self, outcome: Outcome) -> int:
        """How many readings had `outcome`."""
        return sum(1 for r in self.readings if r.outcome is outcome)


@dataclass
class Totals:
    """Counts over a whole run."""

    transfers: int = 0
    failed: int = 0
    by_outcome: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))

    def add(self, outcome: TransferOutcome) -> None:
        """Count one transfer's outcome."""
        self.transfers += 1
        if outcome.error is not None:
            self.failed += 1
        for reading in outcome.readings:
            self.by_outcome[reading.outcome] += 1


def _match_from(context: Mapping[str, Any], driver_name: str) -> DeviceMatch:
    raw = context.get("match") or {}
    return DeviceMatch(
        driver=str(raw.get("driver") or driver_name),
        kind=ReadingKind(raw.get("kind", "glucose")),
        brand=str(raw.get("brand") or "Generic"),
        provider=str(raw.get("provider") or "manual"),
        model=raw.get("model"),
    )


async def rederive(
    transfer: StoredTransfer,
    frames: Sequence[Frame],
    registry: DriverRegistry,
    *,
    consent_codes: Mapping[int, int] | None = None,
) -> tuple[list[Reading], int]:
    """Run today's driver over one recorded transfer, offline.

    Returns:
        The readings it derives now (distinct ids, derivation order) and how many of its
        calls the recording had no frame for.

    Raises:
        LookupError: No driver has the recorded name any more.
        DriverError: Today's driver fails on the recording.
    """
    header = transfer.header
    context = header.context
    driver = registry.get(header.driver)
    shape = GattShape.from_json(context.get("shape"))
    name = (context.get("advertisement") or {}).get("name")
    link = PlaybackLink(header.device, name, frames, shape=shape, started_at=header.started_at)
    derived: list[Reading] = []
    collect_context = CollectContext(
        match=_match_from(context, header.driver),
        consent_codes=dict(consent_codes or {}),
        historical=bool(context.get("historical")),
        clock=link.clock,
        clock_policy=ClockPolicy(write=bool(context.get("clock_write"))),
        zone=str(context.get("zone") or "UTC"),
        sink=derived.extend,
    )
    try:
        result = await driver.collect(
            link, Cursor.from_json(context.get("cursor")), collect_context
        )
    finally:
        await link.disconnect()
    derived.extend(result.readings)
    unique = list({r.id: r for r in reversed(derived)}.values())[::-1]
    return unique, len(link.unmatched)


def compare(
    session: Session, transfer_pk: int, derived: Sequence[Reading], zone: ZoneInfo
) -> list[ReadingOutcome]:
    """Outcomes of `derived` against what is stored (inside a read or write transaction)."""
    ids = [r.id for r in derived]
    stored: dict[str, ReadingRow] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        stored.update(
            (row.id, row)
            for row in session.exec(select(ReadingRow).where(col(ReadingRow.id).in_(chunk)))
        )
    outcomes: list[ReadingOutcome] = []
    for reading in derived:
        row = stored.get(reading.id)
        if row is None:
            outcomes.append(
                ReadingOutcome(reading.id, Outcome.NEW, reading.kind.value, (), reading)
            )
            continue
        now_columns = reading_columns(reading, zone)
        differs = tuple(c for c in _COMPARED if getattr(row, c) != now_columns[c])
        if row.withdrawn_at is not None:
            differs = (*differs, "withdrawn_at")
        outcome = Outcome.CHANGED if differs else Outcome.UNCHANGED
        outcomes.append(ReadingOutcome(reading.id, outcome, reading.kind.value, differs, reading))
    gone = session.exec(
        select(ReadingRow.id, ReadingRow.kind).where(
            col(ReadingRow.transfer_pk) == transfer_pk,
            col(ReadingRow.withdrawn_at).is_(None),
        )
    ).all()
    derived_ids = set(ids)
    outcomes.extend(
        ReadingOutcome(rid, Outcome.WITHDRAWN, kind) for rid, kind in gone if rid not in derived_ids
    )
    return outcomes


async def reparse_transfer(
    db: Database,
    transfer: StoredTransfer,
    registry: DriverRegistry,
    *,
    zone: ZoneInfo,
) -> TransferOutcome:
    """Re-derive one transfer and compare (changes nothing)."""
    frames = load_frames(db, transfer.pk)
    device = device_store.get_device(db, transfer.header.device)
    try:
        derived, unmatched = await rederive(
            transfer, frames, registry, consent_codes=device.consent_codes if device else None
        )
    except LookupError:
        return TransferOutcome(
            transfer, error=f"no driver named {transfer.header.driver!r} any more; left as stored"
        )
    except DriverError as exc:
        return TransferOutcome(transfer, error=f"{exc}; left as stored")
    with db.read() as session:
        outcomes = compare(session, transfer.pk, derived, zone)
    return TransferOutcome(transfer, tuple(outcomes), unmatched=unmatched)


def apply_outcome(
    db: Database, outcome: TransferOutcome, *, zone: ZoneInfo, now: datetime | None = None
) -> None:
    """Write one transfer's changes in one transaction (see the module docstring).

    The comparison is made again inside the transaction, so readings that changed since the
    dry comparison (delivered, assigned) are handled as they are now.

    Raises:
        StoreError: The database cannot be written (nothing of this transfer changed).
    """
    if outcome.error is not None:
        return
    now = now or datetime.now(UTC)
    derived = [r.reading for r in outcome.readings if r.reading is not None]
    with db.write() as session:
        fresh = compare(session, outcome.transfer.pk, derived, zone)
        changed = [r for r in fresh if r.outcome is Outcome.CHANGED and r.reading is not None]
        for item in changed:
            assert item.reading is not None  # noqa: S101 - filtered above
            _correct(session, item.reading, zone, now)
        new = [r.reading for r in fresh if r.outcome is Outcome.NEW and r.reading is not None]
        if new:
            save_in_session(session, new, zone=zone, now=now, transfer_pk=outcome.transfer.pk)
        withdrawn = [r.reading_id for r in fresh if r.outcome is Outcome.WITHDRAWN]
        if withdrawn:
            _withdraw(session, withdrawn, now)
    _LOGGER.info(
        "reparse: transfer %s of %s: %d changed, %d new, %d withdrawn",
        outcome.transfer.header.id,
        outcome.transfer.header.device,
        len(changed),
        len(new),
        len(withdrawn),
    )


def _correct(session: Session, reading: Reading, zone: ZoneInfo, now: datetime) -> None:
    """Give a stored reading today's values; queue it upstream again if it has a user."""
    row = session.exec(select(ReadingRow).where(ReadingRow.id == reading.id)).one()
    columns = reading_columns(reading, zone)
    values: dict[str, Any] = {c: columns[c] for c in _UPDATED}
    values["start_date"] = columns["start_date"]
    values["withdrawn_at"] = None
    state = ReadingState(row.state)
    if row.user_id is not None:
        if uploadable(reading):
            state = ReadingState.QUEUED
            _requeue(session, row, now)
        else:
            state = ReadingState.LOCAL
            _unqueue(session, [row.id])
    values["state"] = state.value
    mark_changed(session, [reading.id], now, **values)


def _requeue(session: Session, row: ReadingRow, now: datetime) -> None:
    """Queue a corrected reading again under the same id.

    Its outbox item (delivered, dead or claimed) goes back to the queue, so the uploader
    sends today's values.
    """
    # A 2xx recorded but not settled yet (`gateway.store.outbox`) was of the old values: it
    # is a delivery, settled here before the item is queued again (left recorded, the queue
    # would skip the corrected item and a later settle would call it delivered).
    settle_recorded(session, [row.id])
    item = session.exec(select(OutboxRow).where(OutboxRow.reading_id == row.id)).first()
    if item is None:
        return  # never queued (attributed outside the outbox): nothing upstream to correct
    session.exec(
        update(OutboxRow)
        .where(col(OutboxRow.reading_id) == row.id)
        .values(
            state="queued",
            attempts=0,
            not_before=None,
            claim_id=None,  # an upload in flight with the old values no longer completes it
            lease_until=None,
            last_error=None,
            delivered_at=None,
            dead_status=None,
            dead_body=None,
            dead_reason=None,
            dead_at=None,
            enqueued_at=now,
        )
    )


def _unqueue(session: Session, ids: Sequence[str]) -> None:
    """Take items that never reached Junction out of the queue.

    An upload in flight then completes nothing: its item is gone.
    """
    session.exec(
        delete(OutboxRow).where(
            col(OutboxRow.reading_id).in_(list(ids)), col(OutboxRow.state) != "delivered"
        )
    )


def _withdraw(session: Session, ids: Sequence[str], now: datetime) -> None:
    # A 2xx recorded but not settled yet is a delivery: Junction has the reading, so it must
    # stay delivered and listed, not become local.
    settle_recorded(session, ids)
    rows = session.exec(select(ReadingRow).where(col(ReadingRow.id).in_(list(ids)))).all()
    delivered = [r.id for r in rows if r.state == ReadingState.DELIVERED.value]
    pending = [r.id for r in rows if r.state != ReadingState.DELIVERED.value]
    if pending:
        _unqueue(session, pending)
        mark_changed(session, pending, now, withdrawn_at=now, state=ReadingState.LOCAL.value)
    if delivered:
        # Junction has it: kept as delivered and listed, for a person to deal with upstream.
        mark_changed(session, delivered, now, withdrawn_at=now)


def outcome_lines(outcome: TransferOutcome) -> list[str]:
    """One human line per reading of the transfer: outcome, kind, id, what differs.

    Ids and field names only, never values.
    """
    lines = []
    for r in outcome.readings:
        detail = f" ({', '.join(_field_label(f) for f in r.fields)})" if r.fields else ""
        lines.append(f"{r.outcome.value:9} {r.kind:14} {r.reading_id}{detail}")
    return lines


def _field_label(column: str) -> str:
    if column.startswith("dt_"):
        return "time"
    return {"values_json": "values", "flags_json": "flags"}.get(column, column)


def to_json(outcome: TransferOutcome) -> dict[str, Any]:
    """A JSON-able summary (ids, outcomes and field names; no values)."""
    return {
        "transfer": outcome.transfer.header.id,
        "device": outcome.transfer.header.device,
        "error": outcome.error,
        "readings": [
            {
                "id": r.reading_id,
                "outcome": r.outcome.value,
                "kind": r.kind,
                "fields": list(r.fields),
            }
            for r in outcome.readings
        ],
    }


ProgressHook = Callable[[TransferOutcome], None]


async def reparse(
    db: Database,
    transfers: Sequence[StoredTransfer],
    registry: DriverRegistry,
    *,
    zone: ZoneInfo,
    apply: bool,
    on_transfer: ProgressHook = lambda _o: None,
) -> Totals:
    """Re-derive `transfers` in order; with `apply`, write each one's changes as it goes."""
    totals = Totals()
    for transfer in transfers:
        outcome = await reparse_transfer(db, transfer, registry, zone=zone)
        if apply:
            apply_outcome(db, outcome, zone=zone)
        totals.add(outcome)
        on_transfer(outcome)
    return totals


def dumps(value: Any) -> str:
    """Compact JSON."""
    return json.dumps(value, sort_keys=True)
