"""Readings `edge-gateway reparse` withdrew: no longer derived from their frames.

A withdrawn reading is kept (with `withdrawn_at`) so someone can deal with what Junction
already has; `status` and the local API list them.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from gateway.store.db import Database
from gateway.store.models import ReadingRow


@dataclass(frozen=True, slots=True)
class WithdrawnReading:
    """One withdrawn reading (no measured values).

    Attributes:
        id: The stable id.
        device: Device address.
        kind: What it was stored as.
        state: Its upload state (``delivered``: Junction has it; ``local``: it never left).
        user_id: Whose it was, if anyone's.
        withdrawn_at: When `reparse` withdrew it (UTC).
    """

    id: str
    device: str
    kind: str
    state: str
    user_id: str | None
    withdrawn_at: datetime


def list_withdrawn(db: Database, *, limit: int = 1000) -> list[WithdrawnReading]:
    """Withdrawn readings, most recently withdrawn first."""
    query = (
        select(ReadingRow)
        .where(col(ReadingRow.withdrawn_at).is_not(None))
        .order_by(col(ReadingRow.withdrawn_at).desc(), col(ReadingRow.id))
        .limit(limit)
    )
    with db.read() as session:
        rows = list(session.exec(query))
    return [
        WithdrawnReading(r.id, r.device, r.kind, r.state, r.user_id, r.withdrawn_at)
        for r in rows
        if r.withdrawn_at is not None
    ]
