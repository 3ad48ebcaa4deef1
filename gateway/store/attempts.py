"""The upload-attempt log: one `upload_attempt` row per stream each time a claim is settled.

`edge-gateway status` and retention read it; `gateway.store.outbox` writes it inside the
transaction that settles the claim (a 2xx recorded, a retry, a dead letter).
"""

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session

from gateway.store.models import UploadAttemptRow


def log_attempts(
    session: Session,
    claim_id: str,
    streams: Iterable[tuple[str, str]],
    outcome: str,
    now: datetime,
    *,
    status_code: int | None = None,
    error: str | None = None,
) -> None:
    """Add one row per (user id, resource) in `streams`, counting how often each appears.

    Args:
        session: The settling write transaction.
        claim_id: The claim being settled.
        streams: The (user id, resource value) of each item settled.
        outcome: ``delivered``, ``retry`` or ``dead``.
        now: When (aware UTC).
        status_code: Junction's HTTP status, if one answered.
        error: What went wrong, for a retry or a dead letter.
    """
    for (user_id, resource), count in Counter(streams).items():
        session.add(
            UploadAttemptRow(
                claim_id=claim_id,
                user_id=user_id,
                resource=resource,
                outcome=outcome,
                count=count,
                status_code=status_code,
                error=error,
                at=now,
            )
        )
