import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest

from gateway.store import (
    DatabaseCorruptError,
    DatabaseLockedError,
    DatabaseReadOnlyError,
    DatabaseUnavailableError,
    ForeignDatabaseError,
    SchemaTooNewError,
    StoreError,
    open_database,
)
from gateway.store.db import translate_error
from gateway.store.readings import save_transfer
from tests.gateway.store.conftest import ZONE
from tests.sync.factories import glucose

REMEDY_WORDS = ("stop", "make", "check", "upgrade", "move", "point")


def _assert_clear(error: Exception, path: Path) -> None:
    message = str(error)
    assert message.startswith(str(path)), "the message leads with the file"
    assert any(word in message.split(";")[-1] for word in REMEDY_WORDS), "and ends with a remedy"


def test_pragmas_on_every_connection(db):
    with db.read() as session:
        conn = session.connection()
        pragma = lambda name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("synchronous") == 2  # FULL
        assert pragma("foreign_keys") == 1
        assert pragma("busy_timeout") == 5000


@pytest.mark.parametrize(
    "content",
    [b"this is not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 4080],
)
def test_a_garbage_file_is_refused_and_left_byte_identical(tmp_path, content):
    path = tmp_path / "gateway.sqlite3"
    path.write_bytes(content)
    with pytest.raises(DatabaseCorruptError) as caught:
        open_database(path)
    _assert_clear(caught.value, path)
    assert "corrupt" in str(caught.value)
    assert path.read_bytes() == content


def test_a_damaged_page_is_refused_and_the_file_kept(tmp_path):
    path = tmp_path / "gateway.sqlite3"
    db = open_database(path)
    save_transfer(db, [glucose(i) for i in range(1, 400)], zone=ZONE)
    db.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    for page in range(2, len(data) // page_size, 2):  # scribble over every other b-tree page
        data[page * page_size + 8 : page * page_size + 64] = b"\xa5" * 56
    path.write_bytes(bytes(data))
    with pytest.raises(DatabaseCorruptError) as caught:
        open_database(path)
    _assert_clear(caught.value, path)
    assert path.read_bytes() == bytes(data)


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "gateway.sqlite3"
    open_database(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    before = path.read_bytes()
    with pytest.raises(SchemaTooNewError) as caught:
        open_database(path)
    _assert_clear(caught.value, path)
    assert "99" in str(caught.value)
    assert path.read_bytes() == before


def test_a_database_locked_by_another_process_at_open(tmp_path):
    path = tmp_path / "gateway.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE other (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(DatabaseLockedError) as caught:
            open_database(path, busy_timeout_s=0.2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    _assert_clear(caught.value, path)
    assert "locked" in str(caught.value)


def test_a_write_lock_held_too_long_gives_a_locked_error(tmp_path):
    path = tmp_path / "gateway.sqlite3"
    db = open_database(path, busy_timeout_s=0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DatabaseLockedError):
            save_transfer(db, [glucose(1)], zone=ZONE)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert save_transfer(db, [glucose(1)], zone=ZONE).new == 1
    db.close()


def test_sqlite_read_only_errors_translate(tmp_path):
    path = tmp_path / "gateway.sqlite3"
    open_database(path).close()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.OperationalError) as caught:
            conn.execute("INSERT INTO app_user (user_id, created_at) VALUES ('u', 'now')")
    finally:
        conn.close()
    error = translate_error(caught.value, path)
    assert isinstance(error, DatabaseReadOnlyError)
    _assert_clear(error, path)


def _open_as_nobody(path: Path) -> tuple[str, str]:
    """Open `path` in a forked child that dropped root (root ignores file permissions)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report the outcome through the pipe, then leave at once
        try:
            os.setgid(65534)
            os.setuid(65534)
            open_database(path).close()
            outcome = "opened\n"
        except StoreError as exc:
            outcome = f"{type(exc).__name__}\n{exc}"
        except BaseException as exc:  # noqa: BLE001 - anything else is reported, not raised
            outcome = f"unexpected {type(exc).__name__}\n{exc}"
        os.write(write_end, outcome.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read().decode()
    os.waitpid(pid, 0)
    name, _, message = data.partition("\n")
    return name, message


def test_a_read_only_file_is_refused_and_kept():
    # Not under tmp_path: pytest's base directory is private to root.
    directory = Path(tempfile.mkdtemp(prefix="gateway-ro-"))
    try:
        path = directory / "gateway.sqlite3"
        db = open_database(path)
        save_transfer(db, [glucose(1)], zone=ZONE)
        db.close()
        before = path.read_bytes()
        path.chmod(0o444)
        directory.chmod(0o555)
        if os.geteuid() == 0:
            name, message = _open_as_nobody(path)
        else:
            try:
                open_database(path).close()
                name, message = "opened", ""
            except StoreError as exc:
                name, message = type(exc).__name__, str(exc)
        assert name in {"DatabaseReadOnlyError", "DatabaseUnavailableError"}, message
        assert message.startswith(str(path))
        assert "writable" in message.split(";")[-1]
        assert path.read_bytes() == before
    finally:
        directory.chmod(0o755)
        shutil.rmtree(directory)


def test_a_directory_in_place_of_the_file(tmp_path):
    path = tmp_path / "gateway.sqlite3"
    path.mkdir()
    with pytest.raises(DatabaseUnavailableError) as caught:
        open_database(path)
    _assert_clear(caught.value, path)


@pytest.mark.parametrize(
    "setup",
    ["CREATE TABLE notes (text)", "PRAGMA application_id = 1234"],
)
def test_another_applications_database_is_not_taken_over(tmp_path, setup):
    path = tmp_path / "gateway.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(setup)
    before = path.read_bytes()
    with pytest.raises(ForeignDatabaseError) as caught:
        open_database(path)
    _assert_clear(caught.value, path)
    assert path.read_bytes() == before


def test_a_new_database_is_private_to_its_owner(tmp_path):
    path = tmp_path / "data" / "gateway.sqlite3"
    db = open_database(path)
    save_transfer(db, [glucose(1)], zone=ZONE)
    for file in path.parent.iterdir():
        assert file.stat().st_mode & 0o077 == 0, file.name
    assert path.parent.stat().st_mode & 0o077 == 0
    db.close()
