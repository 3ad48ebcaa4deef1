import hashlib
import logging

from gateway.store.tokens import (
    TOKEN_PREFIX,
    Scope,
    create_token,
    list_tokens,
    revoke_token,
    verify_token,
)


def test_a_token_is_returned_once_and_stored_only_as_its_hash(db, caplog):
    with caplog.at_level(logging.DEBUG):
        token, info = create_token(db, Scope.ADMIN, label="kiosk tablet")
    assert token.startswith(TOKEN_PREFIX)
    assert len(token) > 40
    assert info.scope is Scope.ADMIN
    db.close()
    raw = b"".join(p.read_bytes() for p in db.path.parent.iterdir() if p.is_file())
    assert token.encode() not in raw
    assert hashlib.sha256(token.encode()).hexdigest().encode() in raw
    assert token not in caplog.text


def test_verify(db):
    read_token, _ = create_token(db, Scope.READ)
    admin_token, _ = create_token(db, Scope.ADMIN)
    assert verify_token(db, read_token) is Scope.READ
    assert verify_token(db, admin_token) is Scope.ADMIN
    assert verify_token(db, read_token + "x") is None
    assert verify_token(db, "") is None
    assert verify_token(db, "Bearer " + read_token) is None


def test_tokens_are_unique_and_revocable(db):
    tokens = {create_token(db, Scope.READ)[0] for _ in range(20)}
    assert len(tokens) == 20
    token, info = create_token(db, Scope.READ)
    assert revoke_token(db, info.id)
    assert not revoke_token(db, info.id)
    assert verify_token(db, token) is None
    assert [t.revoked_at is not None for t in list_tokens(db)].count(True) == 1


def test_a_token_created_or_revoked_elsewhere_counts_at_once(db):
    """The live-token map is reloaded after any commit, also another process's (issue 18)."""
    import sqlite3

    token, _ = create_token(db, Scope.READ)
    assert verify_token(db, token) is Scope.READ
    with sqlite3.connect(db.path) as other:  # as `edge-gateway token revoke` would
        other.execute("UPDATE api_token SET revoked_at = '2026-01-01T00:00:00.000000+00:00'")
    assert verify_token(db, token) is None
    with sqlite3.connect(db.path) as other:
        other.execute("UPDATE api_token SET revoked_at = NULL")
    assert verify_token(db, token) is Scope.READ
    db.close()  # the map's own connection closes with the database
