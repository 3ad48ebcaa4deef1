"""The C allocator's share of `edge-gateway run`'s resident memory (issue 18: idle RSS).

A fact about GNU libc's malloc (mallopt(3); glibc manual, "Memory Allocation Tunables",
`glibc.malloc.arena_max`): a thread that finds the main heap busy gets an arena of its own,
up to 8 per core. The gateway's store calls run in the event loop's worker threads
(`gateway.store.aio`), and each of them grew an arena holding free memory no other thread
could reuse: ~1 MiB of `run`'s idle RSS in `bench/run_rss.py`. `M_ARENA_MAX` caps them; glibc
reads it when it would create an arena, so `limit_arenas` must run before the first worker
thread starts. Arenas are shared under a lock above the cap: the API's latency and the drain
rate did not change measurably with 2 (README, "Figures").

(`malloc_trim(0)` after start-up was measured too: 0.2 MiB once arenas are capped, within the
bench's noise, so it is not done.)

Outside glibc (musl, macOS) there is no such option: `limit_arenas` does nothing and returns
False. glibc is recognised by `os.confstr("CS_GNU_LIBC_VERSION")`, which only glibc answers.
"""

import ctypes
import logging
import os

_LOGGER = logging.getLogger(__name__)

M_ARENA_MAX = -8  # <malloc.h>
ARENAS = 2  # the event loop's thread plus one shared by every worker thread


def glibc_version() -> str | None:
    """GNU libc's version ("2.36"), or None when the C library is another one."""
    try:
        value = os.confstr("CS_GNU_LIBC_VERSION")  # "glibc 2.36"
    except (AttributeError, ValueError, OSError):  # no confstr, or a name libc does not know
        return None
    if not value or not value.startswith("glibc "):
        return None
    return value.split(" ", 1)[1]


def _libc() -> ctypes.CDLL | None:
    if glibc_version() is None:
        return None
    return ctypes.CDLL(None)  # the process's own symbols: libc is already loaded


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas at `arenas`; True if set (glibc), False elsewhere.

    Call before any thread starts: arenas already created stay.
    """
    libc = _libc()
    if libc is None:
        return False
    # mallopt returns 1 on success, 0 on error (mallopt(3)).
    done = bool(libc.mallopt(ctypes.c_int(M_ARENA_MAX), ctypes.c_int(arenas)))
    if not done:
        _LOGGER.debug("mallopt(M_ARENA_MAX, %d) refused", arenas)
    return done
