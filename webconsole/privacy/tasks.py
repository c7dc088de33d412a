"""Celery tasks of the privacy app (scheduled by ``CELERY_BEAT_SCHEDULE["privacy-retention"]``)."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.db import OperationalError

from webconsole.privacy.retention import apply_retention

logger = logging.getLogger(__name__)


# Daily; deleting a day of files takes seconds, a first run on years of them minutes.
@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    soft_time_limit=1800,
    time_limit=1900,
)
def apply_retention_task() -> dict[str, Any]:
    """Apply ``AIPBX_RETENTION_DAYS`` now; idempotent (a second run finds nothing to delete)."""
    report = apply_retention().as_dict()
    logger.info("retention applied: %s", report)
    return report
