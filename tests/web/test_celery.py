"""A real Celery worker process runs the core tasks through the real Redis broker."""

from __future__ import annotations

import pytest

from webconsole.core.tasks import ping_task


@pytest.mark.slow
def test_ping_task_runs_on_a_worker(celery_worker: str) -> None:
    assert ping_task.delay().get(timeout=20) == "pong"


def test_celery_app_settings() -> None:
    from webconsole.celery import app

    assert app.main == "aipbx"
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_serializer == "json"
    assert app.conf.broker_url.endswith("/15")
