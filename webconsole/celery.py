"""The Celery app ("aipbx"), configured from Django settings under the ``CELERY_`` namespace.

Run a worker with ``celery -A webconsole worker``; tasks are discovered in each
installed app's ``tasks.py``. The worker logs through ``ariapp.logs`` (structured) and serves
Prometheus metrics on ``AIPBX_WORKER_METRICS_PORT`` (:mod:`webconsole.core.worker_metrics`).
"""

from __future__ import annotations

import os

from celery import Celery, signals

from webconsole.core.worker_metrics import install as install_worker_metrics

# A worker started without DJANGO_SETTINGS_MODULE is taken to be a deployment
# and so must pass the prod checks (mandatory secret); dev sets the variable.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webconsole.settings.prod")

app = Celery("aipbx")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def _structured_logging(**_kwargs) -> None:
    """Use the console's LOGGING (ariapp.logs: JSON with AIPBX_LOG_JSON=1) instead of Celery's own format."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


install_worker_metrics(app)
