"""One worker thread per local model family, shared by every call of the process.

Inference (whisper, piper) runs off the event loop; one thread per family keeps a synthesis from
queueing behind a recognition and the reverse, while each model runs one job at a time.

A worker may run at a lower CPU priority (``nice``): the recogniser that transcribes phone-to-phone
calls for the record runs at nice 19 beside the one that answers callers at nice 0, so on a busy
machine the kernel gives the CPU to the caller waiting for an answer (Linux applies a nice value
per thread).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

_WORKERS: dict[str, ThreadPoolExecutor] = {}
_LOCK = threading.Lock()
_WAIT_OBSERVERS: list[Callable[[str, float], None]] = []
_PENDING: dict[str, int] = {}  # per lane: jobs submitted and not finished (queued or running)


def pending(lane: str) -> int:
    """Jobs of ``lane`` submitted and not yet finished: 0 means its worker is idle."""
    return _PENDING.get(lane, 0)


def observe_waits(callback: Callable[[str, float], None]) -> None:
    """Call ``callback(lane, seconds)`` each time a job starts, with how long it queued (metrics)."""
    _WAIT_OBSERVERS.append(callback)


class queued:  # noqa: N801 - used like a function: queued(lane, func)
    """``func`` for a worker, reporting on start how long it waited behind the jobs before it, and
    counted in :func:`pending` from its submission (now) until it finished; a job that never starts
    (cancelled while queued) is given back by :meth:`release`."""

    def __init__(self, lane: str, func: Callable[..., Any]) -> None:
        self.lane, self.func = lane, func
        self.started = self.done = False
        self._submitted = time.perf_counter()
        with _LOCK:
            _PENDING[lane] = _PENDING.get(lane, 0) + 1

    def __call__(self, *args: Any) -> Any:
        self.started = True
        waited = time.perf_counter() - self._submitted
        for callback in _WAIT_OBSERVERS:
            try:
                callback(self.lane, waited)
            except Exception:  # a metric must never fail a recognition
                log.exception("wait observer failed")
        try:
            return self.func(*args)
        finally:
            self.release()

    def release(self) -> None:
        """The job finished, or will never run (idempotent)."""
        with _LOCK:
            if not self.done:
                self.done = True
                _PENDING[self.lane] = max(0, _PENDING.get(self.lane, 0) - 1)


def _lower_priority(nice: int) -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError as exc:  # not permitted on this system: correct, only less polite to callers
        log.warning("could not lower the priority of worker thread %s: %s", threading.current_thread().name, exc)


def worker(name: str, nice: int = 0) -> ThreadPoolExecutor:
    """The process-wide single-thread executor called ``name`` (created on first use)."""
    with _LOCK:
        if name not in _WORKERS:
            initializer = (lambda: _lower_priority(nice)) if nice else None
            _WORKERS[name] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name, initializer=initializer)
        return _WORKERS[name]


class DeadlineLane:
    """A model family's jobs, one at a time on one thread, earliest deadline first.

    Every call of the process shares a voice. First come, first served let a caller who had heard
    nothing yet wait behind another caller's third sentence, due seconds later (the first one was
    still playing). Here each job says when its audio is needed (``deadline``, on
    ``time.monotonic()``'s scale): a reply's first sentence since its caller stopped talking, a later
    one when the audio before it runs out; the earliest waiting job runs next.

    One thread: on this 2-core host a second copy of the voice on a thread of its own (used while the
    first is busy) made callers wait longer, not shorter (docs/performance.md, "Conversation load").
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._heap: list[tuple[float, int, queued]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._busy = False
        self._thread: threading.Thread | None = None

    @property
    def idle(self) -> bool:
        """No job is running or waiting."""
        with self._cond:
            return not self._heap and not self._busy

    def submit(self, func: Callable[[], None], deadline: float | None = None) -> None:
        """Run ``func()`` on the lane's thread; ``deadline`` None: needed now (submission time)."""
        job = queued(self.name, func)
        due = time.monotonic() if deadline is None or not math.isfinite(deadline) else deadline
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (due, next(self._order), job))
            self._cond.notify()

    def _serve(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                _, _, job = heapq.heappop(self._heap)
                self._busy = True
            try:
                job()
            except Exception:  # a job reports its own errors; the lane must outlive it
                log.exception("job of lane %s failed", self.name)
            finally:
                with self._cond:
                    self._busy = False
