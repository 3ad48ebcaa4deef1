"""SIGKILL the writer at random moments; every committed transfer must survive exactly once."""

import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.gateway.store.crash_writer import PER_TRANSFER, transfer

ROOT = Path(__file__).resolve().parents[3]
KILLS = 20


def _run_and_kill(db_path: Path, rng: random.Random, *, during_startup: bool) -> list[int]:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.gateway.store.crash_writer", str(db_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    lines: list[str] = []
    buffer = b""
    deadline = None
    if during_startup:
        deadline = time.monotonic() + rng.uniform(0.0, 0.7)
    while True:
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            break
        timeout = 0.05 if deadline is None else max(0.0, deadline - now)
        ready, _, _ = select.select([child.stdout], [], [], timeout)
        if ready:
            chunk = os.read(child.stdout.fileno(), 65536)
            if not chunk:
                break
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            lines.extend(line.decode() for line in complete)
            if deadline is None and "ready" in lines:
                deadline = time.monotonic() + rng.uniform(0.0, 0.25)
    child.send_signal(signal.SIGKILL)
    rest, _ = child.communicate()
    # Lines the child flushed before dying were committed before they were printed.
    everything = (buffer + rest).decode().split("\n") + lines
    committed = [int(line.split()[1]) for line in everything if line.startswith("committed ")]
    assert child.returncode == -signal.SIGKILL
    return committed


def _check(db_path: Path, must_have: set[int]) -> int:
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        if conn.execute("PRAGMA user_version").fetchone()[0] < 2:
            assert not must_have, "killed during the first migration, before any commit"
            return 0
        ids = [row[0] for row in conn.execute("SELECT id FROM reading")]
        outbox = [row[0] for row in conn.execute("SELECT reading_id FROM outbox_item")]
        row = conn.execute("SELECT last_sequence FROM device").fetchone()
    last = (row[0] or 0) if row else 0
    assert len(ids) == len(set(ids)), "a reading stored twice"
    assert sorted(outbox) == sorted(ids), "every attributed reading queued exactly once"
    # The cursor moved in the transfers' own transactions: exactly transfers 1..last exist.
    expected = {r.id for n in range(1, last + 1) for r in transfer(n)}
    assert set(ids) == expected
    assert len(ids) == last * PER_TRANSFER
    assert must_have <= set(range(1, last + 1)), "a committed transfer was lost"
    return last


def test_kill_9_at_random_moments_loses_and_doubles_nothing(tmp_path):
    db_path = tmp_path / "gateway.sqlite3"
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    committed: set[int] = set()
    started = time.monotonic()
    for kill in range(KILLS):
        committed.update(_run_and_kill(db_path, rng, during_startup=kill % 4 == 0))
        if db_path.exists():
            _check(db_path, committed)
    assert time.monotonic() - started < 45
    assert committed, "the writer never got to commit anything"
    last = _check(db_path, committed)
    assert last >= max(committed)
    print(f"{KILLS} kills, {len(committed)} transfers acknowledged, {last} stored")  # noqa: T201
