"""The Celery app ("aipbx"), configured from Django settings under the ``CELERY_`` namespace.

Run a worker with ``celery -A webconsole worker``; tasks are discovered in each
installed app's ``tasks.py``. Two queues: the default one (``CELERY_TASK_DEFAULT_QUEUE``: webhook
deliveries, retention, small jobs) and its long one (:func:`aipbx.queues.long_queue`: imports,
transcription, extraction), each served by its own worker so that a webhook never waits behind a
ten-minute import (``-Q aipbx`` and ``-Q aipbx.long``; one worker may consume both in development).
Every task has soft and hard time limits, enforced in the solo pool too
(:mod:`webconsole.core.time_limits`). The worker logs through ``aipbx.logs`` (structured) and serves
Prometheus metrics on ``AIPBX_WORKER_METRICS_PORT`` (:mod:`webconsole.core.worker_metrics`).
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, signals

from aipbx.queues import LONG_TASKS, long_queue
from webconsole.core.time_limits import install as install_time_limits
from webconsole.core.worker_metrics import install as install_worker_metrics

# A worker started without DJANGO_SETTINGS_MODULE is taken to be a deployment
# and so must pass the prod checks (mandatory secret); dev sets the variable.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webconsole.settings.prod")

app = Celery("aipbx")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def route_task(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **_kw: Any) -> dict[str, str] | None:
    """``CELERY_TASK_ROUTES``: long tasks to the long queue of whatever the default queue is."""
    if name in LONG_TASKS:
        return {"queue": long_queue(app.conf.task_default_queue)}
    return None


@signals.setup_logging.connect
def _structured_logging(**_kwargs) -> None:
    """Use the console's LOGGING (aipbx.logs: JSON with AIPBX_LOG_JSON=1) instead of Celery's own format."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


install_worker_metrics(app)
install_time_limits(app)
