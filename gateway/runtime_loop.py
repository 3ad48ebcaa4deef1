"""`edge-gateway run`'s event loop: a teardown that cannot hang, and where each task waits.

`run_bounded` is `asyncio.run` with a bounded teardown; `dump_tasks` is what `kill -QUIT` prints.

`asyncio.run` ends by cancelling every task still pending and waiting for all of them, with no
bound. A task whose cancellation waits on a peer that is gone (a D-Bus call to a BlueZ that
stopped, inside a library's cleanup) would keep `edge-gateway run` from ever exiting after it
has logged "stopped", and systemd would see a hung stop instead of a failure. Here that wait is
bounded; tasks still pending after it are named in one warning and left to the process's exit.
"""

import asyncio
import gc
import logging
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

_LOGGER = logging.getLogger(__name__)

_T = TypeVar("_T")

# How long the teardown waits for the tasks it cancelled.
TEARDOWN_S = 5.0


def run_bounded(main: Coroutine[Any, Any, _T], *, teardown_s: float = TEARDOWN_S) -> _T:
    """Run `main` on a new event loop as `asyncio.run` does; its teardown waits ≤ `teardown_s`.

    Returns:
        What `main` returned.

    Raises:
        Whatever `main` raised.
    """
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_leftovers(loop, teardown_s)
            loop.run_until_complete(_bounded(loop.shutdown_asyncgens(), teardown_s))
            loop.run_until_complete(_bounded(loop.shutdown_default_executor(), teardown_s))
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_leftovers(loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
    tasks = asyncio.all_tasks(loop)
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    done, stuck = loop.run_until_complete(asyncio.wait(tasks, timeout=timeout_s))
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            # As `asyncio.run` does: a failure no one awaited is reported, not lost.
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )
    if stuck:
        _LOGGER.warning(
            "%d task(s) did not end within %g s of being cancelled (%s); exiting without them",
            len(stuck),
            timeout_s,
            ", ".join(sorted(task.get_name() for task in stuck)),
        )


async def _bounded(work: Coroutine[Any, Any, None], timeout_s: float) -> None:
    try:
        await asyncio.wait_for(work, timeout_s)
    except TimeoutError:
        _LOGGER.warning("event loop shutdown step did not finish within %g s", timeout_s)


def dump_tasks() -> None:
    """Print where every task of the running loop waits, outermost call first, to stderr.

    `Task.print_stack` shows a suspended task's own coroutine only; the `await` chain
    (``cr_await``, ``ag_await``, ``gi_yieldfrom``) below it is where it is stuck.
    """
    lines: list[str] = []
    for task in asyncio.all_tasks():
        lines.append(f"Task {task.get_name()} waits in:")
        awaited: object = task.get_coro()
        for _ in range(100):  # a chain is a few dozen deep; a cycle must not hang the dump
            frame = next(
                (
                    f
                    for a in ("cr_frame", "ag_frame", "gi_frame")
                    if (f := getattr(awaited, a, None))
                ),
                None,
            )
            if frame is None and awaited is not None:
                # An async generator's `asend` (an `async for`, an async context manager)
                # names its generator only to the garbage collector.
                gen = next((r for r in gc.get_referents(awaited) if hasattr(r, "ag_frame")), None)
                if gen is not None:
                    awaited = gen
                    continue
            if frame is None:
                if awaited is not None:
                    lines.append(f"  awaiting {awaited!r}"[:300])
                break
            lines.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
            awaited = next(
                (
                    nxt
                    for a in ("cr_await", "ag_await", "gi_yieldfrom")
                    if (nxt := getattr(awaited, a, None)) is not None
                ),
                None,
            )
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()
