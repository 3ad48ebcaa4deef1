"""Junction sessions survive a restart, rotate atomically, and never leak into logs."""

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from gateway.store import DATABASE_FILENAME, open_database
from gateway.store.credentials import SqliteTokenStore
from sync.junction.auth import UserTokens

EXPIRES = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def _tokens(n: int) -> UserTokens:
    return UserTokens(
        access_token=SecretStr(f"access-{n}"),
        refresh_token=SecretStr(f"refresh-{n}"),
        expires_at=EXPIRES + timedelta(hours=n),
    )


async def test_sessions_survive_reopening_and_rotate(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    path = tmp_path / DATABASE_FILENAME
    db = open_database(path)
    store = SqliteTokenStore(db)
    with caplog.at_level(logging.DEBUG):
        await store.put("alice", _tokens(1))
        await store.put("alice", _tokens(2))  # a refresh rotates both tokens
    db.close()

    again = SqliteTokenStore(open_database(path))
    got = await again.get("alice")
    assert got is not None
    assert got.access_token.get_secret_value() == "access-2"
    assert got.refresh_token.get_secret_value() == "refresh-2"
    assert got.expires_at == EXPIRES + timedelta(hours=2)
    assert await again.get("bob") is None
    assert "access-" not in caplog.text
    assert "refresh-" not in caplog.text


async def test_delete_purges_and_is_idempotent(tmp_path: Path):
    store = SqliteTokenStore(open_database(tmp_path / DATABASE_FILENAME))
    await store.put("alice", _tokens(1))
    await store.delete("alice")
    await store.delete("alice")
    assert await store.get("alice") is None
