"""Read-only views of help requests: what a user may see, how many wait, and the analytics numbers.

Definitions (over the requests created in ``[since, until)`` of the visible extensions):

- **requests per AI call**: requests / AI-handled calls started in the period;
- **response time**: ``answered_at - created`` of answered requests, p50 and p95 in seconds
  (linear interpolation, as the rest of the analytics);
- **resolution rate**: answered (including delivered) / requests;
- **saved as knowledge**: answered requests whose answer was saved / answered requests;
- **abandon rate**: cancelled (the caller hung up during hold) / requests.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext_noop

from webconsole.analytics.stats import percentile, ratio
from webconsole.calls import access
from webconsole.calls.models import Call
from webconsole.hitl.models import OPEN, HitlRequest, RequestStatus

SECTION = gettext_noop("Operator help")  # names and labels stay English in the JSON; the page translates them
ANSWERED = (RequestStatus.ANSWERED, RequestStatus.DELIVERED)
MISSING = "—"


def visible_requests(user: Any) -> QuerySet[HitlRequest]:
    """The requests of the extensions ``user`` may see (none for anonymous users)."""
    rows = HitlRequest.objects.select_related("call", "claimed_by")
    return access.filter_by_owner(rows, user, "call__callee")


def waiting_count(user: Any) -> int:
    """Requests of the user's extensions on which a caller is holding (waiting or claimed)."""
    return visible_requests(user).filter(status__in=OPEN).count()


def analytics(user: Any, since: datetime, until: datetime, extension: str) -> dict[str, dict[str, Any]]:
    """``{section: {label: value}}`` for the analytics page (``webconsole.analytics.queries.hitl_extra``).

    ``user=None`` is internal use (``build_report`` called without a user on querysets it narrowed
    itself): every extension is counted.
    """
    requests = HitlRequest.objects.all() if user is None else visible_requests(user)
    calls = Call.objects.all() if user is None else access.calls_for(user)
    requests = requests.filter(created__gte=since, created__lt=until)
    calls = calls.filter(started__gte=since, started__lt=until, ai_handled=True)
    if extension:
        requests = requests.filter(call__callee=extension)
        calls = calls.filter(callee=extension)
    rows = list(requests.values_list("status", "created", "answered_at", "saved_item_id"))
    total = len(rows)
    answered = [r for r in rows if r[0] in ANSWERED and r[2] is not None]
    waits = [(r[2] - r[1]).total_seconds() for r in answered]
    numbers = {
        gettext_noop("requests"): total,
        gettext_noop("requests per AI call"): _round(ratio(total, calls.count())),
        gettext_noop("response time p50 (s)"): _round(percentile(waits, 50), 1),
        gettext_noop("response time p95 (s)"): _round(percentile(waits, 95), 1),
        gettext_noop("resolution rate"): _round(ratio(len(answered), total)),
        gettext_noop("saved as knowledge"): _round(ratio(sum(1 for r in answered if r[3] is not None), len(answered))),
        gettext_noop("abandon rate"): _round(ratio(sum(1 for r in rows if r[0] == RequestStatus.CANCELLED), total)),
    }
    return {SECTION: numbers} if total else {}


def _round(value: float | None, digits: int = 3) -> float | str:
    return MISSING if value is None else round(value, digits)
