from datetime import UTC, datetime, timedelta

from gateway.store import kiosk, users
from gateway.store.attribution import (
    AttributionSource,
    Binding,
    KioskSession,
    resolve_attribution,
)
from gateway.store.readings import get_reading, save_transfer
from tests.gateway.store.conftest import ZONE
from tests.sync.factories import T0, blood_pressure, glucose

CUFF = "C0:FF:EE:00:00:02"
AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _who(bindings, sessions, user_index=1, device=CUFF, at=AT):
    result = resolve_attribution(bindings, sessions, device=device, user_index=user_index, at=at)
    return None if result is None else (result.user_id, result.provider, result.source)


def test_nobody_without_rules():
    assert _who([], []) is None


def test_a_slot_binding_beats_the_every_slot_binding():
    bindings = [Binding(CUFF, None, "family"), Binding(CUFF, 1, "alice", "omron_kiosk")]
    assert _who(bindings, []) == ("alice", "omron_kiosk", AttributionSource.BINDING)
    assert _who(bindings, [], user_index=2) == ("family", None, AttributionSource.BINDING)
    assert _who(bindings, [], user_index=None) == ("family", None, AttributionSource.BINDING)
    assert _who([Binding(CUFF, 1, "alice")], [], user_index=2) is None


def test_device_addresses_compare_case_insensitively():
    assert _who([Binding(CUFF.lower(), None, "a")], [], device=CUFF)[0] == "a"


def test_kiosk_sessions_by_precedence_and_time():
    bindings = [Binding(CUFF, None, "home-user", "omron_ble")]
    anywhere = KioskSession("walk-in", None, AT - HOUR, AT + HOUR)
    on_cuff = KioskSession("patient", CUFF, AT - HOUR, AT + HOUR)
    assert _who(bindings, [anywhere]) == ("home-user", "omron_ble", AttributionSource.BINDING)
    assert _who([], [anywhere]) == ("walk-in", None, AttributionSource.KIOSK)
    assert _who(bindings, [anywhere, on_cuff]) == ("patient", "omron_ble", AttributionSource.KIOSK)
    assert _who([], [on_cuff], at=AT + HOUR) is None, "expired"
    assert _who([], [on_cuff], at=AT - 2 * HOUR) is None, "not started"
    ended = KioskSession("patient", CUFF, AT - HOUR, AT + HOUR, ended_at=AT)
    assert _who([], [ended]) is None
    newer = KioskSession("next", None, AT - timedelta(minutes=5), AT + HOUR)
    assert _who([], [anywhere, newer])[0] == "next"


def test_the_store_attributes_by_kiosk_session_at_receive_time(db):
    session = kiosk.start_session(db, "patient", duration=HOUR, device=CUFF, now=T0 - HOUR / 2)
    users.bind(db, CUFF, "home-user")
    during = blood_pressure()
    save_transfer(db, [during], zone=ZONE)
    assert get_reading(db, during.id).user_id == "patient"
    assert kiosk.end_session(db, session.id, now=T0 - HOUR / 4)
    assert not kiosk.end_session(db, session.id, now=T0)
    after = blood_pressure()
    save_transfer(db, [after], zone=ZONE)
    assert get_reading(db, after.id).user_id == "home-user"
    assert users.resolve_user(db, CUFF, 1, T0).user_id == "home-user"


def test_a_new_session_on_a_device_ends_the_previous_one(db):
    kiosk.start_session(db, "first", duration=HOUR, device=CUFF, now=T0)
    kiosk.start_session(db, "second", duration=HOUR, device=CUFF, now=T0 + timedelta(minutes=1))
    live = kiosk.active_sessions(db, now=T0 + timedelta(minutes=2))
    assert [s.user_id for s in live] == ["second"]


def test_bindings_replace_per_slot(db):
    users.bind(db, CUFF, "a", device_user=1)
    users.bind(db, CUFF, "b", device_user=1)
    users.bind(db, CUFF, "c")
    assert [(b.device_user, b.user_id) for b in users.list_bindings(db)] == [(None, "c"), (1, "b")]
    assert users.unbind(db, CUFF, device_user=1)
    assert not users.unbind(db, CUFF, device_user=1)
    assert {u.user_id for u in users.list_users(db)} == {"a", "b", "c"}
    save_transfer(db, [glucose(device=CUFF)], zone=ZONE)
