"""Prometheus metrics of the Celery worker, served by ``prometheus_client.start_http_server``.

``AIPBX_WORKER_METRICS_PORT`` (default 9101, ``0`` = off) on loopback (``AIPBX_WORKER_METRICS_ADDR``
to change). Tasks are counted from Celery's task signals, in the process that runs them: the stack runs
the worker with ``--pool=solo``, where that is the process serving ``/metrics``. (With the prefork pool
each child would count for itself; run Prometheus' multiprocess mode or a solo/threads pool instead.)

Labels: the registered task name (``other`` for anything not registered, so a forged message cannot
grow the label set) and the final state.

Readiness of the worker is ``celery -A webconsole inspect ping -d <node>`` (a control round trip
through Redis): it fails while the broker is unreachable and answers again once it is back.
"""

from __future__ import annotations

import logging
import os
import time

from celery import Celery, signals
from prometheus_client import Counter, Histogram, start_http_server

log = logging.getLogger(__name__)

TASKS = Counter("aipbx_worker_tasks", "Celery tasks finished, by task and state", ["task", "state"])
TASK_SECONDS = Histogram(
    "aipbx_worker_task_seconds",
    "Celery task run time, by task",
    ["task"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
STATES = frozenset({"SUCCESS", "FAILURE", "RETRY", "REVOKED", "REJECTED"})

_started: dict[str, float] = {}  # task id -> monotonic start (entries leave when the task ends)


def install(app: Celery) -> None:
    """Connect the task signals and start the metrics server when the worker starts."""

    def name_of(task) -> str:
        name = getattr(task, "name", None) or str(task)
        return name if name in app.tasks else "other"

    def prerun(task_id=None, task=None, **_kw) -> None:
        _started[task_id] = time.monotonic()

    def postrun(task_id=None, task=None, state=None, **_kw) -> None:
        started = _started.pop(task_id, None)
        name = name_of(task)
        if started is not None:
            TASK_SECONDS.labels(name).observe(time.monotonic() - started)
        TASKS.labels(name, state if state in STATES else "other").inc()

    def retried(request=None, sender=None, **_kw) -> None:
        TASKS.labels(name_of(sender), "RETRY").inc()

    def revoked(request=None, sender=None, **_kw) -> None:
        TASKS.labels(name_of(sender), "REVOKED").inc()

    signals.task_prerun.connect(prerun, weak=False)
    signals.task_postrun.connect(postrun, weak=False)
    signals.task_retry.connect(retried, weak=False)
    signals.task_revoked.connect(revoked, weak=False)
    signals.worker_init.connect(lambda **_kw: serve(), weak=False)


def serve() -> int | None:
    """Start the metrics server; a busy port is logged, never fatal (the worker matters more)."""
    port = int(os.environ.get("AIPBX_WORKER_METRICS_PORT", "9101") or 0)
    if port == 0:
        return None
    addr = os.environ.get("AIPBX_WORKER_METRICS_ADDR", "127.0.0.1")
    try:
        start_http_server(port, addr=addr)
    except OSError as exc:
        log.error("worker metrics server not started on %s:%d: %s", addr, port, exc)
        return None
    log.info("worker metrics on http://%s:%d/metrics", addr, port)
    return port
