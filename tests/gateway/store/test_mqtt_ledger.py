"""The MQTT sink's cursor and ledger in the store (schema v6)."""

import sqlite3
from datetime import UTC, datetime

from gateway.store import mqtt_ledger as ledger
from gateway.store.readings import save_transfer
from tests.gateway.store.conftest import ZONE
from tests.sync.factories import glucose


def test_changes_come_in_change_order_after_the_cursor(db):
    readings = [glucose(s) for s in range(1, 6)]
    save_transfer(db, readings, zone=ZONE)
    changes = ledger.changes_after(db, 0, 3)
    assert [c.stored.reading.id for c in changes] == [r.id for r in readings[:3]]
    rest = ledger.changes_after(db, changes[-1].change_seq, 10)
    assert [c.stored.reading.id for c in rest] == [r.id for r in readings[3:]]


def test_record_moves_cursor_and_ledger_together_and_never_back(db):
    reading = glucose(1)
    save_transfer(db, [reading], zone=ZONE)
    entry = ledger.Published(
        reading.id, "node", "glucose", datetime(2026, 11, 20, tzinfo=UTC), "d1"
    )
    ledger.record(db, "mqtt", [entry], 7)
    assert ledger.cursor(db, "mqtt") == 7
    assert ledger.digests(db, [reading.id, "other"]) == {reading.id: "d1"}
    ledger.record(db, "mqtt", [], 3)  # an older position never moves the cursor back
    assert ledger.cursor(db, "mqtt") == 7
    assert ledger.latest_published(db) == {("node", "glucose"): datetime(2026, 11, 20, tzinfo=UTC)}


def test_prune_forgets_readings_the_store_no_longer_has(db):
    kept, pruned = glucose(1), glucose(2)
    save_transfer(db, [kept, pruned], zone=ZONE)
    when = datetime(2026, 11, 20, tzinfo=UTC)
    ledger.record(
        db, "mqtt", [ledger.Published(r.id, "n", "glucose", when, "d") for r in (kept, pruned)], 2
    )
    with sqlite3.connect(db.path) as conn:  # what retention does to an old delivered reading
        conn.execute("DELETE FROM reading WHERE id = ?", (pruned.id,))
    assert ledger.prune(db) == 1
    assert set(ledger.digests(db, [kept.id, pruned.id])) == {kept.id}


def test_upload_counts_without_an_outbox_are_zero(db):
    assert ledger.upload_counts(db) == {"queued": 0, "dead": 0}
