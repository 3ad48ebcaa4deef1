"""Check-in codes: signed with the gateway's key (0600), short-lived, used once."""

import stat
from datetime import UTC, datetime, timedelta

import pytest

from gateway.kiosk.checkin import (
    KEY_FILENAME,
    CheckinBook,
    CheckinError,
    load_key,
    make_code,
    read_code,
)

NOW = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)


def test_the_key_is_made_once_with_mode_0600(tmp_path) -> None:
    key = load_key(tmp_path)
    assert len(key) == 32
    assert stat.S_IMODE((tmp_path / KEY_FILENAME).stat().st_mode) == 0o600
    assert load_key(tmp_path) == key
    (tmp_path / KEY_FILENAME).write_bytes(b"short")
    with pytest.raises(OSError, match="delete it"):
        load_key(tmp_path)


def test_a_code_says_who_for_how_long_until_when(tmp_path) -> None:
    key = load_key(tmp_path)
    code, made = make_code(
        key, "u-ada", ttl=timedelta(minutes=10), session_s=900, device="c0:ff:ee:00:00:02", now=NOW
    )
    assert len(code) < 200  # fits a small QR code
    read = read_code(key, code, now=NOW + timedelta(minutes=9))
    assert read == made
    assert (read.user_id, read.device, read.session_s) == ("u-ada", "C0:FF:EE:00:00:02", 900)
    assert read.expires_at == NOW + timedelta(minutes=10)
    with pytest.raises(CheckinError, match="expired"):
        read_code(key, code, now=NOW + timedelta(minutes=10))


def test_forged_and_mangled_codes_are_refused(tmp_path) -> None:
    key = load_key(tmp_path)
    code, _ = make_code(key, "u-ada", ttl=timedelta(minutes=10), session_s=900, now=NOW)
    payload, _, signature = code.partition(".")
    other, _ = make_code(b"o" * 32, "u-ada", ttl=timedelta(minutes=10), session_s=900, now=NOW)
    for bad in (
        other,  # another gateway's key
        f"{payload}x.{signature}",  # payload changed
        f"{payload}.{signature[:-2]}AA",  # signature changed
        payload,
        "",
        ".",
        "a" * 600,
    ):
        with pytest.raises(CheckinError):
            read_code(key, bad, now=NOW)


def test_a_code_is_used_once(tmp_path) -> None:
    key = load_key(tmp_path)
    book = CheckinBook()
    code, _ = make_code(key, "u-ada", ttl=timedelta(minutes=10), session_s=900, now=NOW)
    book.claim(read_code(key, code, now=NOW), now=NOW)
    with pytest.raises(CheckinError, match="already used"):
        book.claim(read_code(key, code, now=NOW), now=NOW)
    fresh, _ = make_code(key, "u-ada", ttl=timedelta(minutes=10), session_s=900, now=NOW)
    book.claim(read_code(key, fresh, now=NOW), now=NOW)
