"""Soft and hard time limits of Celery tasks, also in the solo pool (which ignores them).

Theory of operation
    Every task declares ``soft_time_limit`` and ``time_limit`` (and ``CELERY_TASK_SOFT_TIME_LIMIT`` /
    ``CELERY_TASK_TIME_LIMIT`` cover any that does not). Celery's prefork pool enforces them from its
    parent process; the solo pool, which the stack and compose run (one task at a time, and
    ``/metrics`` counts the tasks of the process that serves it), does not. So when a solo worker
    starts a task, :func:`install`'s handler arms ``SIGALRM``: at the soft limit the task gets
    :class:`~celery.exceptions.SoftTimeLimitExceeded` (it may clean up, record the failure and
    return), at the hard limit :class:`~celery.exceptions.TimeLimitExceeded`. Either way the task
    ends and, with ``task_acks_on_failure_or_timeout``, is acknowledged: it is not handed to the next
    worker an hour later.

    A signal reaches Python code and interrupts blocking system calls (sockets, sleeps), not one
    long call into C such as a backtracking regular expression: that is why the parsers of outside
    input must run in linear time (``aipbx.privacy``, ``knowledge.importing``).

    Limits come from the call (``apply_async(soft_time_limit=...)``), then the task, then the app.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from celery import Celery, Task, signals
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

__all__ = ["install", "limits_of"]

log = logging.getLogger(__name__)


class _Alarm:
    """The one task this (solo) process runs, and the limit its next ``SIGALRM`` stands for."""

    def __init__(self) -> None:
        self.enforce = False  # set when a solo worker starts in this process
        self.hard_after_soft: float | None = None  # seconds from the soft to the hard limit
        self.task_name = ""


_alarm = _Alarm()


def limits_of(task: Task) -> tuple[float | None, float | None]:
    """``(soft, hard)`` seconds for the running ``task``: the call's, else the task's, else the app's."""
    hard, soft = getattr(task.request, "timelimit", None) or (None, None)
    soft = soft or task.soft_time_limit or task.app.conf.task_soft_time_limit
    hard = hard or task.time_limit or task.app.conf.task_time_limit
    return soft, hard


def arm(task: Task) -> None:
    """Arm the alarm for ``task`` (main thread of a solo worker only; elsewhere the pool enforces)."""
    if not _alarm.enforce or threading.current_thread() is not threading.main_thread():
        return
    soft, hard = limits_of(task)
    first = soft or hard
    if not first:
        return
    _alarm.task_name = task.name
    _alarm.hard_after_soft = (hard - soft) if (soft and hard and hard > soft) else None
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, first)


def disarm() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.setitimer(signal.ITIMER_REAL, 0)
    _alarm.hard_after_soft = None


def _on_alarm(_signum: int, _frame: Any) -> None:
    if _alarm.hard_after_soft is not None:
        signal.setitimer(signal.ITIMER_REAL, _alarm.hard_after_soft)
        _alarm.hard_after_soft = None
        log.warning("task %s: soft time limit exceeded", _alarm.task_name)
        raise SoftTimeLimitExceeded()
    log.error("task %s: hard time limit exceeded", _alarm.task_name)
    raise TimeLimitExceeded()


def enforce_in_this_process(enforce: bool = True) -> None:
    """Arm alarms for the tasks this process runs (a solo worker, or a test running tasks eagerly)."""
    _alarm.enforce = enforce


def install(app: Celery) -> None:
    """Enforce the limits in a solo worker of ``app`` (the prefork pool enforces them itself)."""

    def on_worker_init(sender: Any = None, **_kw: Any) -> None:
        pool = getattr(sender, "pool_cls", "")
        name = pool if isinstance(pool, str) else f"{getattr(pool, '__module__', '')}.{getattr(pool, '__name__', '')}"
        enforce_in_this_process("solo" in name.lower())

    signals.worker_init.connect(on_worker_init, weak=False)
    signals.task_prerun.connect(lambda task=None, **_kw: arm(task) if task is not None else None, weak=False)
    signals.task_postrun.connect(lambda **_kw: disarm(), weak=False)
