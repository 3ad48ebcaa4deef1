"""Check-in codes: short-lived signed tokens that start a person's kiosk session.

A code is ``<payload>.<signature>``, both base64url: the payload is compact JSON
``{"u": user_id, "d": device or null, "s": session seconds, "exp": unix seconds, "n": nonce}``
and the signature is HMAC-SHA256 (RFC 2104) over the payload's text with a 32-byte key kept
in ``<data_dir>/kiosk-checkin.key`` (mode 0600, made on first use). Short enough for a QR
code. Each code starts one session: `CheckinBook` remembers used nonces until they expire
(in memory, so the code's lifetime is what bounds a replay across a restart).
"""

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

KEY_FILENAME = "kiosk-checkin.key"
_KEY_BYTES = 32
MAX_CODE_CHARS = 512


class CheckinError(ValueError):
    """A code that is malformed, forged, expired or already used (the message says which)."""


@dataclass(frozen=True, slots=True)
class Checkin:
    """What a valid code says.

    Attributes:
        user_id: Whose session it starts.
        device: Only this device's readings are theirs (upper case), or None for any.
        session_s: How long the session lasts (seconds).
        expires_at: When the code stops working (UTC).
        nonce: Identifies the code (one use).
    """

    user_id: str
    device: str | None
    session_s: int
    expires_at: datetime
    nonce: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_key(data_dir: Path) -> bytes:
    """The signing key in `data_dir`, created (0600) if absent.

    Raises:
        OSError: The key cannot be read or written.
    """
    path = data_dir / KEY_FILENAME
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) != _KEY_BYTES:
            msg = f"{path}: not a check-in key ({len(key)} bytes); delete it to make a new one"
            raise OSError(msg) from None
        return key
    key = secrets.token_bytes(_KEY_BYTES)
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key


def _sign(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest())


def make_code(
    key: bytes,
    user_id: str,
    *,
    ttl: timedelta,
    session_s: int,
    device: str | None = None,
    now: datetime | None = None,
) -> tuple[str, Checkin]:
    """A new code for `user_id`, valid for `ttl` from `now`."""
    now = now or datetime.now(UTC)
    expires = int((now + ttl).timestamp())
    nonce = _b64(secrets.token_bytes(9))
    device = device.upper() if device else None
    body = {"u": user_id, "d": device, "s": session_s, "exp": expires, "n": nonce}
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    checkin = Checkin(user_id, device, session_s, datetime.fromtimestamp(expires, UTC), nonce)
    return f"{payload}.{_sign(key, payload)}", checkin


def read_code(key: bytes, code: str, *, now: datetime | None = None) -> Checkin:
    """The check-in `code` carries, if it is genuine and not expired.

    Raises:
        CheckinError: Malformed, forged (signature does not match this gateway's key) or
            expired.
    """
    now = now or datetime.now(UTC)
    payload, dot, signature = code.strip().partition(".")
    if not dot or not payload or not signature or len(code) > MAX_CODE_CHARS:
        msg = "not a check-in code; scan it again or ask staff"
        raise CheckinError(msg)
    if not hmac.compare_digest(_sign(key, payload), signature):
        msg = "check-in code not signed by this gateway; ask staff for a new one"
        raise CheckinError(msg)
    try:
        body = json.loads(_unb64(payload))
        checkin = Checkin(
            str(body["u"]),
            None if body["d"] is None else str(body["d"]),
            int(body["s"]),
            datetime.fromtimestamp(int(body["exp"]), UTC),
            str(body["n"]),
        )
    except (binascii.Error, ValueError, KeyError, TypeError, OverflowError) as exc:
        msg = "not a check-in code; scan it again or ask staff"
        raise CheckinError(msg) from exc
    if checkin.expires_at <= now:
        msg = "check-in code expired; ask staff for a new one"
        raise CheckinError(msg)
    return checkin


class CheckinBook:
    """Codes already used (by nonce) until they expire: each code starts one session."""

    def __init__(self) -> None:
        self._used: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def claim(self, checkin: Checkin, *, now: datetime | None = None) -> None:
        """Mark `checkin` used.

        Raises:
            CheckinError: It was used before.
        """
        now = now or datetime.now(UTC)
        with self._lock:
            self._used = {n: t for n, t in self._used.items() if t > now}
            if checkin.nonce in self._used:
                msg = "check-in code already used; ask staff for a new one"
                raise CheckinError(msg)
            self._used[checkin.nonce] = checkin.expires_at
