"""Celery tasks of the webhooks: send one delivery, and sweep the due ones (beat, every 30 s)."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from webconsole.webhooks import delivery

log = logging.getLogger(__name__)


# One POST (AIPBX_WEBHOOK_TIMEOUT_S, 5 s) and two short transactions.
@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def deliver_webhook_task(delivery_id: int) -> str:
    """Attempt delivery ``delivery_id`` if pending and due (idempotent, see :func:`delivery.attempt`)."""
    return delivery.attempt(delivery_id)


# Every 30 s; a sweep of many slow receivers stops well before the next few.
@shared_task(acks_late=True, soft_time_limit=240, time_limit=270)
def sweep_webhooks_task() -> dict[str, Any]:
    """Attempt the due pending deliveries: catches tasks lost between a commit and the broker."""
    return dict(delivery.sweep())


def schedule(delivery_id: int, countdown: float = 0.0) -> None:
    """Queue :func:`deliver_webhook_task` (called after the commit that made the delivery due).

    A broker that is down must not fail the caller, whose transaction has committed: the
    delivery stays pending and the sweep sends it.
    """
    try:
        deliver_webhook_task.apply_async((delivery_id,), countdown=max(0.0, countdown))
    except Exception as exc:  # kombu/redis errors vary by transport; the sweep is the safety net
        log.warning("could not queue webhook delivery %s (the sweep will send it): %s", delivery_id, exc)
