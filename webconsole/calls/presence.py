"""Operator presence that tells the truth: a chosen status counts only while a console page answers.

Theory of operation
    An operator chooses a status in the header (or ``PUT /api/v1/operators/me``): available, busy,
    away or offline. That choice alone would outlive the operator: a closed laptop or a dead network
    says no goodbye, and callers would be put on hold for nobody. So every console socket is asked
    for a heartbeat every ``AIPBX_PRESENCE_HEARTBEAT_S`` (20 s) by the server, and each answer stamps
    ``Operator.last_seen`` (``actions.do_heartbeat``). The server asks, rather than the page's own
    timer: a browser throttles the timers of a background tab to one a minute, not its socket's
    messages.

    Presence expires on read, never by the browser saying goodbye: an operator whose last heartbeat
    is older than ``AIPBX_PRESENCE_TIMEOUT_S`` (60 s) is offline, whatever they chose
    (:func:`effective`), and is not on duty for the HITL decision (:func:`on_duty`). Their choice is
    kept: when a page of theirs answers again, they are what they chose again.

    An API client without a page keeps itself present by setting its status again (each set counts
    as a heartbeat).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from webconsole.calls.models import Operator, Presence

ON_DUTY = (Presence.AVAILABLE, Presence.BUSY)


def cutoff(now: datetime | None = None) -> datetime:
    """Heartbeats older than this no longer count."""
    return (now or timezone.now()) - timedelta(seconds=settings.AIPBX_PRESENCE_TIMEOUT_S)


def is_online(operator: Operator, now: datetime | None = None) -> bool:
    """Whether one of the operator's console pages (or an API client) answered within the timeout."""
    return operator.last_seen is not None and operator.last_seen >= cutoff(now)


def effective(operator: Operator, now: datetime | None = None) -> str:
    """The presence others see and HITL reads: the chosen status while online, else offline."""
    return operator.status if is_online(operator, now) else Presence.OFFLINE


def on_duty(operators: QuerySet[Operator], now: datetime | None = None) -> QuerySet[Operator]:
    """Those of ``operators`` who chose available or busy and whose console is alive."""
    return operators.filter(status__in=ON_DUTY, last_seen__gte=cutoff(now))
