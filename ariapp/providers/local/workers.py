"""One worker thread per local model family, shared by every call of the process.

Inference (whisper, piper) runs off the event loop; one thread per family keeps a synthesis from
queueing behind a recognition and the reverse, while each model runs one job at a time.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

_WORKERS: dict[str, ThreadPoolExecutor] = {}
_LOCK = threading.Lock()


def worker(name: str) -> ThreadPoolExecutor:
    """The process-wide single-thread executor called ``name`` (created on first use)."""
    with _LOCK:
        if name not in _WORKERS:
            _WORKERS[name] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        return _WORKERS[name]
