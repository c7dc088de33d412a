"""Celery tasks of the privacy app (scheduled by ``CELERY_BEAT_SCHEDULE``: ``privacy-retention`` and
``recordings-seal-sweep``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from aipbx.sealing_sweep import observe, sweep
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


# Every AIPBX_SEAL_SWEEP_S (5 min); sealing is streamed, a backlog of hours of audio takes minutes.
@shared_task(acks_late=True, soft_time_limit=900, time_limit=960)
def seal_recordings_task() -> dict[str, Any]:
    """Seal the clear files of finished calls (:func:`aipbx.sealing_sweep.sweep`) and export the counts
    (``aipbx_recordings_clear_files`` and friends on the worker's /metrics); idempotent."""
    keys = settings.AIPBX_RECORDINGS_KEYRING
    report = sweep(Path(settings.AIPBX_RECORDINGS_DIR), keys, quiet_s=settings.AIPBX_SEAL_QUIET_S)
    observe(report, periodic=True)
    if keys is None and report.left:
        logger.error(
            "%d recording file(s) of %d finished call(s) are in clear and AIPBX_RECORDINGS_KEYS is not "
            "set (development settings): nothing seals them",
            report.left,
            report.calls,
        )
    elif report.left:
        logger.error(
            "recordings sweep: %d file(s) left in clear after %d failure(s): %s",
            report.left,
            report.failed,
            report.as_dict(),
        )
    elif report.found:
        logger.warning(
            "recordings sweep sealed %d file(s) of %d finished call(s) left in clear", report.sealed, report.calls
        )
    return report.as_dict()
