"""Every Celery task has soft and hard time limits, held in the solo pool too, and long tasks have
their own queue so that webhooks and retention never wait behind them (issue 15, item 2)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from django.conf import settings
from django.db import transaction

from aipbx.queues import LONG_TASKS, long_queue
from webconsole.celery import app
from webconsole.core import time_limits
from webconsole.webhooks import tasks as webhook_tasks
from webconsole.webhooks.actions import emit
from webconsole.webhooks.models import Delivery, DeliveryStatus, WebhookEndpoint

app.loader.import_default_modules()  # every installed app's tasks.py, as a worker does
OURS = sorted(name for name in app.tasks if name.startswith(("webconsole.", "knowledge.")))


def test_every_task_declares_limits_within_the_brokers_redelivery_timeout() -> None:
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert len(OURS) >= 8
    for name in OURS:
        task = app.tasks[name]
        assert task.soft_time_limit and task.time_limit, name
        # the longest retry countdown (300 s) waits unacknowledged in a worker too
        assert task.soft_time_limit < task.time_limit <= visibility - 300, name
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit  # for a task that forgets


def test_long_tasks_go_to_the_long_queue_and_the_rest_to_the_default_one() -> None:
    default = app.conf.task_default_queue
    assert LONG_TASKS <= set(OURS)
    for name in OURS:
        queue = app.amqp.router.route({}, name, (), {})["queue"].name
        assert queue == (long_queue(default) if name in LONG_TASKS else default), name


@pytest.fixture
def private_app() -> Iterator[Celery]:
    """A throwaway app whose tasks run eagerly here, with the limits armed as in a solo worker."""
    spare = Celery("limits-test", set_as_current=False)
    time_limits.enforce_in_this_process(True)
    try:
        yield spare
    finally:
        time_limits.enforce_in_this_process(False)
        time_limits.disarm()


def spin(seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass
    return "ran to the end"


def test_the_soft_limit_stops_a_busy_task_in_the_solo_pool(private_app: Celery) -> None:
    def busy() -> str:
        return spin(30)

    task = private_app.task(soft_time_limit=0.2, time_limit=30, name="limits.busy")(busy)
    started = time.monotonic()
    result = task.apply()
    assert isinstance(result.result, SoftTimeLimitExceeded), result.result
    assert time.monotonic() - started < 20  # stopped long before the loop's own end


def test_the_hard_limit_stops_a_task_that_ignores_the_soft_one(private_app: Celery) -> None:
    def stubborn() -> str:
        try:
            return spin(30)
        except SoftTimeLimitExceeded:
            return spin(30)

    task = private_app.task(soft_time_limit=0.2, time_limit=0.5, name="limits.stubborn")(stubborn)
    result = task.apply()
    assert isinstance(result.result, TimeLimitExceeded), result.result


def test_a_task_that_ends_in_time_is_not_disturbed_later(private_app: Celery) -> None:
    def quick() -> str:
        return "done"

    task = private_app.task(soft_time_limit=0.3, time_limit=0.6, name="limits.quick")(quick)
    assert task.apply().result == "done"
    time.sleep(0.8)  # both alarms would have fired by now, had they been left armed
    assert spin(0.01) == "ran to the end"


@pytest.mark.django_db(transaction=True)
def test_a_real_solo_worker_stops_a_webhook_post_at_its_soft_limit(
    knowledge_worker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a delivery to a receiver that accepts the connection and never answers (queued by hand)
    monkeypatch.setattr(webhook_tasks, "schedule", lambda *args, **kwargs: None)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        with transaction.atomic():
            WebhookEndpoint.objects.create(name="silent", url=f"http://127.0.0.1:{silent.getsockname()[1]}/hook")
            emit("call_started", key="limits-call", data={"call_id": "limits-call"})
        pk = Delivery.objects.get().pk
        # when the worker runs it with a soft limit shorter than the POST's timeout (5 s)
        result = webhook_tasks.deliver_webhook_task.apply_async((pk,), soft_time_limit=1, time_limit=20)
        result.get(timeout=30, propagate=False)
    # then the task was stopped (without the limit it would end "retry" after the timeout)...
    assert result.state == "FAILURE" and isinstance(result.result, SoftTimeLimitExceeded), result.result
    # ...and the delivery is left pending for the sweep
    assert Delivery.objects.get(pk=pk).status == DeliveryStatus.PENDING
