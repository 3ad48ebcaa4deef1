"""The staff PIN, kept only as an scrypt hash (`[kiosk] staff_pin_hash`).

Format: ``scrypt$<log2 n>$<r>$<p>$<salt, base64url>$<key, base64url>``. scrypt is the
standard library's memory-hard KDF (`hashlib.scrypt`, RFC 7914); n=2^14, r=8, p=1 is the
RFC's interactive-login example and takes ~50 ms on a Raspberry Pi 4, so guessing is slow
even before the server-side lockout (`gateway.kiosk.staff`). A short PIN is still a small
space: the lockout, not the hash, is what stops guessing at the kiosk.
"""

import base64
import hashlib
import hmac
import re
import secrets

_LOG2_N = 14
_R = 8
_P = 1
_KEY_BYTES = 32
_SALT_BYTES = 16
_MAXMEM = 64 * 1024 * 1024
_FORMAT = re.compile(
    r"^scrypt\$(?P<log2n>\d{1,2})\$(?P<r>\d{1,2})\$(?P<p>\d{1,2})\$"
    r"(?P<salt>[A-Za-z0-9_-]{16,64})\$(?P<key>[A-Za-z0-9_-]{32,128})$"
)
PIN_RULE = re.compile(r"^[0-9]{4,12}$")


class PinFormatError(ValueError):
    """A PIN or a stored hash that is not in the expected form."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_pin_rule(pin: str) -> None:
    """Raise `PinFormatError` unless `pin` is 4 to 12 digits (a kiosk keypad has digits only)."""
    if not PIN_RULE.match(pin):
        msg = "the staff PIN must be 4 to 12 digits"
        raise PinFormatError(msg)


def hash_pin(pin: str) -> str:
    """The `[kiosk] staff_pin_hash` value for `pin` (a fresh random salt each time).

    Raises:
        PinFormatError: `pin` is not 4 to 12 digits.
    """
    check_pin_rule(pin)
    salt = secrets.token_bytes(_SALT_BYTES)
    key = hashlib.scrypt(
        pin.encode(), salt=salt, n=2**_LOG2_N, r=_R, p=_P, maxmem=_MAXMEM, dklen=_KEY_BYTES
    )
    return f"scrypt${_LOG2_N}${_R}${_P}${_b64(salt)}${_b64(key)}"


def check_hash_format(stored: str) -> re.Match[str]:
    """Raise `PinFormatError` (naming the remedy) unless `stored` is a hash `hash_pin` makes.

    Cost parameters are bounded too: a hash asking for more memory than `hash_pin` allows
    would fail at every unlock.
    """
    match = _FORMAT.match(stored)
    ok = match is not None and 10 <= int(match["log2n"]) <= 20 and int(match["r"]) >= 1
    if ok and match is not None:
        memory = 128 * int(match["r"]) * 2 ** int(match["log2n"])
        ok = memory <= _MAXMEM // 2 and 1 <= int(match["p"]) <= 4
    if not ok or match is None:
        msg = "not a PIN hash made by `edge-gateway kiosk set-pin`; run it again"
        raise PinFormatError(msg)
    return match


def verify_pin(pin: str, stored: str) -> bool:
    """Whether `pin` matches `stored` (constant-time compare; blocking, ~50 ms).

    Raises:
        PinFormatError: `stored` is not a hash `hash_pin` makes.
    """
    match = check_hash_format(stored)
    if not PIN_RULE.match(pin):
        return False
    expected = _unb64(match["key"])
    key = hashlib.scrypt(
        pin.encode(),
        salt=_unb64(match["salt"]),
        n=2 ** int(match["log2n"]),
        r=int(match["r"]),
        p=int(match["p"]),
        maxmem=_MAXMEM,
        dklen=len(expected),
    )
    return hmac.compare_digest(key, expected)
