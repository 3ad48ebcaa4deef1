"""Staff mode: unlocking with the PIN, the lockout after wrong tries, and staff grants.

A grant is a random bearer value the page sends as `X-Kiosk-Staff` on staff calls; it lapses
after `[kiosk] staff_unlock_s` without use (each use restarts the clock) or when the page
locks itself. `[kiosk] pin_attempts` wrong PINs in a row shut staff mode for
`[kiosk] lockout_s`, for everyone: the kiosk has one keypad, and a guesser on the network
must not get a fresh count by changing address. State is in memory: a restart forgets
grants (staff unlock again) and an ongoing lockout.
"""

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import SecretStr

from gateway.config import KioskSettings
from gateway.kiosk.pin import verify_pin

STAFF_HEADER = "X-Kiosk-Staff"


class StaffModeOffError(Exception):
    """No `[kiosk] staff_pin_hash` is configured."""


class WrongPinError(Exception):
    """The PIN did not match; `attempts_left` more before the lockout."""

    def __init__(self, attempts_left: int) -> None:
        super().__init__(f"wrong PIN; {attempts_left} tries left")
        self.attempts_left = attempts_left


class LockedOutError(Exception):
    """Too many wrong PINs: staff mode is shut for `retry_after_s` more seconds."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"staff mode locked for {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class Grant:
    """An unlocked staff mode: `token` for `X-Kiosk-Staff`, valid `valid_s` after last use."""

    token: str
    valid_s: int


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class StaffGate:
    """Counts wrong PINs, enforces the lockout and keeps live grants (thread-safe)."""

    def __init__(
        self,
        pin_hash: SecretStr | None,
        *,
        attempts: int,
        lockout_s: int,
        unlock_s: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pin_hash = pin_hash
        self._attempts = attempts
        self._lockout_s = lockout_s
        self._unlock_s = unlock_s
        self._clock = clock
        self._lock = threading.Lock()
        self._wrong = 0
        self._locked_until = 0.0
        self._grants: dict[str, float] = {}  # sha256(token) -> monotonic expiry

    @classmethod
    def from_settings(cls, kiosk: KioskSettings) -> "StaffGate":
        """The gate `[kiosk]` describes."""
        return cls(
            kiosk.staff_pin_hash,
            attempts=kiosk.pin_attempts,
            lockout_s=kiosk.lockout_s,
            unlock_s=kiosk.staff_unlock_s,
        )

    @property
    def configured(self) -> bool:
        """Whether a staff PIN is set."""
        return self._pin_hash is not None

    def unlock(self, pin: str) -> Grant:
        """Check `pin` (blocking, ~50 ms of scrypt) and hand out a grant.

        Tries are checked one at a time under the lock, so parallel guesses cannot get past
        the count.

        Raises:
            StaffModeOffError: No PIN is configured.
            LockedOutError: Locked now, or this wrong PIN used the last try.
            WrongPinError: Wrong PIN, tries left.
        """
        if self._pin_hash is None:
            msg = "no staff PIN is set; run `edge-gateway kiosk set-pin`"
            raise StaffModeOffError(msg)
        with self._lock:
            now = self._clock()
            if now < self._locked_until:
                raise LockedOutError(int(self._locked_until - now) + 1)
            if verify_pin(pin, self._pin_hash.get_secret_value()):
                self._wrong = 0
                token = secrets.token_urlsafe(32)
                self._grants = {d: t for d, t in self._grants.items() if t > now}
                self._grants[_digest(token)] = now + self._unlock_s
                return Grant(token, self._unlock_s)
            self._wrong += 1
            if self._wrong >= self._attempts:
                self._wrong = 0
                self._locked_until = now + self._lockout_s
                self._grants.clear()  # a lockout also shuts any open staff screen
                raise LockedOutError(self._lockout_s)
            raise WrongPinError(self._attempts - self._wrong)

    def check(self, token: str | None) -> bool:
        """Whether `token` is a live grant; a live one's clock restarts."""
        if not token or len(token) > 128:
            return False
        with self._lock:
            now = self._clock()
            digest = _digest(token)
            expiry = self._grants.get(digest)
            if expiry is None or expiry <= now:
                self._grants.pop(digest, None)
                return False
            self._grants[digest] = now + self._unlock_s
            return True

    def lock(self, token: str | None) -> bool:
        """End the grant `token`; whether it was live."""
        if not token:
            return False
        with self._lock:
            expiry = self._grants.pop(_digest(token), None)
            return expiry is not None and expiry > self._clock()
