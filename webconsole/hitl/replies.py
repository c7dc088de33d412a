"""The two outward channels of a help request: the reply list the ARI app waits on, and the live pages.

Both are used only from ``transaction.on_commit`` callbacks, so nothing leaves before the database
holds it. The reply list is ``aipbx:<AIPBX_INSTANCE>:hitl:<request_id>`` on the ARI app's Redis
(``AIPBX_EVENTS_REDIS_URL``); each reply is one JSON string RPUSHed there and the list expires
after an hour (the ARI app BLPOPs it while the caller holds). Replies:

- ``{"kind": "queued", "operators": n}``: n operators of the extension (or admins) are available or busy;
- ``{"kind": "away"}``: nobody is; the AI says the away message at once;
- ``{"kind": "answer", "text": "<polished answer>", "operator": "<username>"}``.

Live messages are ``console.update`` with a payload the browser handles:
``{"type": "hitl.request", "request": {...}}`` (a new request), ``{"type": "hitl.update", "request": {...}}``
(claimed, answered, delivered, timed out, cancelled) and ``{"type": "hitl.count", "waiting": n}``.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings

from contract import hitl_reply_key
from webconsole.calls import live
from webconsole.hitl.models import OPEN, HitlRequest, RequestStatus

log = logging.getLogger(__name__)

REPLY_TTL_S = 3600


def reply_key(request_id: str) -> str:
    return hitl_reply_key(settings.AIPBX_INSTANCE, request_id)


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def push_reply(request_id: str, reply: dict[str, Any]) -> bool:
    """RPUSH ``reply`` for the ARI app (call after commit). Returns False when Redis failed (logged)."""
    key = reply_key(request_id)
    try:
        pipe = _client(settings.AIPBX_EVENTS_REDIS_URL).pipeline(transaction=True)
        pipe.rpush(key, json.dumps(reply, ensure_ascii=False))
        pipe.expire(key, REPLY_TTL_S)
        pipe.execute()
    except (redis.RedisError, OSError) as exc:
        # The caller is on hold until the ARI app's hold limit; the request stays in PostgreSQL.
        log.error("HITL reply %s to %s failed: %r", reply.get("kind"), key, exc)
        return False
    return True


def request_summary(request: HitlRequest) -> dict[str, Any]:
    call = request.call
    return {
        "request_id": request.request_id,
        "call_id": call.call_id,
        "caller": call.caller,
        "callee": call.callee,
        "question": request.question,
        "reason": request.reason,
        "reason_label": request.get_reason_display() if request.reason else "",
        "confidence": request.confidence,
        "status": request.status,
        "status_label": request.get_status_display(),
        "claimed_by": request.claimed_by.get_username() if request.claimed_by else None,
        "answer_text": request.answer_text,
        "created": request.created.isoformat(),
        "url": f"/hitl/{request.request_id}/",
    }


def waiting_for(callee: str | None) -> int:
    """Open requests of one extension (``None``: of all)."""
    rows = HitlRequest.objects.filter(status__in=OPEN)
    return (rows if callee is None else rows.filter(call__callee=callee)).count()


def notify(request: HitlRequest, kind: str) -> None:
    """Tell the operators' pages (after commit; never raises). ``kind`` is ``hitl.request`` or ``hitl.update``.

    The count sent to ``ext.<n>`` is that extension's; an operator of several extensions gets the
    exact number again on the next page load (the groups are per extension, not per user).
    """
    try:
        callee = request.call.callee
        item = {"type": "console.update", "payload": {"type": kind, "request": request_summary(request)}}
        groups = [live.ALL_GROUP]
        if callee:
            groups.append(live.ext_group(callee))
        live.send(groups, item)
        live.send([live.ALL_GROUP], _count(waiting_for(None)))
        if callee:
            live.send([live.ext_group(callee)], _count(waiting_for(callee)))
    except Exception as exc:  # a page missing an update must not break the ingestion or the answer
        log.warning("HITL live update for %s failed: %r", request.request_id, exc)


def _count(n: int) -> dict[str, Any]:
    return {"type": "console.update", "payload": {"type": "hitl.count", "waiting": n}}


def redeliver_answers(*, settle_s: float = 2.0, window_s: float = 600.0) -> int:
    """Push again the answers whose push may have been lost (a crash or Redis failure after commit).

    An answered request that the ARI app has not reported as spoken, whose reply list is empty, gets
    its answer pushed again; the ARI app speaks the first one it takes. Run every few seconds by
    ``consume_events``. Returns the number pushed.
    """
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    stale = HitlRequest.objects.filter(
        status=RequestStatus.ANSWERED,
        answered_at__lt=now - timedelta(seconds=settle_s),
        answered_at__gt=now - timedelta(seconds=window_s),
    ).select_related("claimed_by")
    pushed = 0
    client = _client(settings.AIPBX_EVENTS_REDIS_URL)
    for request in stale:
        try:
            if client.llen(reply_key(request.request_id)):
                continue  # the answer is still there, waiting for the ARI app
        except (redis.RedisError, OSError) as exc:
            log.warning("HITL redelivery check failed: %r", exc)
            return pushed
        operator = request.claimed_by.get_username() if request.claimed_by else ""
        if push_reply(request.request_id, {"kind": "answer", "text": request.answer_text, "operator": operator}):
            log.info("HITL answer for %s pushed again", request.request_id)
            pushed += 1
    return pushed
