"""Virtual time for asyncio tests: the loop's clock jumps to its next timer whenever nothing is ready.

A conversation test lives on timers (a 20 ms media tick, fake providers that "take" 50 ms, a 0.7 s
hold, a 20 s reply budget). On the real clock it either crawls or, ticking faster than real time to
save wall time, races the machine's load and flakes. On this loop ``loop.time()`` is a number the
loop itself advances: when no callback is ready and no socket or thread has work in flight, it
jumps straight to the next timer. ``asyncio.sleep``, ``asyncio.timeout``, ``wait_for`` and
``wait(timeout=...)`` all read that clock, so a test sees the exact order and spacing of events it
would see in a quiet real call, in milliseconds of wall time, whatever else the machine is doing.

Real work still takes real time: while a socket is registered (the fake OpenAI server's HTTP
connection) or a thread started with ``run_in_executor``/``to_thread`` has not finished, the loop
waits for it on the real clock and advances virtual time by what really passed.

Use: code under test must read the loop's clock (``asyncio.get_running_loop().time``), never
``time.monotonic``; a module opts in with ``from tests.virtual_time import event_loop_policy``
(pytest-asyncio creates each test's loop from that fixture).
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Callable
from typing import Any

import pytest

__all__ = ["VirtualTimeLoop", "event_loop_policy"]

START = 1000.0  # not 0: code that treats a zero time as "unset" must not be fooled


class _JumpingSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """The loop's selector: polls without blocking, then jumps or, with real work pending, waits."""

    def __init__(self, loop_state: VirtualTimeLoop) -> None:
        super().__init__()
        self._state = loop_state

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        # The loop's own wake-up pipe is always registered; anything more is real I/O in flight.
        real_io = len(self.get_map()) > 1 or self._state.threads_running > 0
        if timeout is None or real_io:
            started = time.monotonic()
            ready = super().select(timeout)
            self._state.advance(time.monotonic() - started)
            return ready
        self._state.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose clock is virtual (see the module docstring)."""

    def __init__(self) -> None:
        self._now = START
        self.threads_running = 0
        super().__init__(selector=_JumpingSelector(self))

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += max(0.0, seconds)

    def run_in_executor(self, executor: Any, func: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        future = super().run_in_executor(executor, func, *args)
        self.threads_running += 1

        def finished(_: asyncio.Future[Any]) -> None:
            self.threads_running -= 1

        future.add_done_callback(finished)
        return future


class VirtualTimePolicy(asyncio.DefaultEventLoopPolicy):  # type: ignore[misc,valid-type]
    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return VirtualTimeLoop()


@pytest.fixture
def event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
    """pytest-asyncio's hook: every test of a module that imports this runs on virtual time."""
    return VirtualTimePolicy()
