"""The Celery app ("aipbx"), configured from Django settings under the ``CELERY_`` namespace.

Run a worker with ``celery -A webconsole worker``; tasks are discovered in each
installed app's ``tasks.py``.
"""

from __future__ import annotations

import os

from celery import Celery

# A worker started without DJANGO_SETTINGS_MODULE is taken to be a deployment
# and so must pass the prod checks (mandatory secret); dev sets the variable.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webconsole.settings.prod")

app = Celery("aipbx")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
