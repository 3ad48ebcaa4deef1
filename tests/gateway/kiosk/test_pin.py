"""The staff PIN hash: scrypt, salted, verified in constant time, its format checked."""

import pytest

from gateway.kiosk.pin import PinFormatError, check_hash_format, hash_pin, verify_pin


def test_a_pin_verifies_against_its_own_hash_only() -> None:
    first, second = hash_pin("2468"), hash_pin("2468")
    assert first != second  # a fresh salt each time
    assert first.startswith("scrypt$14$8$1$")
    assert "2468" not in first
    assert verify_pin("2468", first)
    assert verify_pin("2468", second)
    for wrong in ("2469", "02468", "", "2468 ", "abcd"):
        assert not verify_pin(wrong, first)


@pytest.mark.parametrize("pin", ["123", "1234567890123", "12a4", "", " 1234", "١٢٣٤"])
def test_only_4_to_12_ascii_digits_make_a_pin(pin: str) -> None:
    with pytest.raises(PinFormatError, match="4 to 12 digits"):
        hash_pin(pin)


@pytest.mark.parametrize(
    "stored",
    [
        "1234",
        "scrypt$14$8$1$salt$key",
        "pbkdf2$14$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        # Asks for 2^20 * 8 * 128 bytes = 1 GiB: would fail (or hang) at every unlock.
        "scrypt$20$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "scrypt$14$8$9$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_a_hash_not_made_by_set_pin_is_refused(stored: str) -> None:
    with pytest.raises(PinFormatError, match="kiosk set-pin"):
        check_hash_format(stored)
    with pytest.raises(PinFormatError):
        verify_pin("1234", stored)
