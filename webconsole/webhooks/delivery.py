"""Sending webhook deliveries: one attempt at a time, under a row lock, and the sweep of due ones.

:func:`attempt` claims the delivery in a short transaction (``SELECT … FOR UPDATE SKIP LOCKED``,
then ``next_attempt_at`` moved past the POST's timeout: a lease), commits, POSTs with no transaction
open, and records the outcome in a second short transaction. Two workers (the queued task and the
sweep, or two sweeps) never send the same delivery at once: the second one skips the locked row or
finds it not due (claimed) or done; and no database transaction waits on a receiver. A process that
dies after the POST but before recording leaves the row pending, due again when the lease ends,
and it is sent again: delivery is at least once, and receivers deduplicate on ``X-AIPBX-Delivery``.

Retries: after attempt ``n`` fails (non-2xx, timeout, refused connection) the next one is due
``base * 2**(n-1)`` seconds later plus up to 10 % jitter (10/20/40 s with the default base); after
``1 + AIPBX_WEBHOOK_MAX_RETRIES`` failures the delivery is ``dead`` with its last error.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webconsole.webhooks import signing
from webconsole.webhooks.actions import queue_after_commit
from webconsole.webhooks.models import Delivery, DeliveryStatus

log = logging.getLogger(__name__)

JITTER: Final = 0.1
MAX_ERROR_CHARS: Final = 500
#: A claimed delivery is not due for the POST's timeout plus this: no other worker sends it meanwhile.
LEASE_MARGIN_S: Final = 30.0


@dataclass(frozen=True)
class Response:
    status_code: int | None
    error: str

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def backoff(attempts: int, base_s: float, jitter: float = JITTER) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: ``base * 2**(attempts-1)``, plus jitter."""
    delay = base_s * 2.0 ** max(0, attempts - 1)
    return delay * (1.0 + random.uniform(0.0, jitter))


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> Response:
    """One POST; never raises for network trouble (it is the delivery's ``last_error``). No redirects."""
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=timeout_s, follow_redirects=False)
    except httpx.HTTPError as exc:
        return Response(None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])
    if 200 <= response.status_code < 300:
        return Response(response.status_code, "")
    return Response(response.status_code, f"HTTP {response.status_code}: {response.text[:200]}"[:MAX_ERROR_CHARS])


def attempt(delivery_id: int, *, now: datetime | None = None) -> str:
    """Try to send one delivery if it is pending and due. Idempotent.

    Returns what happened: ``delivered``, ``retry``, ``dead`` (this attempt), or why nothing was
    sent: ``locked`` (another worker has it), ``missing``, ``done`` (delivered or dead), ``not_due``
    (also: claimed by another worker), ``inactive`` (endpoint switched off; it stays pending),
    ``changed`` (the row changed while the POST ran; the outcome is not recorded).
    """
    now = now or timezone.now()
    claim = _claim(delivery_id, now)
    if isinstance(claim, str):
        return claim
    url, body, headers, attempts = claim
    response = post(url, body, headers, settings.AIPBX_WEBHOOK_TIMEOUT_S)  # no transaction is open here
    return _record(delivery_id, attempts, now, response)


def _claim(delivery_id: int, now: datetime) -> tuple[str, bytes, dict[str, str], int] | str:
    """Lease a due delivery to this worker: ``(url, body, headers, attempts so far)``, or why not."""
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint", "event")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            return "locked" if Delivery.objects.filter(pk=delivery_id).exists() else "missing"
        if delivery.status != DeliveryStatus.PENDING:
            return "done"
        if delivery.next_attempt_at > now:
            return "not_due"
        endpoint, event = delivery.endpoint, delivery.event
        if not endpoint.active:
            return "inactive"
        event_id = str(event.uuid)
        body = signing.render_body(
            event.type, event_id, event.occurred_at, event.payload, full_numbers=endpoint.include_full_numbers
        )
        headers = signing.headers(event.type, event_id, endpoint.secret, int(now.timestamp()), body)
        lease = timedelta(seconds=settings.AIPBX_WEBHOOK_TIMEOUT_S + LEASE_MARGIN_S)
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=max(now, timezone.now()) + lease)
        return endpoint.url, body, headers, delivery.attempts


def _record(delivery_id: int, attempts: int, now: datetime, response: Response) -> str:
    """Write the outcome of the POST this worker made after claiming ``attempts``."""
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(of=("self",))
            .select_related("endpoint", "event")
            .filter(pk=delivery_id, status=DeliveryStatus.PENDING, attempts=attempts)
            .first()
        )
        if delivery is None:  # deleted, or changed by hand (retried, marked) while the POST ran
            return "changed"
        endpoint, event = delivery.endpoint, delivery.event
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.last_status_code = response.status_code
        if response.ok:
            delivery.status, delivery.delivered_at, delivery.last_error = DeliveryStatus.DELIVERED, now, ""
            delivery.next_attempt_at = now
            outcome = "delivered"
        elif delivery.attempts > settings.AIPBX_WEBHOOK_MAX_RETRIES:
            delivery.status, delivery.last_error = DeliveryStatus.DEAD, response.error
            delivery.next_attempt_at = now
            outcome = "dead"
            log.warning(
                "webhook %s to %s is dead after %d attempts: %s",
                event.type,
                endpoint.name,
                delivery.attempts,
                response.error,
            )
        else:
            delay = backoff(delivery.attempts, settings.AIPBX_WEBHOOK_BACKOFF_BASE_S)
            delivery.next_attempt_at, delivery.last_error = now + timedelta(seconds=delay), response.error
            outcome = "retry"
            queue_after_commit(delivery.pk, delay)
        delivery.save()
    return outcome


def sweep(*, now: datetime | None = None, limit: int = 200) -> Counter[str]:
    """Attempt every pending delivery that is due (those whose queued task was lost, or is late)."""
    now = now or timezone.now()
    due = (
        Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__active=True)
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    return Counter(attempt(pk, now=now) for pk in list(due))
