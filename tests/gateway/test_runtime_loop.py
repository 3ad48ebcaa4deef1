"""`gateway.runtime_loop.run_bounded`: asyncio.run whose teardown cannot hang."""

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from gateway.runtime_loop import dump_tasks, run_bounded


def test_it_returns_what_main_returns_and_cancels_leftover_tasks():
    ended: list[str] = []

    async def leftover() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            ended.append("leftover")

    async def main() -> int:
        asyncio.get_running_loop().create_task(leftover())
        await asyncio.sleep(0)
        return 7

    assert run_bounded(main()) == 7
    assert ended == ["leftover"]


def test_it_raises_what_main_raises():
    async def main() -> None:
        msg = "gone"
        raise LookupError(msg)

    with pytest.raises(LookupError, match="gone"):
        run_bounded(main())


def test_a_task_that_ignores_its_cancellation_does_not_hold_the_exit(
    caplog: pytest.LogCaptureFixture,
):
    """As a library's cleanup waiting on a dead D-Bus peer; asyncio.run would wait forever."""

    async def deaf() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.Event().wait()

    async def main() -> None:
        asyncio.get_running_loop().create_task(deaf(), name="deaf")
        await asyncio.sleep(0)

    with caplog.at_level(logging.WARNING, logger="gateway.runtime_loop"):
        run_bounded(main(), teardown_s=0.05)
    assert "1 task(s) did not end within 0.05 s of being cancelled (deaf)" in caplog.text


def test_dump_tasks_prints_each_tasks_await_chain(capsys: pytest.CaptureFixture[str]):
    """Down through coroutines and async generators to the innermost wait."""

    async def innermost() -> None:
        await asyncio.Event().wait()

    async def stream() -> AsyncIterator[int]:
        yield 1
        await innermost()
        yield 2

    async def reader() -> None:
        async for _ in stream():
            pass

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(reader(), name="reader")
        await asyncio.sleep(0.01)
        dump_tasks()
        task.cancel()

    run_bounded(main())
    err = capsys.readouterr().err
    chain = err[err.index("Task reader waits in:") :].splitlines()[1:5]
    assert [line.rsplit(" ", 1)[-1] for line in chain] == [
        "reader",
        "stream",
        "innermost",
        "wait",
    ]
