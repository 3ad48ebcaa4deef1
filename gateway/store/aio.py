"""Calling the blocking store from the event loop.

The store's functions are plain blocking SQLAlchemy calls (simple, and correct under
SQLite's locking). The gateway's single event loop must never run them itself: it awaits
`call(fn, ...)`, which runs `fn` in a worker thread. A cancelled caller does not cancel the
thread: the transaction still commits or rolls back as a whole, so state stays consistent.
"""

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_T = TypeVar("_T")


async def call(fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Run a blocking store function in a worker thread and return its result.

    Example: ``result = await call(save_transfer, db, readings, zone=zone)``.

    Args:
        fn: A store function (it opens and closes its own transaction).
        *args: Its positional arguments.
        **kwargs: Its keyword arguments.

    Returns:
        What `fn` returned (its exceptions propagate unchanged).
    """
    return await asyncio.to_thread(fn, *args, **kwargs)
