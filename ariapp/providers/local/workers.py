"""One worker thread per local model family, shared by every call of the process.

Inference (whisper, piper) runs off the event loop; one thread per family keeps a synthesis from
queueing behind a recognition and the reverse, while each model runs one job at a time.

A worker may run at a lower CPU priority (``nice``): the recogniser that transcribes phone-to-phone
calls for the record runs at nice 19 beside the one that answers callers at nice 0, so on a busy
machine the kernel gives the CPU to the caller waiting for an answer (Linux applies a nice value
per thread).
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

_WORKERS: dict[str, ThreadPoolExecutor] = {}
_LOCK = threading.Lock()


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
