"""`gateway.store.attempts.log_attempts`: one upload_attempt row per stream of a settled claim."""

import sqlite3

from gateway.store.attempts import log_attempts
from tests.sync.factories import T0


def test_one_row_per_stream_with_its_count(db):
    with db.write() as session:
        streams = [("alice", "glucose"), ("bob", "body"), ("alice", "glucose")]
        log_attempts(session, "c1", streams, "dead", T0, status_code=400, error="refused")
    with sqlite3.connect(db.path) as conn:
        rows = conn.execute(
            "SELECT claim_id, user_id, resource, outcome, count, status_code, error"
            " FROM upload_attempt ORDER BY id"
        ).fetchall()
    assert rows == [
        ("c1", "alice", "glucose", "dead", 2, 400, "refused"),
        ("c1", "bob", "body", "dead", 1, 400, "refused"),
    ]


def test_nothing_settled_logs_nothing(db):
    with db.write() as session:
        log_attempts(session, "c2", [], "retry", T0)
    with sqlite3.connect(db.path) as conn:
        assert conn.execute("SELECT count(*) FROM upload_attempt").fetchone() == (0,)
