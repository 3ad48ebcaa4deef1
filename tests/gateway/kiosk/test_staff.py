"""The staff gate: lockout after wrong PINs (for everyone), grants that lapse unless used."""

import threading

import pytest
from pydantic import SecretStr

from gateway.kiosk.pin import hash_pin
from gateway.kiosk.staff import LockedOutError, StaffGate, StaffModeOffError, WrongPinError

PIN_HASH = SecretStr(hash_pin("1357"))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gate(clock: Clock) -> StaffGate:
    return StaffGate(PIN_HASH, attempts=3, lockout_s=60, unlock_s=120, clock=clock)


def test_three_wrong_pins_lock_out_until_the_time_is_up(gate: StaffGate, clock: Clock) -> None:
    with pytest.raises(WrongPinError) as first:
        gate.unlock("0000")
    assert first.value.attempts_left == 2
    with pytest.raises(WrongPinError):
        gate.unlock("0001")
    with pytest.raises(LockedOutError) as locked:
        gate.unlock("0002")
    assert locked.value.retry_after_s == 60
    clock.now += 59
    with pytest.raises(LockedOutError):
        gate.unlock("1357")  # the right PIN waits too
    clock.now += 1
    assert gate.unlock("1357").valid_s == 120


def test_a_right_pin_resets_the_count(gate: StaffGate) -> None:
    for wrong in ("0000", "0001"):
        with pytest.raises(WrongPinError):
            gate.unlock(wrong)
    gate.unlock("1357")
    with pytest.raises(WrongPinError) as again:
        gate.unlock("0000")
    assert again.value.attempts_left == 2


def test_a_grant_lapses_without_use_and_each_use_restarts_it(gate: StaffGate, clock: Clock) -> None:
    grant = gate.unlock("1357")
    clock.now += 100
    assert gate.check(grant.token)
    clock.now += 100  # 200 s after unlock, 100 s after its last use
    assert gate.check(grant.token)
    clock.now += 120
    assert not gate.check(grant.token)
    assert not gate.check("not-a-grant")
    assert not gate.check(None)
    assert not gate.check("x" * 1000)


def test_locking_ends_a_grant_and_a_lockout_ends_all(gate: StaffGate) -> None:
    one, two = gate.unlock("1357"), gate.unlock("1357")
    assert gate.lock(one.token)
    assert not gate.check(one.token)
    assert not gate.lock(one.token)
    assert gate.check(two.token)
    for wrong in ("0000", "0001"):
        with pytest.raises(WrongPinError):
            gate.unlock(wrong)
    with pytest.raises(LockedOutError):
        gate.unlock("0002")
    assert not gate.check(two.token)


def test_parallel_guesses_cannot_pass_the_count(gate: StaffGate) -> None:
    outcomes: list[str] = []

    def guess(pin: str) -> None:
        try:
            gate.unlock(pin)
            outcomes.append("open")
        except WrongPinError:
            outcomes.append("wrong")
        except LockedOutError:
            outcomes.append("locked")

    threads = [threading.Thread(target=guess, args=(f"{i:04d}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["locked"] * 6 + ["wrong"] * 2


def test_no_pin_configured_means_no_staff_mode() -> None:
    gate = StaffGate(None, attempts=3, lockout_s=60, unlock_s=120)
    assert not gate.configured
    with pytest.raises(StaffModeOffError, match="kiosk set-pin"):
        gate.unlock("1357")
