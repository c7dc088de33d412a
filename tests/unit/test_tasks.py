"""Stopping a call's background task (ariapp.tasks.cancel_and_wait)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from ariapp.tasks import cancel_and_wait


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
