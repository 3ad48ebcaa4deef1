from drivers.readings import ReadingKind
from sync.outbox import Stage, StreamInfo
from sync.priority import plan

BODY, BP, GLU = ReadingKind.BODY, ReadingKind.BLOOD_PRESSURE, ReadingKind.GLUCOSE


def _s(user, resource, due=1, historical=0, claimed=0):
    return StreamInfo(user, resource, max(due, 1) + claimed, due, claimed, None, historical)


def test_priority_order_within_a_user():
    streams = [_s("a", GLU), _s("a", BP), _s("a", BODY)]
    result = plan(streams, in_flight=(), held_users=(), last_served={}, slots=3)
    assert result.start == [("a", GLU), ("a", BP), ("a", BODY)]  # DEFAULT_RESOURCE_ORDER


def test_custom_priority():
    streams = [_s("a", GLU), _s("a", BP)]
    result = plan(
        streams, in_flight=(), held_users=(), last_served={}, slots=1, priority={GLU: 1, BP: 2}
    )
    assert result.start == [("a", GLU)]


def test_users_take_turns():
    streams = [_s("a", BODY), _s("a", BP), _s("b", GLU), _s("c", GLU)]
    result = plan(streams, in_flight=(), held_users=(), last_served={"a": 5, "b": 9}, slots=4)
    assert result.start == [("c", GLU), ("a", BP), ("b", GLU), ("a", BODY)]


def test_in_flight_held_and_not_due_streams_wait():
    streams = [_s("a", BODY), _s("a", BP, due=0), _s("b", GLU), _s("c", GLU)]
    result = plan(streams, in_flight={("a", BODY)}, held_users={"b"}, last_served={}, slots=9)
    assert result.start == [("c", GLU)]


def test_slots_limit():
    streams = [_s(u, GLU) for u in "abcdef"]
    assert len(plan(streams, in_flight=(), held_users=(), last_served={}, slots=2).start) == 2
    assert plan(streams, in_flight=(), held_users=(), last_served={}, slots=0).start == []


def test_historical_gate_and_forward_progress():
    body_backfill = _s("a", BODY, historical=5)
    glucose_backfill = _s("a", GLU, historical=5)
    glucose_daily = _s("b", GLU)
    result = plan(
        [body_backfill, glucose_backfill, glucose_daily],
        in_flight=(),
        held_users=(),
        last_served={},
        slots=9,
    )
    assert result.start == [("a", GLU), ("b", GLU)]
    assert result.deprioritized == [("a", BODY)]
    # A higher-priority backfill that is only waiting for a retry no longer blocks.
    glucose_waiting = _s("a", GLU, due=0, historical=5)
    result = plan(
        [glucose_waiting, body_backfill], in_flight=(), held_users=(), last_served={}, slots=9
    )
    assert result.start == [("a", BODY)]


def test_only_heads_gate_historical_streams():
    """Issue 18: historical items queued behind a daily backlog hold nothing back."""
    glucose_daily_head = StreamInfo("a", GLU, 100_008, 100_008, 0, None, 8, head=Stage.DAILY)
    bp_backfill = StreamInfo("a", BP, 1, 1, 0, None, 1, head=Stage.HISTORICAL)
    result = plan(
        [glucose_daily_head, bp_backfill],
        in_flight=(),
        held_users=(),
        last_served={},
        slots=9,
    )
    assert result.start == [("a", GLU), ("a", BP)]
    assert result.deprioritized == []
    # Once the glucose head is historical, the BP backfill waits for it.
    glucose_backfill_head = StreamInfo("a", GLU, 8, 8, 0, None, 8, head=Stage.HISTORICAL)
    result = plan(
        [glucose_backfill_head, bp_backfill],
        in_flight=(),
        held_users=(),
        last_served={},
        slots=9,
    )
    assert result.deprioritized == [("a", BP)]
    # A stream whose own head is daily is never held back.
    bp_daily_head = StreamInfo("a", BP, 5, 5, 0, None, 1, head=Stage.DAILY)
    result = plan(
        [glucose_backfill_head, bp_daily_head],
        in_flight=(),
        held_users=(),
        last_served={},
        slots=9,
    )
    assert result.start == [("a", GLU), ("a", BP)]
