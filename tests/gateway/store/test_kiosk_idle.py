"""Kiosk sessions end when idle (no reading of theirs since a while); people search."""

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from gateway.store import kiosk, readings, users
from gateway.store.users import ClientUserIdTakenError
from tests.gateway.store.conftest import ZONE
from tests.sync.factories import blood_pressure, glucose

CUFF = "C0:FF:EE:00:00:02"
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
IDLE = timedelta(minutes=5)


def received(reading, at: datetime):
    return dataclasses.replace(reading, received_at=at)


def test_a_session_with_no_reading_ends_after_the_idle_time(db) -> None:
    session = kiosk.start_session(db, "ada", duration=timedelta(minutes=30), now=T0)
    assert kiosk.end_idle_sessions(db, IDLE, now=T0 + IDLE - timedelta(seconds=1)) == []
    [ended] = kiosk.end_idle_sessions(db, IDLE, now=T0 + IDLE)
    assert ended.id == session.id
    assert ended.ended_at == T0 + IDLE
    assert kiosk.active_sessions(db, now=T0 + IDLE) == []
    assert kiosk.end_idle_sessions(db, IDLE, now=T0 + 2 * IDLE) == []  # ended once


def test_a_reading_of_the_person_keeps_the_session(db) -> None:
    kiosk.start_session(db, "ada", duration=timedelta(minutes=30), now=T0)
    at = T0 + timedelta(minutes=4)
    readings.save_transfer(db, [received(glucose(1), at)], zone=ZONE)
    assert kiosk.end_idle_sessions(db, IDLE, now=T0 + timedelta(minutes=8)) == []
    assert len(kiosk.end_idle_sessions(db, IDLE, now=at + IDLE)) == 1


def test_only_the_sessions_device_counts_when_it_names_one(db) -> None:
    kiosk.start_session(db, "ada", duration=timedelta(minutes=30), device=CUFF, now=T0)
    users.bind(db, "C0:FF:EE:00:00:01", "ada")  # her own meter, not the kiosk's cuff
    at = T0 + timedelta(minutes=4)
    readings.save_transfer(db, [received(glucose(1), at)], zone=ZONE)
    assert len(kiosk.end_idle_sessions(db, IDLE, now=T0 + IDLE)) == 1


def test_somebody_elses_reading_does_not_keep_a_session(db) -> None:
    kiosk.start_session(db, "ada", duration=timedelta(minutes=30), device=CUFF, now=T0)
    users.bind(db, "C0:FF:EE:00:00:07", "bob")
    at = T0 + timedelta(minutes=4)
    reading = received(blood_pressure(1, device="C0:FF:EE:00:00:07"), at)
    readings.save_transfer(db, [reading], zone=ZONE)
    assert len(kiosk.end_idle_sessions(db, IDLE, now=T0 + IDLE)) == 1


def test_search_by_name_or_clinic_id_with_literal_wildcards(db) -> None:
    users.upsert_user(db, "u1", "Ada Lovelace", "MRN_0001")
    users.upsert_user(db, "u2", "Alan Turing", "MRN-0002")
    users.upsert_user(db, "u3", None, "100%")
    assert [u.user_id for u in users.search_users(db, "LOVE")] == ["u1"]
    assert [u.user_id for u in users.search_users(db, "mrn_")] == ["u1"]  # _ is literal
    assert [u.user_id for u in users.search_users(db, "%")] == ["u3"]  # so is %
    assert [u.user_id for u in users.search_users(db, "u2")] == ["u2"]  # a whole user_id
    assert [u.user_id for u in users.search_users(db, "u")] == ["u2"]  # Turing; ids: whole
    assert len(users.search_users(db, "a", limit=1)) == 1


def test_a_clinic_id_belongs_to_one_user(db) -> None:
    users.upsert_user(db, "u1", "Ada", "MRN-1")
    with pytest.raises(ClientUserIdTakenError, match="u1"):
        users.upsert_user(db, "u2", "Bob", "MRN-1")
    assert [u.user_id for u in users.list_users(db)] == ["u1"]
    assert users.upsert_user(db, "u1", "Ada L.").client_user_id == "MRN-1"
