"""The gateway's periodic jobs (`gateway.jobs.build_scheduler`)."""

from types import SimpleNamespace

from gateway import jobs


async def _wake() -> None:
    return None


async def _catch_up() -> int:
    return 0


def test_run_catches_up_the_change_order_on_a_one_second_timer() -> None:
    outbox = SimpleNamespace(catch_up=_catch_up)
    gateway = SimpleNamespace(uploader=SimpleNamespace(wake=_wake), outbox=outbox)
    scheduler = jobs.build_scheduler(gateway)  # type: ignore[arg-type]
    [job] = [j for j in scheduler.get_jobs() if j.func is outbox.catch_up]
    assert job.trigger.interval.total_seconds() == jobs.CATCH_UP_EVERY_S == 1.0
