"""A call's background tasks: started in one scope, ended the one right way.

``task.cancel()`` followed by ``with suppress(CancelledError, Exception): await task`` was the
habit in several places, and it has a trap: when the *waiting* task is itself cancelled (the call's
hang-up cancels its session) while it awaits the cancelled one, the suppress swallows that
cancellation too, and the waiter carries on as if nothing had happened. :func:`cancel_and_wait`
cancels, then waits with :func:`asyncio.wait`, which never raises the task's own outcome but does
let the waiter's cancellation through; a task that failed is logged, not re-raised, and its
exception is marked as retrieved so asyncio does not complain about it later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = ["TaskScope", "cancel_and_wait"]


async def cancel_and_wait(task: asyncio.Future[Any] | None, grace_s: float | None = None) -> bool:
    """Cancel ``task`` (if it has not ended) and wait up to ``grace_s`` seconds for it to end.

    Returns whether it has ended. Its result, its cancellation and its failure are all swallowed (a
    failure is logged); the *caller's* cancellation is not: it propagates as usual.
    """
    if task is None:
        return True
    if not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=grace_s)
    if not task.done():
        log.warning("task %r did not end within %.1f s of being cancelled", task, grace_s or 0.0)
        return False
    if not task.cancelled() and task.exception() is not None:
        log.warning("task %r failed while being stopped: %r", task, task.exception())
    return True


class TaskScope:
    """The tasks one call runs beside its main loop: each started by name (:meth:`spawn`), all
    cancelled and awaited when the scope closes, so none outlives the call.

    Like :class:`asyncio.TaskGroup`, no task escapes the scope, and a task's own outcome reaches
    whoever awaits it. Unlike it, one task failing does not cancel the rest: a failed guess (a
    speculative recognition, an end-of-turn model) must never hang up on the caller. Closing waits
    with :func:`asyncio.wait`, as :func:`cancel_and_wait` does: the closer's own cancellation still
    propagates, and a task's failure is logged, not raised.
    """

    def __init__(self, name: str, grace_s: float = 2.0) -> None:
        self.name = name
        self.grace_s = grace_s
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        """Run ``coro`` as a task of this scope (named ``<scope>:<name>`` in logs and dumps)."""
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self.name} is closed: {name} cannot start")
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.name}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def closed(self) -> bool:
        """Whether the scope has closed (or is closing): nothing more may start in it."""
        return self._closed

    def __len__(self) -> int:
        """How many tasks are running."""
        return len(self._tasks)

    async def close(self) -> None:
        """Cancel every task still running and wait for them all (each up to ``grace_s``)."""
        self._closed = True
        running = list(self._tasks)
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=self.grace_s)
        for task in running:
            if not task.done():
                log.warning("task %s did not end within %.1f s of being cancelled", task.get_name(), self.grace_s)
            elif not task.cancelled() and task.exception() is not None:
                log.warning("task %s failed while being stopped: %r", task.get_name(), task.exception())

    async def __aenter__(self) -> TaskScope:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
