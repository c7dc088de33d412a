"""Ending a call's background tasks the one right way.

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
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["cancel_and_wait"]


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
