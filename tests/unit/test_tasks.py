"""A call's background tasks: stopping one (ariapp.tasks.cancel_and_wait) and the scope they all run in
(ariapp.tasks.TaskScope). On virtual time (tests/virtual_time.py): a 60 s sleep costs nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import pytest

from ariapp.tasks import TaskScope, cancel_and_wait
from tests.virtual_time import event_loop_policy  # noqa: F401 - every test here runs on virtual time


async def test_a_running_task_is_cancelled_and_waited_for() -> None:
    cleaned_up = asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            cleaned_up.set()

    task = asyncio.ensure_future(work())
    await asyncio.sleep(0)

    assert await cancel_and_wait(task) is True
    assert task.cancelled() and cleaned_up.is_set()


async def test_the_waiters_own_cancellation_is_not_swallowed() -> None:
    # the trap of `with suppress(CancelledError, Exception): await task`: the hang-up cancels the
    # session while it waits for a child that takes a moment to stop, and the session carries on
    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0.2)

    async def old_habit(child: asyncio.Task) -> str:
        child.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await child
        return "carried on"

    async def new_habit(child: asyncio.Task) -> str:
        await cancel_and_wait(child)
        return "carried on"

    outcomes = []
    for habit in (old_habit, new_habit):
        child = asyncio.ensure_future(slow_to_stop())
        await asyncio.sleep(0)
        waiter = asyncio.ensure_future(habit(child))
        await asyncio.sleep(0.05)
        waiter.cancel()  # the call hangs up meanwhile
        await asyncio.wait({waiter})
        outcomes.append("cancelled" if waiter.cancelled() else waiter.result())
        await asyncio.wait({child})

    assert outcomes == ["carried on", "cancelled"]


async def test_a_failed_task_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise RuntimeError("model crashed")

    task = asyncio.ensure_future(broken())
    await asyncio.sleep(0)

    with caplog.at_level(logging.WARNING, logger="ariapp.tasks"):
        assert await cancel_and_wait(task) is True

    assert "model crashed" in caplog.text


async def test_a_task_that_will_not_stop_is_reported_after_the_grace() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await release.wait()

    task = asyncio.ensure_future(stubborn())
    await asyncio.sleep(0)

    assert await cancel_and_wait(task, 0.05) is False
    assert not task.done()
    release.set()
    await task


async def test_nothing_to_stop() -> None:
    assert await cancel_and_wait(None) is True
    done = asyncio.ensure_future(asyncio.sleep(0))
    await done
    assert await cancel_and_wait(done) is True


async def test_closing_the_scope_cancels_and_waits_for_every_task_it_started() -> None:
    cleaned_up: list[str] = []

    async def work(name: str) -> None:
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0.1)  # takes a moment to stop: close() waits for it
            cleaned_up.append(name)

    async with TaskScope("call") as scope:
        first, second = scope.spawn(work("stt"), "stt"), scope.spawn(work("filler"), "filler")
        await asyncio.sleep(0)
        assert len(scope) == 2 and first.get_name() == "call:stt"

    assert sorted(cleaned_up) == ["filler", "stt"] and first.cancelled() and second.cancelled()
    assert len(scope) == 0


async def test_one_task_failing_neither_stops_the_others_nor_hides_its_error_from_its_awaiter() -> None:
    async def guess() -> str:
        raise RuntimeError("recogniser crashed")

    async with TaskScope("call") as scope:
        failed = scope.spawn(guess(), "speculative-stt")
        reply = scope.spawn(asyncio.sleep(1, result="answered"), "reply")
        with pytest.raises(RuntimeError, match="recogniser crashed"):
            await failed
        assert await reply == "answered"  # the caller is answered all the same


async def test_the_closers_own_cancellation_is_not_swallowed() -> None:
    scope = TaskScope("call", grace_s=5.0)

    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(1)

    scope.spawn(slow_to_stop(), "slow")
    await asyncio.sleep(0)
    closing = asyncio.ensure_future(scope.close())
    await asyncio.sleep(0.1)
    closing.cancel()  # the hang-up cancels whoever is closing
    with pytest.raises(asyncio.CancelledError):
        await closing


async def test_a_closed_scope_starts_nothing_more() -> None:
    scope = TaskScope("call")
    assert not scope.closed
    await scope.close()
    assert scope.closed  # a call being torn down says so to whoever would start something in it
    work = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="closed"):
        scope.spawn(work, "late")


async def test_virtual_time_jumps_over_sleeps_but_waits_for_real_work_in_threads() -> None:
    loop = asyncio.get_running_loop()
    started, wall = loop.time(), time.monotonic()
    await asyncio.sleep(3600)
    assert loop.time() - started == pytest.approx(3600) and time.monotonic() - wall < 5
    # a thread's real work is not skipped by a timer that would otherwise fire first
    assert await asyncio.wait_for(asyncio.to_thread(lambda: time.sleep(0.05) or "done"), 0.5) == "done"
