"""Readings received but not yet saved, kept in a file when the gateway must stop.

A cuff or scale forgets a record once BlueZ has confirmed its indication, so what the
collector holds in memory when the database cannot take it (locked past the busy timeout,
disk full) is the only copy. If the process has to stop before the store takes it, the
readings are written here — one JSON line each (`codec.reading_to_json`), fsync'd, mode
0600 beside the database — and the next start saves them (`import_spool`) before reading
any device. Saving is idempotent by stable id, so a spool saved twice doubles nothing.
"""

import contextlib
import json
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from drivers.readings import Reading
from gateway.store.codec import reading_from_json, reading_to_json
from gateway.store.db import Database
from gateway.store.readings import save_transfer

_LOGGER = logging.getLogger(__name__)

SUFFIX = ".jsonl"


def spool_dir(db: Database) -> Path:
    """``<database>.spool/`` beside the database file."""
    return db.path.with_name(db.path.name + ".spool")


def write_spool(db: Database, device: str, readings: Sequence[Reading]) -> Path:
    """Write `readings` to a new spool file (durable when this returns).

    Returns:
        The file written.

    Raises:
        OSError: The file could not be written (a full disk, too); nothing partial is left.
    """
    folder = spool_dir(db)
    folder.mkdir(mode=0o700, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    path = folder / f"{stamp}-{device.replace(':', '')}{SUFFIX}"
    partial = path.with_suffix(".partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            for reading in readings:
                out.write(json.dumps(reading_to_json(reading), sort_keys=True) + "\n")
            out.flush()
            os.fsync(out.fileno())
        partial.rename(path)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    return path


def import_spool(db: Database, *, zone: ZoneInfo) -> int:
    """Save every spooled reading, deleting each file once its readings are committed.

    A file that cannot be parsed is renamed ``*.bad`` (kept for a person, never retried in a
    loop); a store error leaves the file for the next start and propagates.

    Returns:
        How many readings were newly stored.

    Raises:
        StoreError: The database cannot be written now.
    """
    folder = spool_dir(db)
    if not folder.is_dir():
        return 0
    new = 0
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
            readings = [reading_from_json(json.loads(line)) for line in lines if line.strip()]
        except (OSError, ValueError) as exc:
            bad = path.with_suffix(".bad")
            path.rename(bad)
            _LOGGER.error(  # noqa: TRY400 - one line: the cause is in the message
                "%s: spool file unreadable (%s); kept as %s for inspection", path, exc, bad
            )
            continue
        result = save_transfer(db, readings, zone=zone)
        new += result.new
        path.unlink()
        _LOGGER.warning(
            "saved %d reading(s) spooled by an earlier run (%d new) from %s",
            len(readings),
            result.new,
            path.name,
        )
    return new
