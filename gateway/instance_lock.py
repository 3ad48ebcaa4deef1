"""One gateway per data directory: an exclusive `flock` on `<data_dir>/gateway.lock`.

Two gateways on one store would both read the same meters and upload the same outbox. The
lock is taken before the store is opened and held for the life of the process; the kernel
drops it when the process dies, however it dies (flock(2)), so a stale file never blocks a
restart. The file holds the holder's PID, for the refusal message only.
"""

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_FILENAME = "gateway.lock"


class InstanceLockedError(Exception):
    """Another process holds the data directory; the message names it and the remedy."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        holder = f"PID {pid}" if pid is not None else "a process whose PID is not recorded yet"
        super().__init__(
            f"{data_dir} is in use by another edge-gateway ({holder}); "
            "stop it first, or give this one its own data_dir"
        )
        self.pid = pid


def _recorded_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


@contextlib.contextmanager
def hold(data_dir: Path) -> Iterator[Path]:
    """Hold the data directory's lock for the `with` block; yields the lock file's path.

    Creates `data_dir` (mode 0700) if needed.

    Raises:
        InstanceLockedError: Another process holds the lock.
        OSError: The directory or lock file cannot be created.
    """
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = data_dir / LOCK_FILENAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InstanceLockedError(data_dir, _recorded_pid(path)) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        yield path
    finally:
        os.close(fd)  # closing the only descriptor releases the lock
